"""Email threads on the gateway side: the reply context store and the database threading lookups.

The connector threads what it can from the mail alone (token address, our own Message-IDs). Two steps
need our records, so they live here: a ``[#123]`` ticket number in the Subject, and References to the
customer's own earlier mails. Both accept only a conversation of the *same sender*: ticket numbers
are small integers anyone can type, and a stranger's mail must never land in (or be answered with the
context of) someone else's conversation.

``RedisEmailThreads`` keeps, per inbound mail and per conversation, what a reply needs (subject,
Message-ID, References, Reply-To): the poller writes it before the mail goes on the stream, so the
bot's reply always finds it; the connector reads it through ``ThreadContextReader``.
"""

from __future__ import annotations

import json

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.email import ParsedMail, ThreadContext
from gateway.db.schema import conversations, messages, tickets
from gateway.keys import Keys
from gateway.models import Channel

THREAD_TTL_S = 180 * 24 * 3600  # an agent may answer a long-quiet conversation; replies still thread


class RedisEmailThreads:
    """Thread contexts in Redis (``Keys.email_thread*``), expiring after ``ttl_s`` without new mail."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, ttl_s: int = THREAD_TTL_S) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_s

    async def remember(self, conversation_key: str, inbound_message_id: str, context: ThreadContext) -> None:
        """Store the context of one customer mail, which is also now the conversation's latest."""
        value = json.dumps(context.to_json(), ensure_ascii=False)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.email_thread_of(inbound_message_id), value, ex=self.ttl_s)
            pipe.set(self.keys.email_thread(conversation_key), value, ex=self.ttl_s)
            await pipe.execute()

    async def read(self, conversation_key: str, inbound_message_id: str | None) -> ThreadContext | None:
        """The context of the mail answered (bot replies), else the conversation's latest (agents)."""
        names = ([self.keys.email_thread_of(inbound_message_id)] if inbound_message_id else [])
        for name in [*names, self.keys.email_thread(conversation_key)]:
            raw = await self.redis.get(name)
            if raw:
                return ThreadContext.from_json(json.loads(raw))
        return None


async def lookup_conversation_key(engine: AsyncEngine, parsed: ParsedMail) -> str | None:
    """Threading steps 3 and 4 for a mail the connector could not place: the conversation key of the
    sender's conversation named by the Subject's ticket number, else of the sender's earlier mail its
    In-Reply-To/References name. None: a new conversation."""
    sender = parsed.message.customer.external_id
    async with engine.connect() as conn:
        if parsed.ticket_number is not None:
            key = await conn.scalar(
                select(conversations.c.conversation_key)
                .select_from(tickets.join(conversations, tickets.c.conversation_id == conversations.c.id))
                .where(tickets.c.id == parsed.ticket_number, conversations.c.channel == Channel.EMAIL.value,
                       conversations.c.customer_external_id == sender))
            if key:
                return str(key)
        refs = list(parsed.references[:50])  # a References header can be long; the newest ids matter
        if refs:
            key = await conn.scalar(
                select(conversations.c.conversation_key)
                .select_from(messages.join(conversations, messages.c.conversation_id == conversations.c.id))
                .where(messages.c.channel == Channel.EMAIL.value, messages.c.direction == "in",
                       messages.c.external_id.in_(refs), conversations.c.customer_external_id == sender)
                .order_by(messages.c.created_at.desc()).limit(1))
            if key:
                return str(key)
    return None
