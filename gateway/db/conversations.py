"""Conversations and their transcript: the durable record of every message in and out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db.engine import insert_ignore
from gateway.db.schema import conversations, messages
from gateway.models import ConversationState, InboundMessage, OutboundMessage, utcnow


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    id: str
    direction: str
    author: str
    text: str
    created_at: datetime


class ConversationStore:
    """Reads and writes conversations and messages. Every write is idempotent by our message id."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record_inbound(self, msg: InboundMessage) -> tuple[ConversationState, bool]:
        """Store the customer's message (once) and return (conversation state, newly stored?)."""
        async with self.engine.begin() as conn:
            inserted = await insert_inbound(conn, msg)
            state = await read_state(conn, msg.conversation_id)
        return state or ConversationState.BOT, inserted

    async def record_outbound(self, msg: OutboundMessage) -> bool:
        async with self.engine.begin() as conn:
            return await insert_outbound(conn, msg)

    async def state(self, conversation_id: str) -> ConversationState | None:
        async with self.engine.connect() as conn:
            return await read_state(conn, conversation_id)

    async def set_state(self, conversation_id: str, state: ConversationState) -> None:
        async with self.engine.begin() as conn:
            await set_state(conn, conversation_id, state)

    async def transcript(self, conversation_id: str, limit: int = 200) -> list[TranscriptLine]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(messages.c.id, messages.c.direction, messages.c.author, messages.c.text, messages.c.created_at)
                .where(messages.c.conversation_id == conversation_id)
                .order_by(messages.c.created_at, messages.c.id)
                .limit(limit)
            )
            return [TranscriptLine(*row) for row in rows]

    async def transcript_with_sentiment(self, conversation_id: str, limit: int = 500) -> list[dict[str, Any]]:
        """The transcript for agents: every line with its author, for customer lines the sentiment score,
        and ``automated`` (auto_reply, bounce, bulk, loop) for machine mail the bot did not answer."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(messages.c.id, messages.c.direction, messages.c.author, messages.c.channel, messages.c.text,
                       messages.c.attachments, messages.c.sentiment, messages.c.created_at,
                       # Machine mail (auto-reply, bounce, bulk, our own loop) that the bot left alone on
                       # purpose: agents see why it got no answer. Only that key leaves ``raw``.
                       messages.c.raw["automated"].as_string().label("automated"))
                .where(messages.c.conversation_id == conversation_id)
                .order_by(messages.c.created_at, messages.c.id)
                .limit(limit)
            )
            return [dict(r._mapping) for r in rows]

    async def unscored_customer_messages(self, conversation_id: str, limit: int) -> list[tuple[str, str]]:
        """(id, text) of the customer's latest ``limit`` text messages that have no sentiment score yet."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(messages.c.id, messages.c.text, messages.c.sentiment)
                .where(messages.c.conversation_id == conversation_id, messages.c.direction == "in",
                       messages.c.text != "")
                .order_by(messages.c.created_at.desc(), messages.c.id.desc()).limit(limit)
            )).all()
        return [(r.id, r.text) for r in rows if r.sentiment is None]

    async def recent_customer_texts(self, conversation_id: str, limit: int = 50) -> list[str]:
        """The customer's latest messages, oldest first (e.g. to find the order number they gave)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(messages.c.text).where(messages.c.conversation_id == conversation_id,
                                              messages.c.direction == "in")
                .order_by(messages.c.created_at.desc(), messages.c.id.desc()).limit(limit)
            )).scalars().all()
        return list(reversed(rows))

    async def get(self, conversation_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(conversations).where(conversations.c.id == conversation_id))).first()
            return dict(row._mapping) if row else None


async def set_state(conn: AsyncConnection, conversation_id: str, state: ConversationState) -> None:
    """Change who owns the conversation, inside the caller's transaction."""
    await conn.execute(
        update(conversations)
        .where(conversations.c.id == conversation_id)
        .values(state=state.value, updated_at=utcnow())
    )


# --- statements for callers that compose one transaction (the bot worker writes a message, maybe a
# ticket, and its reply in one commit: one SQLite write lock instead of three) ---------------------
async def read_state(conn: AsyncConnection, conversation_id: str) -> ConversationState | None:
    value = await conn.scalar(select(conversations.c.state).where(conversations.c.id == conversation_id))
    return ConversationState(value) if value else None


async def insert_inbound(
    conn: AsyncConnection, msg: InboundMessage, *, sentiment: dict[str, Any] | None = None
) -> bool:
    """Create the conversation if new and store the message once; True if the message is new.
    ``sentiment`` is the message's score (ticketing.sentiment), kept for priority and agents."""
    now = utcnow()
    await conn.execute(
        insert_ignore(conn, conversations, ["id"]).values(
            id=msg.conversation_id,
            channel=msg.channel.value,
            conversation_key=msg.conversation_key,
            customer_external_id=msg.customer.external_id,
            customer_name=msg.customer.display_name,
            state=ConversationState.BOT.value,
            created_at=now,
            updated_at=now,
        )
    )
    result = await conn.execute(
        insert_ignore(conn, messages, ["id"]).values(
            id=msg.message_id,
            conversation_id=msg.conversation_id,
            direction="in",
            author="customer",
            channel=msg.channel.value,
            external_id=msg.external_message_id,
            text=msg.text,
            attachments=[a.model_dump(mode="json") for a in msg.attachments],
            raw=msg.raw,
            created_at=msg.sent_at,
            sentiment=sentiment,
        )
    )
    inserted = (result.rowcount or 0) > 0
    if inserted:
        await conn.execute(
            update(conversations).where(conversations.c.id == msg.conversation_id).values(updated_at=now)
        )
    return inserted


async def set_sentiment(conn: AsyncConnection, message_id: str, sentiment: dict[str, Any]) -> None:
    """Score a stored customer message (once: an existing score is kept)."""
    await conn.execute(update(messages).where(messages.c.id == message_id, messages.c.sentiment.is_(None))
                       .values(sentiment=sentiment))


async def insert_outbound(conn: AsyncConnection, msg: OutboundMessage) -> bool:
    result = await conn.execute(
        insert_ignore(conn, messages, ["id"]).values(
            id=msg.message_id,
            conversation_id=msg.conversation_id,
            direction="out",
            author=msg.author,
            channel=msg.channel.value,
            external_id=None,
            text=msg.text,
            attachments=[],
            raw={"quick_replies": [q.model_dump() for q in msg.quick_replies], **msg.metadata},
            created_at=msg.created_at,
        )
    )
    return (result.rowcount or 0) > 0
