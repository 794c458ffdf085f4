"""The SLA scheduler: fires warnings and breaches from the due times stored on tickets.

Timers are data, not sleeps. The intake stores each ticket's due times and ``sla_next_check_at``, the
earliest instant something may fire; this scheduler scans that index, decides with the pure
``plan_sla_actions`` what fires now, records it in ``sla_fired`` (so nothing fires twice) and moves
``sla_next_check_at`` on. A restarted process, or a second replica, finds exactly the same work.

Exactly-once per clock event: a short Redis lock keeps two processes from scanning at the same time,
and every write is a compare-and-set on the values read, so even an expired lock cannot fire twice.
Supervisor alerts and live events go out after the commit (the audit log in ``ticket_events`` is the
record; a Redis hiccup between commit and alert loses a notification, never the fact).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.schema import tickets
from gateway.keys import Keys
from gateway.models import Channel, ConversationEvent, EventKind
from gateway.redis_lock import TokenLocks
from ticketing.intake import raised
from ticketing.lifecycle import ACTIVE, TicketStatus
from ticketing.live import kick_router, publish
from ticketing.priority import Priority, Tier
from ticketing.sla import ClockState, SlaPolicy, clock_status
from ticketing.ticket_rows import _audit

log = logging.getLogger(__name__)



class SlaClock(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class AlertKind(StrEnum):
    WARNING = "warning"
    BREACH = "breach"


def fired_key(clock: SlaClock, kind: AlertKind, due: datetime) -> str:
    """The ``sla_fired`` entry of one event. A ticket has many next-response clocks (one per unanswered
    customer message), so their keys carry the due instant: each new clock warns and breaches once."""
    if clock is SlaClock.NEXT_RESPONSE:
        return f"{clock.value}:{due.astimezone(UTC).isoformat()}:{kind.value}"
    return f"{clock.value}:{kind.value}"


@dataclass(frozen=True, slots=True)
class SlaTicket:
    """The ticket columns the SLA rules read."""

    priority: Priority
    tier: Tier
    channel: Channel | None
    status: TicketStatus
    first_response_due: datetime | None
    resolution_due: datetime | None
    next_response_due: datetime | None = None
    first_responded_at: datetime | None = None
    resolved_at: datetime | None = None
    sla_fired: frozenset[str] = frozenset()

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SlaTicket:
        channel = row["channel"]
        return cls(
            priority=Priority(row["priority"]),
            tier=Tier(row["tier"]),
            channel=Channel(channel) if channel in set(Channel) else None,
            status=TicketStatus(row["status"]),
            first_response_due=row["first_response_due"],
            resolution_due=row["resolution_due"],
            next_response_due=row["next_response_due"],
            first_responded_at=row["first_responded_at"],
            resolved_at=row["resolved_at"],
            sla_fired=frozenset(row["sla_fired"] or ()),
        )


@dataclass(frozen=True, slots=True)
class SlaAction:
    """One warning or breach to fire now."""

    clock: SlaClock
    kind: AlertKind
    due: datetime


@dataclass(frozen=True, slots=True)
class SlaPlan:
    """What a scan does to one ticket: fire ``actions``, store ``fired`` and ``next_check_at``."""

    actions: tuple[SlaAction, ...]
    fired: tuple[str, ...]  # the complete new ``sla_fired`` list, sorted
    next_check_at: datetime | None  # None: no clock can fire any more
    priority: Priority  # after the breach action (one level more urgent per breach)

    @property
    def breaches(self) -> tuple[SlaAction, ...]:
        return tuple(a for a in self.actions if a.kind is AlertKind.BREACH)


def plan_sla_actions(ticket: SlaTicket, policy: SlaPolicy, now: datetime) -> SlaPlan:
    """Decide what fires at ``now`` (pure).

    - Inactive tickets (resolved, closed) fire nothing and need no more checks.
    - A key in ``sla_fired`` never fires again; met clocks (even met late) never fire.
    - A breach found without its warning having fired (the scheduler was down across the warning
      window) fires only the breach -- a warning after the fact is noise -- and records both keys.
    - Clocks stop as in ``sla.sla_state``: first response on a human reply or resolution, resolution
      on resolution; a next-response clock is cleared by the agent's reply (the column goes NULL).
    - One priority level per breach, so the outcome does not depend on how scans were spaced.
    """
    if ticket.status not in ACTIVE:
        return SlaPlan((), tuple(sorted(ticket.sla_fired)), None, ticket.priority)
    targets = policy.targets_for(ticket.priority, ticket.tier, ticket.channel)
    stops = [t for t in (ticket.first_responded_at, ticket.resolved_at) if t is not None]
    clocks = (
        (SlaClock.FIRST_RESPONSE, ticket.first_response_due, targets.first_response, min(stops, default=None)),
        (SlaClock.NEXT_RESPONSE, ticket.next_response_due, targets.next_response, ticket.resolved_at),
        (SlaClock.RESOLUTION, ticket.resolution_due, targets.resolution, ticket.resolved_at),
    )
    # Keys of next-response clocks that have been answered are dead weight: drop them so a long chat
    # does not grow the list forever (a due instant never comes back).
    live_next = ({fired_key(SlaClock.NEXT_RESPONSE, k, ticket.next_response_due) for k in AlertKind}
                 if ticket.next_response_due is not None else set())
    prefix = f"{SlaClock.NEXT_RESPONSE.value}:"
    fired = {k for k in ticket.sla_fired if not k.startswith(prefix) or k in live_next}
    actions: list[SlaAction] = []
    upcoming: list[datetime] = []
    for clock, due, target, done_at in clocks:
        if due is None:
            continue
        status = clock_status(due, target, now=now, done_at=done_at, warn_before=policy.warn_before)
        warn_key, breach_key = fired_key(clock, AlertKind.WARNING, due), fired_key(clock, AlertKind.BREACH, due)
        if status.state is ClockState.BREACHED:
            if breach_key not in fired:
                actions.append(SlaAction(clock, AlertKind.BREACH, due))
            fired |= {warn_key, breach_key}
        elif status.state is ClockState.WARNING:
            if warn_key not in fired:
                actions.append(SlaAction(clock, AlertKind.WARNING, due))
                fired.add(warn_key)
            if breach_key not in fired:
                upcoming.append(due)
        elif status.state is ClockState.OK:
            if warn_key not in fired:
                upcoming.append(status.warn_at)
            elif breach_key not in fired:
                upcoming.append(due)
    breaches = sum(1 for a in actions if a.kind is AlertKind.BREACH)
    return SlaPlan(tuple(actions), tuple(sorted(fired)), min(upcoming, default=None),
                   raised(ticket.priority, breaches) if breaches else ticket.priority)


@dataclass(frozen=True, slots=True)
class ScanResult:
    """Counts of one scan. ``skipped``: another scheduler held the lock, this one did nothing."""

    tickets: int = 0  # tickets whose check was due and got written
    warnings: int = 0
    breaches: int = 0
    errors: int = 0
    skipped: bool = False


class SlaScheduler:
    """Scans ``tickets.sla_next_check_at`` and fires what is due (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, redis: aioredis.Redis, keys: Keys, clock: Callable[[], datetime],
                 policy: Callable[[], Awaitable[SlaPolicy]], *, batch_size: int = 200, lock_ttl_ms: int = 30_000,
                 alerts_maxlen: int = 100_000) -> None:
        self.engine = engine
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.policy = policy
        self.batch_size = batch_size
        self.lock_ttl_ms = lock_ttl_ms
        self.alerts_maxlen = alerts_maxlen
        self._locks = TokenLocks(redis)

    async def run(self, stop: asyncio.Event, interval_s: float = 5.0) -> None:
        """Scan every ``interval_s`` until ``stop`` is set; Redis and database outages only log."""
        while not stop.is_set():
            try:
                await self.scan_once()
            except Exception as exc:  # a timer loop must outlive outages; the next pass retries
                log.warning("SLA scan failed (%r); retrying in %.1fs", exc, interval_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)

    async def scan_once(self, now: datetime | None = None) -> ScanResult:
        """Fire every warning and breach due at ``now`` (default: the clock), each exactly once."""
        now = self.clock() if now is None else now
        token = await self._locks.acquire(self.keys.sla_scan_lock, self.lock_ttl_ms)
        if token is None:
            return ScanResult(skipped=True)
        try:
            return await self._scan(await self.policy(), now)
        finally:
            await self._locks.release(self.keys.sla_scan_lock, token, quiet=True)

    async def _scan(self, policy: SlaPolicy, now: datetime) -> ScanResult:
        written = warnings = breaches = errors = 0
        cursor: tuple[datetime, int] | None = None
        while True:
            rows = await self._due(now, cursor)
            for row in rows:
                try:
                    plan = await self._apply(row, policy, now)
                except Exception:  # one bad ticket must not stop the others' timers
                    log.exception("SLA check of ticket %s failed", row["id"])
                    errors += 1
                    continue
                if plan is None:
                    continue  # changed meanwhile: the next scan judges the new state
                written += 1
                breaches += len(plan.breaches)
                warnings += len(plan.actions) - len(plan.breaches)
                await self._announce(row, plan, now)
            if len(rows) < self.batch_size:
                return ScanResult(written, warnings, breaches, errors)
            cursor = (rows[-1]["sla_next_check_at"], rows[-1]["id"])

    async def _due(self, now: datetime, cursor: tuple[datetime, int] | None) -> list[dict[str, Any]]:
        # Inactive tickets are selected too: their check is cleared (set NULL) once, so stale check
        # times of resolved tickets do not pile up in front of the index scan forever.
        at = tickets.c.sla_next_check_at
        query = select(tickets).where(at.is_not(None), at <= now)
        if cursor is not None:  # keyset pagination: a row that failed its compare-and-set is not retried
            query = query.where(or_(at > cursor[0], and_(at == cursor[0], tickets.c.id > cursor[1])))
        async with self.engine.connect() as conn:
            result = await conn.execute(query.order_by(at, tickets.c.id).limit(self.batch_size))
            return [dict(r._mapping) for r in result]

    async def _apply(self, row: dict[str, Any], policy: SlaPolicy, now: datetime) -> SlaPlan | None:
        """Write the plan for one ticket in one transaction; None when the row changed since it was read."""
        ticket = SlaTicket.from_row(row)
        plan = plan_sla_actions(ticket, policy, now)
        values: dict[str, Any] = {"sla_fired": list(plan.fired), "sla_next_check_at": plan.next_check_at}
        if plan.breaches:
            values["priority"] = int(plan.priority)
            values["priority_reasons"] = [*(row["priority_reasons"] or []), *(
                {"code": "sla_breach", "text": f"SLA breached: {a.clock.value}"} for a in plan.breaches)]
            values["updated_at"] = now
        async with self.engine.begin() as conn:
            # Compare-and-set on what the plan was made from: a concurrent scan, an agent's reply or a new
            # customer message (all change one of these) make this a no-op instead of a double fire.
            done = await conn.execute(update(tickets).where(
                tickets.c.id == row["id"],
                tickets.c.sla_next_check_at == row["sla_next_check_at"],
                tickets.c.updated_at == row["updated_at"],
            ).values(**values))
            if (done.rowcount or 0) == 0:
                return None
            priority = ticket.priority
            for action in plan.actions:
                data = {"clock": action.clock.value, "due": action.due.isoformat()}
                await _audit(conn, row["id"], now, "system", f"sla_{action.kind.value}", data)
                if action.kind is AlertKind.BREACH and priority is not Priority.P0:
                    await _audit(conn, row["id"], now, "system", "priority_raised",
                                 {**data, "from": priority.name, "to": raised(priority).name})
                    priority = raised(priority)
        return plan

    async def _announce(self, row: dict[str, Any], plan: SlaPlan, now: datetime) -> None:
        """Supervisor queue entries and live events, after the commit (hints; the audit log is the record)."""
        events: list[ConversationEvent] = []
        for action in plan.actions:
            facts = {"ticket_id": row["id"], "assignee_id": row["assignee_id"], "clock": action.clock.value,
                     "due": action.due.isoformat(), "priority": int(plan.priority)}
            try:
                await self.redis.xadd(self.keys.supervisor_alerts, {
                    "kind": f"sla_{action.kind.value}", **{k: "" if v is None else str(v) for k, v in facts.items()},
                }, maxlen=self.alerts_maxlen, approximate=True)
            except aioredis.RedisError:
                log.warning("could not queue the SLA %s of ticket %s for supervisors", action.kind, row["id"])
            kind = EventKind.SLA_BREACHED if action.kind is AlertKind.BREACH else EventKind.SLA_WARNING
            events.append(ConversationEvent(kind=kind, conversation_id=row["conversation_id"], at=now, data=facts))
        await publish(self.redis, self.keys, events)
        if plan.breaches and row["assignee_id"] is None:
            await kick_router(self.redis, self.keys)  # a queued ticket just became more urgent: re-plan


__all__ = [
    "AlertKind", "ScanResult", "SlaAction", "SlaClock", "SlaPlan", "SlaScheduler", "SlaTicket", "fired_key",
    "plan_sla_actions",
]
