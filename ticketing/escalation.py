"""Escalation: turn a conversation the bot cannot help into a ticket, exactly once.

The full ticketing core (priority, routing, SLA) comes later; this module guarantees the invariant
it will build on: an escalated conversation always has one open ticket row, and its state is QUEUED
in the same transaction, so no escalation can be lost between the two writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db.conversations import set_state
from gateway.db.engine import insert_ignore
from gateway.db.schema import ticket_events, tickets
from gateway.models import ConversationState
from ticketing.lifecycle import TicketStatus


class EscalationReason(StrEnum):
    """Why a human is needed; kept on the ticket and counted in reports."""

    LOW_CONFIDENCE = "low_confidence"
    OUT_OF_SCOPE = "out_of_scope"
    REPEATED_FAILURE = "repeated_failure"
    ASKED_FOR_HUMAN = "asked_for_human"
    ANGER = "anger"
    CHANNEL_FAILURE = "channel_failure"
    CHANNEL_TAKEOVER = "channel_takeover"  # a human took over in the channel's own console (WeCom 微信客服)
    BOT_UNAVAILABLE = "bot_unavailable"


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    conversation_id: str
    status: str
    reason: str
    summary: str
    details: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Escalation:
    ticket: Ticket
    created: bool  # False: the conversation already had an open ticket


class TicketStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def escalate(
        self,
        conversation_id: str,
        reason: EscalationReason,
        *,
        summary: str,
        now: datetime,
        details: dict[str, Any] | None = None,
    ) -> Escalation:
        """Open a ticket for the conversation (idempotent) and hand the conversation to the queue."""
        async with self.engine.begin() as conn:
            return await escalate_in(conn, conversation_id, reason, summary=summary, now=now, details=details)

    async def open_ticket(self, conversation_id: str) -> Ticket | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(tickets).where(tickets.c.open_key == conversation_id))).first()
        return _ticket(row._mapping) if row else None

    async def list_open(self, limit: int = 100) -> list[Ticket]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(tickets).where(tickets.c.open_key.is_not(None)).order_by(tickets.c.id).limit(limit)
            )
            return [_ticket(r._mapping) for r in rows]


async def escalate_in(
    conn: AsyncConnection,
    conversation_id: str,
    reason: EscalationReason,
    *,
    summary: str,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> Escalation:
    """``TicketStore.escalate`` inside the caller's transaction."""
    result = await conn.execute(
        insert_ignore(conn, tickets, ["open_key"]).values(
            conversation_id=conversation_id,
            status=TicketStatus.NEW.value,
            reason=reason.value,
            summary=summary[:2000],
            open_key=conversation_id,
            details=details or {},
            created_at=now,
            updated_at=now,
        )
    )
    created = (result.rowcount or 0) > 0
    await set_state(conn, conversation_id, ConversationState.QUEUED)
    row = (await conn.execute(select(tickets).where(tickets.c.open_key == conversation_id))).one()
    ticket = _ticket(row._mapping)
    if created:
        await conn.execute(ticket_events.insert().values(
            ticket_id=ticket.id, at=now, actor="bot", kind="escalated",
            data={"reason": reason.value, **(details or {})}))
    return Escalation(ticket, created)


def _ticket(m: Any) -> Ticket:
    return Ticket(
        id=m["id"],
        conversation_id=m["conversation_id"],
        status=m["status"],
        reason=m["reason"],
        summary=m["summary"],
        details=dict(m["details"] or {}),
        created_at=m["created_at"],
    )
