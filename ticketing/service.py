"""Ticket operations: each one applies the lifecycle table, updates who owns the conversation and
appends to the audit log in one transaction. Agent replies leave through the outbound stream, so they
reach the customer on the channel they used, exactly like bot replies.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db.conversations import insert_outbound, set_state
from gateway.db.schema import conversations, ticket_events, tickets
from gateway.models import Channel, ConversationState, CustomerRef, OutboundMessage
from gateway.streams import StreamBus
from ticketing.lifecycle import ACTIVE, TicketEvent, TicketStatus, conversation_state, transition


class TicketNotFound(LookupError):
    pass


class TicketService:
    def __init__(self, engine: AsyncEngine, bus: StreamBus, clock: Callable[[], datetime], *,
                 reopen_window: timedelta = timedelta(days=7)) -> None:
        self.engine = engine
        self.bus = bus
        self.clock = clock
        self.reopen_window = reopen_window

    async def get(self, ticket_id: int) -> dict[str, Any]:
        """The ticket row with its audit log, oldest entry first."""
        async with self.engine.connect() as conn:
            row = await _row(conn, ticket_id)
            events = (await conn.execute(
                select(ticket_events).where(ticket_events.c.ticket_id == ticket_id).order_by(ticket_events.c.id)
            )).all()
        return {**row, "events": [dict(e._mapping) for e in events]}

    async def assign(self, ticket_id: int, agent_id: str, *, actor: str) -> dict[str, Any]:
        return await self._apply(ticket_id, TicketEvent.ASSIGN, actor, {"assignee_id": agent_id},
                                 {"agent_id": agent_id})

    async def resolve(self, ticket_id: int, *, actor: str) -> dict[str, Any]:
        return await self._apply(ticket_id, TicketEvent.RESOLVE, actor, {"resolved_at": self.clock()}, {})

    async def hand_back(self, ticket_id: int, *, actor: str) -> dict[str, Any]:
        """The agent gives the conversation back to the bot (the ticket is resolved)."""
        return await self._apply(ticket_id, TicketEvent.HAND_BACK, actor, {"resolved_at": self.clock()}, {},
                                 handed_back=True)

    async def reply(self, ticket_id: int, *, agent_id: str, text: str) -> OutboundMessage:
        """Send an agent's message to the customer on their channel and record it."""
        now = self.clock()
        async with self.engine.begin() as conn:
            row = await _row(conn, ticket_id)
            result = transition(TicketStatus(row["status"]), TicketEvent.AGENT_REPLY, now=now)
            conv = (await conn.execute(
                select(conversations).where(conversations.c.id == row["conversation_id"]))).one()._mapping
            channel = Channel(conv["channel"])
            out = OutboundMessage(
                message_id=f"out_agent_{uuid.uuid4().hex[:20]}", channel=channel,
                conversation_key=conv["conversation_key"], author="agent", text=text,
                recipient=CustomerRef(channel=channel, external_id=conv["customer_external_id"],
                                      display_name=conv["customer_name"]),
                metadata={"ticket_id": ticket_id, "agent_id": agent_id},
            )
            await insert_outbound(conn, out)
            values: dict[str, Any] = {"status": result.status.value, "updated_at": now}
            if row["first_responded_at"] is None:
                values["first_responded_at"] = now  # bot replies never satisfy an SLA clock
            await conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(**values))
            await _audit(conn, ticket_id, now, agent_id, "agent_reply", {"message_id": out.message_id})
        await self.bus.send(out)  # after the commit: never send what is not recorded
        return out

    async def on_customer_message(self, conn: AsyncConnection, conversation_id: str, now: datetime) -> bool:
        """Called (inside the bot worker's transaction) for every customer message. Returns True when a
        human owns the conversation, i.e. the bot must stay silent."""
        row = (await conn.execute(
            select(tickets).where(tickets.c.conversation_id == conversation_id).order_by(tickets.c.id.desc())
        )).first()
        if row is None:
            return False
        m = row._mapping
        status = TicketStatus(m["status"])
        if status in ACTIVE:
            return True
        if m["details"].get("handed_back"):
            return False
        result = transition(status, TicketEvent.CUSTOMER_REPLY, now=now, resolved_at=m["resolved_at"],
                            reopen_window=self.reopen_window)
        if not result.reopened:
            await set_state(conn, conversation_id, ConversationState.BOT)
            return False
        await conn.execute(update(tickets).where(tickets.c.id == m["id"]).values(
            status=result.status.value, open_key=conversation_id, resolved_at=None,
            reopened_count=m["reopened_count"] + 1, updated_at=now))
        await set_state(conn, conversation_id, conversation_state(result.status))
        await _audit(conn, m["id"], now, "customer", "reopened", {})
        return True

    async def _apply(self, ticket_id: int, event: TicketEvent, actor: str, values: dict[str, Any],
                     data: dict[str, Any], *, handed_back: bool = False) -> dict[str, Any]:
        now = self.clock()
        async with self.engine.begin() as conn:
            row = await _row(conn, ticket_id)
            result = transition(TicketStatus(row["status"]), event, now=now)
            values = {**values, "status": result.status.value, "updated_at": now}
            if result.status not in ACTIVE:
                values["open_key"] = None  # frees the conversation for a future ticket
            if handed_back:
                values["details"] = {**row["details"], "handed_back": True}
            await conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(**values))
            await set_state(conn, row["conversation_id"], conversation_state(result.status, handed_back=handed_back))
            await _audit(conn, ticket_id, now, actor, event.value,
                         {"from": row["status"], "to": result.status.value, **data})
        return await self.get(ticket_id)


async def assign_in(conn: AsyncConnection, ticket_id: int, agent_id: str, *, actor: str, now: datetime,
                    only_if_unassigned: bool = False, kind: str = "assign") -> dict[str, Any] | None:
    """Give the ticket to ``agent_id`` inside the caller's transaction; returns the updated row.

    With ``only_if_unassigned`` the update is a compare-and-set on (status new, no assignee): a ticket
    that someone else took meanwhile is left alone and None is returned, so a plan made from a stale
    snapshot can never assign a ticket twice.
    """
    row = await _row(conn, ticket_id)
    result = transition(TicketStatus(row["status"]), TicketEvent.ASSIGN, now=now)
    stmt = update(tickets).where(tickets.c.id == ticket_id)
    if only_if_unassigned:
        stmt = stmt.where(tickets.c.status == TicketStatus.NEW.value, tickets.c.assignee_id.is_(None))
    else:
        stmt = stmt.where(tickets.c.status == row["status"])
    done = await conn.execute(stmt.values(status=result.status.value, assignee_id=agent_id, assigned_at=now,
                                          updated_at=now))
    if (done.rowcount or 0) == 0:
        return None
    await set_state(conn, row["conversation_id"], conversation_state(result.status))
    await _audit(conn, ticket_id, now, actor, kind,
                 {"from": row["status"], "to": result.status.value, "agent_id": agent_id,
                  "previous_agent_id": row["assignee_id"]})
    return {**row, "status": result.status.value, "assignee_id": agent_id, "assigned_at": now}


async def unassign_in(conn: AsyncConnection, ticket_id: int, *, actor: str, now: datetime, why: str,
                      skills: list[str] | None = None) -> dict[str, Any] | None:
    """Put the ticket back in the queue (agent offline, transfer to a skill); None if not active."""
    row = await _row(conn, ticket_id)
    if TicketStatus(row["status"]) not in ACTIVE:
        return None
    status = TicketStatus.NEW if row["status"] == TicketStatus.NEW.value else transition(
        TicketStatus(row["status"]), TicketEvent.UNASSIGN, now=now).status
    values: dict[str, Any] = {"status": status.value, "assignee_id": None, "assigned_at": None, "updated_at": now}
    if skills is not None:
        values["skills"] = sorted(set(skills))
    done = await conn.execute(update(tickets).where(tickets.c.id == ticket_id,
                                                    tickets.c.status == row["status"]).values(**values))
    if (done.rowcount or 0) == 0:
        return None
    await set_state(conn, row["conversation_id"], conversation_state(status))
    await _audit(conn, ticket_id, now, actor, "unassign",
                 {"from": row["status"], "to": status.value, "previous_agent_id": row["assignee_id"], "why": why,
                  **({"skills": values["skills"]} if skills is not None else {})})
    return {**row, **values}


async def _row(conn: AsyncConnection, ticket_id: int) -> dict[str, Any]:
    row = (await conn.execute(select(tickets).where(tickets.c.id == ticket_id))).first()
    if row is None:
        raise TicketNotFound(f"no ticket {ticket_id}")
    return dict(row._mapping)


async def _audit(conn: AsyncConnection, ticket_id: int, at: datetime, actor: str, kind: str,
                 data: dict[str, Any]) -> None:
    await conn.execute(ticket_events.insert().values(ticket_id=ticket_id, at=at, actor=actor, kind=kind, data=data))
