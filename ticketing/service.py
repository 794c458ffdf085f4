"""Ticket operations: each one applies the lifecycle table, updates who owns the conversation and
appends to the audit log in one transaction. Agent replies leave through the outbound stream, so they
reach the customer on the channel they used, exactly like bot replies. Live events and router kicks
go out after the commit (they are hints; the database is the record).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db.conversations import insert_outbound, set_state
from gateway.db.schema import conversations, ticket_events, tickets
from gateway.keys import Keys
from gateway.models import (
    Channel,
    ConversationEvent,
    ConversationState,
    CustomerRef,
    EventKind,
    OutboundMessage,
    QuickReply,
)
from gateway.streams import StreamBus
from ticketing import csat
from ticketing.intake import raised
from ticketing.lifecycle import ACTIVE, TicketEvent, TicketStatus, conversation_state, transition
from ticketing.live import kick_router, publish
from ticketing.policy import PolicyStore, TicketingPolicy
from ticketing.priority import Priority, Tier
from ticketing.sla import effective_warn_before, next_response_due
from ticketing.ticket_rows import (
    TicketConflict,
    TicketNotFound,
    _audit,
    _row,
    assign_in,
    ticket_event_data,
    unassign_in,
)

__all__ = ["CustomerTurn", "TicketConflict", "TicketNotFound", "TicketService", "assign_in", "unassign_in"]


@dataclass(frozen=True, slots=True)
class CustomerTurn:
    """What a customer message means for the ticketing side (see ``on_customer_message``)."""

    human: bool  # True: a human owns the conversation (or ticketing answered): the bot stays silent
    ticket: dict[str, Any] | None = None
    replies: tuple[OutboundMessage, ...] = ()  # e.g. the CSAT thank-you, sent after the commit
    event_data: dict[str, Any] | None = None  # ticket facts for the live event (agents filter on them)


class TicketService:
    def __init__(self, engine: AsyncEngine, bus: StreamBus, clock: Callable[[], datetime], *,
                 policies: PolicyStore | None = None, redis: aioredis.Redis | None = None,
                 keys: Keys | None = None) -> None:
        self.engine = engine
        self.bus = bus
        self.clock = clock
        self.policies = policies or PolicyStore(engine, TicketingPolicy())
        self.redis = redis
        self.keys = keys

    @property
    def reopen_window(self) -> timedelta:
        return self.policies.policy.reopen_window

    async def get(self, ticket_id: int) -> dict[str, Any]:
        """The ticket row with its audit log (notes included), oldest entry first."""
        async with self.engine.connect() as conn:
            row = await _row(conn, ticket_id)
            events = (await conn.execute(
                select(ticket_events).where(ticket_events.c.ticket_id == ticket_id).order_by(ticket_events.c.id)
            )).all()
        return {**row, "events": [dict(e._mapping) for e in events]}

    async def assign(self, ticket_id: int, agent_id: str, *, actor: str) -> dict[str, Any]:
        """A supervisor's explicit assignment (may exceed the agent's capacity: an override)."""
        now = self.clock()
        async with self.engine.begin() as conn:
            row = await assign_in(conn, ticket_id, agent_id, actor=actor, now=now)
        if row is None:
            raise TicketConflict("the ticket changed meanwhile; reload and retry")
        await self._event(row, EventKind.TICKET_ASSIGNED)
        return await self.get(ticket_id)

    async def transfer(self, ticket_id: int, *, actor: str, agent_id: str | None = None,
                       skills: list[str] | None = None) -> dict[str, Any]:
        """To another agent, or back to the queue of other skills (the router picks it up)."""
        if agent_id:
            return await self.assign(ticket_id, agent_id, actor=actor)
        now = self.clock()
        async with self.engine.begin() as conn:
            row = await unassign_in(conn, ticket_id, actor=actor, now=now, why="transfer", skills=skills)
        if row is None:
            raise TicketConflict("only an active ticket can be transferred")
        await self._event(row, EventKind.TICKET_UPDATED)
        await self._kick()
        return await self.get(ticket_id)

    async def resolve(self, ticket_id: int, *, actor: str) -> dict[str, Any]:
        """Resolve, then ask the customer for a 1-5 rating on their channel."""
        await self._apply(ticket_id, TicketEvent.RESOLVE, actor, {"resolved_at": self.clock()}, {})
        if self.policies.policy.ask_csat:
            await self._ask_csat(ticket_id)
        await self._kick()  # the agent has a free slot
        return await self.get(ticket_id)

    async def hand_back(self, ticket_id: int, *, actor: str) -> dict[str, Any]:
        """The agent gives the conversation back to the bot (the ticket is resolved, no CSAT asked:
        the customer is still mid-conversation with the bot)."""
        result = await self._apply(ticket_id, TicketEvent.HAND_BACK, actor, {"resolved_at": self.clock()}, {},
                                   handed_back=True)
        await self._kick()
        return result

    async def reopen(self, ticket_id: int, *, actor: str) -> dict[str, Any]:
        """Staff reopen a resolved ticket; it goes back to its agent, or to the queue if it had none."""
        now = self.clock()
        async with self.engine.begin() as conn:
            row = await _row(conn, ticket_id)
            if row["status"] != TicketStatus.RESOLVED.value:
                transition(TicketStatus(row["status"]), TicketEvent.REOPEN, now=now)  # raises InvalidTransition
            await self._reopen_in(conn, row, now, actor)
        await self._kick()
        return await self.get(ticket_id)

    async def note(self, ticket_id: int, *, actor: str, text: str) -> dict[str, Any]:
        """An internal note: in the audit log and on agents' screens, never sent to the customer."""
        now = self.clock()
        async with self.engine.begin() as conn:
            row = await _row(conn, ticket_id)
            await _audit(conn, ticket_id, now, actor, "note", {"text": text})
        await self._event(row, EventKind.NOTE_ADDED, {"actor": actor})
        return await self.get(ticket_id)

    async def reply(self, ticket_id: int, *, agent_id: str, text: str) -> OutboundMessage:
        """Send an agent's message to the customer on their channel and record it."""
        now = self.clock()
        async with self.engine.begin() as conn:
            row = await _row(conn, ticket_id)
            result = transition(TicketStatus(row["status"]), TicketEvent.AGENT_REPLY, now=now)
            out = await self._outbound(conn, row, text, author="agent",
                                       metadata={"ticket_id": ticket_id, "agent_id": agent_id})
            values: dict[str, Any] = {"status": result.status.value, "updated_at": now, "next_response_due": None}
            if row["first_responded_at"] is None:
                values["first_responded_at"] = now  # bot replies never satisfy an SLA clock
            await conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(**values))
            await _audit(conn, ticket_id, now, agent_id, "agent_reply", {"message_id": out.message_id})
        await self.bus.send(out)  # after the commit: never send what is not recorded
        await self._event({**row, **values}, EventKind.AGENT_REPLIED, {"message_id": out.message_id,
                                                                        "text": text[:500]})
        return out

    async def on_customer_message(self, conn: AsyncConnection, conversation_id: str, now: datetime,
                                  text: str = "") -> CustomerTurn:
        """Called inside the bot worker's transaction for a message on a conversation the bot does not
        own. Starts the next-response clock, records a CSAT rating, or reopens a resolved ticket."""
        found = (await conn.execute(
            select(tickets).where(tickets.c.conversation_id == conversation_id).order_by(tickets.c.id.desc())
        )).first()
        if found is None:
            return CustomerTurn(False)
        row = dict(found._mapping)
        status = TicketStatus(row["status"])
        if status in ACTIVE:
            await self._customer_wrote(conn, row, now)
            return CustomerTurn(True, row, event_data=ticket_event_data(row))
        rating = csat.parse_rating(text) if row["csat_requested_at"] and row["csat"] is None else None
        if rating is not None:
            await conn.execute(update(tickets).where(tickets.c.id == row["id"]).values(
                csat=rating.score, csat_comment=rating.comment, csat_at=now, updated_at=now))
            await _audit(conn, row["id"], now, "customer", "csat", {"score": rating.score, "comment": rating.comment})
            if rating.score > 2:
                await set_state(conn, conversation_id, ConversationState.BOT)
            # else the conversation stays RESOLVED: the thank-you invites them to tell us more, and that
            # next message comes back here (kept as the CSAT comment, and it reopens the ticket)
            thanks = await self._outbound(conn, row, csat.thanks_text(row["language"], rating.score), author="system",
                                          metadata={"ticket_id": row["id"], "csat": rating.score})
            return CustomerTurn(True, row, (thanks,), {**ticket_event_data(row), "csat": rating.score})
        if row["csat"] is not None and row["csat"] <= 2 and row["csat_comment"] is None and not csat.is_courtesy(text):
            await conn.execute(update(tickets).where(tickets.c.id == row["id"]).values(csat_comment=text[:1000]))
            await _audit(conn, row["id"], now, "customer", "csat_comment", {"text": text[:1000]})
        if row["details"].get("handed_back"):
            await set_state(conn, conversation_id, ConversationState.BOT)
            return CustomerTurn(False, row)
        if csat.is_courtesy(text):
            # "谢谢" after a resolution neither reopens the ticket nor needs an answer; the conversation
            # stays resolved so that a real follow-up ("还是没收到") still reopens it.
            return CustomerTurn(True, row)
        result = transition(status, TicketEvent.CUSTOMER_REPLY, now=now, resolved_at=row["resolved_at"],
                            reopen_window=self.reopen_window)
        if not result.reopened:
            await set_state(conn, conversation_id, ConversationState.BOT)
            return CustomerTurn(False, row)
        row = await self._reopen_in(conn, row, now, "customer")
        return CustomerTurn(True, row, event_data=ticket_event_data(row))

    # --- internals -------------------------------------------------------------------------------
    async def _customer_wrote(self, conn: AsyncConnection, row: dict[str, Any], now: datetime) -> None:
        values: dict[str, Any] = {"last_customer_message_at": now, "updated_at": now}
        status = TicketStatus(row["status"])
        if status is TicketStatus.PENDING_CUSTOMER:
            values["status"] = transition(status, TicketEvent.CUSTOMER_REPLY, now=now).status.value
        if status in {TicketStatus.OPEN, TicketStatus.PENDING_CUSTOMER} and row["next_response_due"] is None:
            # The agent has answered before; this message starts a next-response clock.
            sla = await self.policies.current_sla(conn)
            priority, tier = Priority(row["priority"]), Tier(row["tier"])
            channel = Channel(row["channel"]) if row["channel"] else None
            due = next_response_due(now, priority, tier, channel, sla)
            target = sla.targets_for(priority, tier, channel).next_response
            warn_at = due - effective_warn_before(sla.warn_before, target)
            current = row["sla_next_check_at"]
            values["next_response_due"] = due
            values["sla_next_check_at"] = warn_at if current is None else min(current, warn_at)
        await conn.execute(update(tickets).where(tickets.c.id == row["id"]).values(**values))
        row.update(values)

    async def _reopen_in(self, conn: AsyncConnection, row: dict[str, Any], now: datetime,
                         actor: str) -> dict[str, Any]:
        status = TicketStatus.OPEN if row["assignee_id"] else TicketStatus.NEW
        priority = raised(row["priority"]) if row["reopened_count"] == 0 else Priority(row["priority"])
        sla = await self.policies.current_sla(conn)
        channel = Channel(row["channel"]) if row["channel"] else None
        due = next_response_due(now, priority, Tier(row["tier"]), channel, sla)
        values: dict[str, Any] = {
            "status": status.value, "open_key": row["conversation_id"], "resolved_at": None,
            "reopened_count": row["reopened_count"] + 1, "updated_at": now, "priority": int(priority),
            "priority_reasons": [*row["priority_reasons"], {"code": "reopened",
                                                            "text": "ticket reopened: the issue is not solved"}],
            "next_response_due": due, "sla_next_check_at": now, "last_customer_message_at": now,
        }
        await conn.execute(update(tickets).where(tickets.c.id == row["id"]).values(**values))
        await set_state(conn, row["conversation_id"], conversation_state(status))
        await _audit(conn, row["id"], now, actor, "reopened", {"to": status.value, "priority": priority.name})
        return {**row, **values}

    async def _ask_csat(self, ticket_id: int) -> None:
        now = self.clock()
        async with self.engine.begin() as conn:
            row = await _row(conn, ticket_id)
            if row["csat_requested_at"] is not None:
                return  # asked once per ticket: a reopened-and-resolved ticket is not asked again
            lang = row["language"] or "zh"
            out = await self._outbound(conn, row, csat.ask_text(lang), author="system",
                                       metadata={"ticket_id": ticket_id, "csat_request": True},
                                       quick_replies=csat.quick_replies(lang))
            await conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(csat_requested_at=now))
            await _audit(conn, ticket_id, now, "system", "csat_requested", {"message_id": out.message_id})
        await self.bus.send(out)

    async def _outbound(self, conn: AsyncConnection, row: dict[str, Any], text: str, *, author: str,
                        metadata: dict[str, Any], quick_replies: Sequence[QuickReply] = ()) -> OutboundMessage:
        conv = (await conn.execute(
            select(conversations).where(conversations.c.id == row["conversation_id"]))).one()._mapping
        channel = Channel(conv["channel"])
        out = OutboundMessage(
            message_id=f"out_{author}_{uuid.uuid4().hex[:20]}", channel=channel,
            conversation_key=conv["conversation_key"], author=author, text=text,
            recipient=CustomerRef(channel=channel, external_id=conv["customer_external_id"],
                                  display_name=conv["customer_name"]),
            quick_replies=tuple(quick_replies), metadata=metadata,
        )
        await insert_outbound(conn, out)
        return out

    async def _event(self, row: dict[str, Any], kind: EventKind, extra: dict[str, Any] | None = None) -> None:
        if self.redis is not None and self.keys is not None:
            await publish(self.redis, self.keys, [ConversationEvent(
                kind=kind, conversation_id=row["conversation_id"], data={**ticket_event_data(row), **(extra or {})})])

    async def _kick(self) -> None:
        if self.redis is not None and self.keys is not None:
            await kick_router(self.redis, self.keys)

    async def _apply(self, ticket_id: int, event: TicketEvent, actor: str, values: dict[str, Any],
                     data: dict[str, Any], *, handed_back: bool = False) -> dict[str, Any]:
        now = self.clock()
        async with self.engine.begin() as conn:
            row = await _row(conn, ticket_id)
            result = transition(TicketStatus(row["status"]), event, now=now)
            values = {**values, "status": result.status.value, "updated_at": now}
            if result.status not in ACTIVE:
                values["open_key"] = None  # frees the conversation for a future ticket
                values["next_response_due"] = None
                values["sla_next_check_at"] = None  # nothing left to time: leave the scheduler's index
            if handed_back:
                values["details"] = {**row["details"], "handed_back": True}
            await conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(**values))
            await set_state(conn, row["conversation_id"], conversation_state(result.status, handed_back=handed_back))
            await _audit(conn, ticket_id, now, actor, event.value,
                         {"from": row["status"], "to": result.status.value, **data})
        await self._event({**row, **values}, EventKind.TICKET_UPDATED)
        return await self.get(ticket_id)
