"""The bot worker: consumes the inbound stream, keeps the transcript, answers or escalates.

One message per conversation at a time (a short Redis lock), so replies keep the customer's order
even with several workers. Every effect is idempotent — the transcript row and the reply carry ids
derived from the inbound message — so a redelivered or reclaimed entry never answers twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Protocol

import redis.asyncio as aioredis
from pydantic import ValidationError

from bot.reply import BotReply
from gateway.db.conversations import ConversationStore, insert_inbound, insert_outbound, read_state
from gateway.keys import Keys
from gateway.models import (
    ConversationEvent,
    ConversationState,
    EventKind,
    InboundMessage,
    OutboundMessage,
)
from gateway.streams import PoisonMessage, StreamBus
from ticketing.escalation import TicketStore, escalate_in
from ticketing.service import TicketService

log = logging.getLogger(__name__)

_UNLOCK_LUA = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class Bot(Protocol):
    async def reply(self, msg: InboundMessage) -> BotReply: ...


class ConversationBusy(Exception):
    """Another worker holds the conversation too long; the entry is retried later."""


def reply_id(inbound_id: str, n: int = 0) -> str:
    return f"out_{inbound_id.removeprefix('in_')}_{n}"


class BotWorker:
    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        keys: Keys,
        bus: StreamBus,
        conversations: ConversationStore,
        tickets: TicketStore,
        bot: Bot,
        clock: Callable[[], datetime],
        ticket_service: TicketService | None = None,
        lock_ttl_ms: int = 30_000,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.bus = bus
        self.conversations = conversations
        self.tickets = tickets
        self.bot = bot
        self.clock = clock
        self.ticket_service = ticket_service
        self.lock_ttl_ms = lock_ttl_ms
        self._unlock = redis.register_script(_UNLOCK_LUA)

    async def handle(self, entry_id: str, fields: dict[bytes, bytes]) -> None:
        """Stream handler (see ``StreamConsumer``)."""
        try:
            msg = InboundMessage.model_validate_json(fields[b"m"])
        except (KeyError, ValidationError) as exc:
            raise PoisonMessage(f"unreadable inbound entry: {exc}") from exc
        async with self._conversation_lock(msg.conversation_id):
            await self.process(msg)

    async def process(self, msg: InboundMessage) -> OutboundMessage | None:
        """Record, decide, reply (returns the last reply message). All database writes of one message
        commit together."""
        conv_id = msg.conversation_id
        received = ConversationEvent(kind=EventKind.MESSAGE_RECEIVED, conversation_id=conv_id,
                                     message_id=msg.message_id, data={"text": msg.text[:500]})
        if (await self.conversations.state(conv_id) or ConversationState.BOT) != ConversationState.BOT:
            # Queued, with an agent, or resolved: the ticket decides (a resolved ticket reopens when
            # the customer writes within the window; after it, or after a hand-back, the bot answers).
            async with self.conversations.engine.begin() as conn:
                await insert_inbound(conn, msg)
                human = (await self.ticket_service.on_customer_message(conn, conv_id, self.clock())
                         if self.ticket_service else True)
            if human:
                # The bot stays silent; the message is in the transcript and on the live channel.
                await self._publish([received])
                return None
        # Deciding (retrieval, dialogue engine) happens before the transaction opens, so no write lock
        # is held while we think.
        reply = await self.bot.reply(msg)
        outs = [
            OutboundMessage(
                message_id=reply_id(msg.message_id, n),
                channel=msg.channel,
                conversation_key=msg.conversation_key,
                recipient=msg.customer,
                text=part.text,
                quick_replies=part.quick_replies,
                author="bot",
                in_reply_to=msg.message_id,
                metadata={k: v for k, v in {"article_id": reply.article_id, "score": reply.score,
                                            "engine": reply.engine}.items() if v is not None},
            )
            for n, part in enumerate(reply.parts)
        ]
        events = [received]
        async with self.conversations.engine.begin() as conn:
            await insert_inbound(conn, msg)
            if await read_state(conn, conv_id) != ConversationState.BOT:
                return None  # taken over while we were deciding: the human answers, not the bot
            if reply.escalate is not None:
                esc = await escalate_in(conn, conv_id, reply.escalate, summary=msg.text or "(attachment)",
                                        now=self.clock(), details={"message_id": msg.message_id, **reply.details})
                events.append(ConversationEvent(kind=EventKind.ESCALATED, conversation_id=conv_id,
                                                message_id=msg.message_id,
                                                data={"ticket_id": esc.ticket.id, "reason": reply.escalate.value}))
            for out in outs:
                await insert_outbound(conn, out)
        for out in outs:  # after the commit: a reply is never sent for an unrecorded message
            await self.bus.send(out)
            events.append(ConversationEvent(kind=EventKind.BOT_REPLIED, conversation_id=conv_id,
                                            message_id=out.message_id,
                                            data={"article_id": reply.article_id, "engine": reply.engine}))
        await self._publish(events)
        return outs[-1] if outs else None

    async def _publish(self, events: list[ConversationEvent]) -> None:
        # Live views only; losing one is harmless because the transcript is in the database.
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.publish(self.keys.events_channel(), event.model_dump_json())
                await pipe.execute()
        except aioredis.RedisError:
            log.warning("could not publish %d live events", len(events))

    @asynccontextmanager
    async def _conversation_lock(self, conversation_id: str, wait_s: float = 10.0) -> AsyncIterator[None]:
        key = self.keys.conversation_lock(conversation_id)
        token = uuid.uuid4().hex
        deadline = asyncio.get_running_loop().time() + wait_s
        while not await self.redis.set(key, token, nx=True, px=self.lock_ttl_ms):
            if asyncio.get_running_loop().time() > deadline:
                raise ConversationBusy(conversation_id)
            await asyncio.sleep(0.02)
        try:
            yield
        finally:
            await self._unlock(keys=[key], args=[token])

