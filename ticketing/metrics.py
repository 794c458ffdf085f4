"""Service metrics as pure functions over plain ticket and message records (no I/O; ``now`` passed in).

``ticketing.reports`` loads the rows and calls these; each function takes a half-open ``Window``
``[start, end)`` and returns a JSON-ready dict. Means and rates of an empty set are ``None``, never a
``ZeroDivisionError`` and never a misleading 0. Durations are wall-clock seconds (what the customer
lived through); SLA *attainment* is where business hours count, through the stored due times.

Definitions, and where they refine the naive one:

- **First response time (FRT)**: tickets *created* in the window that have ``first_responded_at`` (set
  only by a human reply; bot replies never count): count, mean, median, p90 of
  ``first_responded_at - created_at``. p90 is *nearest rank* (a value some customer really waited;
  one ticket gives its own value). ``awaiting`` counts tickets created in the window that are still
  active with no reply: FRT alone looks better the more tickets are ignored, so the two go together.
  Tickets resolved or handed back without a reply have no FRT.
- **Average handle time (AHT)**: tickets *resolved* in the window: mean of ``resolved_at`` minus the
  first assignment (earliest ``assign``/``claim`` event, else ``assigned_at``, else ``created_at``),
  *minus* the time a reopened ticket sat resolved (``resolve``/``hand_back`` event to ``reopened``
  event): days waiting for the customer to come back are not handling. It still includes time in
  ``pending_customer``: we record ownership, not keyboard time, so it is an upper bound.
- **First-contact resolution (FCR)**: of the tickets resolved in the window, the share never reopened.
  Provisional for recent resolutions: a ticket may still be reopened within the reopen window.
- **CSAT**: ratings whose ``csat_at`` is in the window: count, mean (1-5), share of 4-5 ("satisfied",
  the usual CSAT score), the 1..5 distribution; plus ``requested`` (asked in the window) and
  ``response_rate`` (of those, answered so far): a high score from 3 % of customers is not the same.
- **SLA attainment**: the tickets *judged* in the window: those resolved in it, plus active ones whose
  first-response or resolution due time fell in it and has passed (``<= now``) unmet. Attained = first
  response met AND resolution met (no due time = met). As in ``ticketing.sla.sla_state``, resolving
  without a reply stops the first-response clock, so a report never contradicts what the SLA
  scheduler paged. An active ticket can be judged (missed) in one window and again when resolved.
  **Breaches** are counted per clock by *when they happened* -- a clock breaches at its due instant --
  not per judged ticket, from the union of ``sla_fired`` and the ``sla_breach`` audit events (the
  scheduler prunes answered next-response keys from ``sla_fired``, so it alone undercounts; rows
  written without the scheduler have only ``sla_fired``). Next-response clocks (many per ticket)
  appear only here.
- **Backlog** (now, not per window): active tickets by priority (``P0``..``P3``), status, priority x
  status and assignee; ``waiting`` = status new with nobody assigned, and the oldest wait, measured
  from creation or the latest reopening (a ticket reopened after a week has not waited a week);
  ``overdue`` = active past a due time with the clock still running.
- **Bot deflection**: per *contact*, i.e. a conversation with at least one customer message in the
  window (conversation ids are per channel thread, so a Telegram chat lives for years and counting by
  ``conversations.created_at`` would miss returning customers). Escalated = the conversation got a
  ticket created in the window; deflected = the others; rate = deflected / contacts. Recent contacts
  are provisional (the bot may still escalate them; one escalated after the window's end stays
  deflected in it -- a boundary effect of seconds, since escalation follows the customer's message).
- **Volume by channel**: contacts, inbound messages and tickets created, per channel.
- **Top unanswered questions**: summaries of tickets created in the window that the bot could not
  answer (reason ``out_of_scope`` / ``low_confidence``), normalised (NFKC, lowercase, whitespace
  collapsed, trailing punctuation incl. Chinese ？。！～ stripped), counted; ties by latest ticket.
- **Groups**: by agent (current assignee, ``unassigned`` when none), team (the assignee's team), channel
  (``tickets.channel``, else the conversation's), day (calendar day in China time, UTC+8; every day
  of the window is listed, empty ones too, so a trend chart has no gaps) or hour (China-time clock
  hour, keyed by its start such as ``2024-11-11T10:00:00+08:00``; the dashboard's "today" trend).
  Within a day or hour each metric uses its own anchor (created, resolved, rated, due), exactly as for
  the whole window. The grouping and the
  dashboard's preset periods live in ``ticketing.metric_groups``.
"""

from __future__ import annotations

import math
import re
import statistics
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ticketing.escalation import EscalationReason
from ticketing.lifecycle import TicketEvent, TicketStatus

ACTIVE_STATUSES = tuple(s.value for s in (TicketStatus.NEW, TicketStatus.ASSIGNED, TicketStatus.OPEN,
                                          TicketStatus.PENDING_CUSTOMER))
PRIORITIES = ("P0", "P1", "P2", "P3")
UNANSWERED_REASONS = frozenset({EscalationReason.OUT_OF_SCOPE.value, EscalationReason.LOW_CONFIDENCE.value})
UNASSIGNED = "unassigned"
# ticket_events kinds: ticket_rows.assign_in writes "assign" or "claim"; the service writes the lifecycle
# event's value on resolve/hand back, and "reopened" when the customer or staff reopen.
ASSIGN_KINDS = frozenset({TicketEvent.ASSIGN.value, "claim"})
RESOLVE_KINDS = frozenset({TicketEvent.RESOLVE.value, TicketEvent.HAND_BACK.value})
REOPEN_KIND = "reopened"
SLA_CLOCKS = ("first_response", "resolution", "next_response")


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open period ``[start, end)`` of aware datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name, value in (("start", self.start), ("end", self.end)):
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
        if self.end <= self.start:
            raise ValueError(f"end ({self.end.isoformat()}) must be after start ({self.start.isoformat()})")

    def __contains__(self, at: object) -> bool:
        return isinstance(at, datetime) and self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class TicketRecord:
    """One ticket row with what the metrics need; ``channel`` and ``team`` already resolved."""

    id: int
    conversation_id: str
    status: str
    created_at: datetime
    channel: str
    reason: str = ""
    summary: str = ""
    priority: int = 2
    assignee_id: str | None = None
    team: str = UNASSIGNED
    assigned_at: datetime | None = None
    first_responded_at: datetime | None = None
    resolved_at: datetime | None = None
    reopened_count: int = 0
    csat: int | None = None
    csat_at: datetime | None = None
    csat_requested_at: datetime | None = None
    first_response_due: datetime | None = None
    resolution_due: datetime | None = None
    sla_fired: tuple[str, ...] = ()
    events: tuple[tuple[str, datetime], ...] = ()  # (kind, at) of assign/claim/resolve/hand_back/reopened
    breach_log: tuple[tuple[str, datetime], ...] = ()  # (clock, due) of the "sla_breach" audit events

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One customer message: which conversation, on which channel, when."""

    conversation_id: str
    channel: str
    at: datetime


def ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100): the smallest value with at least q % at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def duration_stats(values: Sequence[float]) -> dict[str, Any]:
    return {"count": len(values), "mean": statistics.fmean(values) if values else None,
            "median": statistics.median(values) if values else None, "p90": percentile(values, 90)}


def _seconds(later: datetime, earlier: datetime) -> float:
    # Clamped: a reply stamped before creation is clock skew between writers, not a negative wait.
    return max(0.0, (later - earlier).total_seconds())


def first_response(tickets: Iterable[TicketRecord], window: Window) -> dict[str, Any]:
    created = [t for t in tickets if t.created_at in window]
    waits = [_seconds(t.first_responded_at, t.created_at) for t in created if t.first_responded_at is not None]
    awaiting = sum(1 for t in created if t.first_responded_at is None and t.active)
    return {**duration_stats(waits), "awaiting": awaiting}


def first_assigned_at(ticket: TicketRecord) -> datetime:
    """Earliest assign/claim event; else the stored ``assigned_at``; else creation."""
    assigned = [at for kind, at in ticket.events if kind in ASSIGN_KINDS]
    return min(assigned) if assigned else ticket.assigned_at or ticket.created_at


def handle_seconds(ticket: TicketRecord) -> float | None:
    """Owned time from first assignment to resolution, minus resolved-then-reopened gaps."""
    if ticket.resolved_at is None:
        return None
    begin, finish = first_assigned_at(ticket), ticket.resolved_at
    idle, resolved_at = 0.0, None
    for kind, at in sorted(ticket.events, key=lambda e: e[1]):
        if kind in RESOLVE_KINDS:
            resolved_at = at
        elif kind == REOPEN_KIND and resolved_at is not None:
            idle += max(0.0, (min(at, finish) - max(resolved_at, begin)).total_seconds())
            resolved_at = None
    return max(0.0, _seconds(finish, begin) - idle)


def handle_time(tickets: Iterable[TicketRecord], window: Window) -> dict[str, Any]:
    values = [s for t in tickets if t.resolved_at in window and (s := handle_seconds(t)) is not None]
    return {"count": len(values), "mean": statistics.fmean(values) if values else None}


def first_contact_resolution(tickets: Iterable[TicketRecord], window: Window) -> dict[str, Any]:
    resolved = [t for t in tickets if t.resolved_at in window]
    first = sum(1 for t in resolved if t.reopened_count == 0)
    return {"resolved": len(resolved), "first_contact": first, "rate": ratio(first, len(resolved))}


def csat(tickets: Iterable[TicketRecord], window: Window) -> dict[str, Any]:
    tickets = list(tickets)
    scores = [t.csat for t in tickets if t.csat_at in window and t.csat is not None and 1 <= t.csat <= 5]
    asked = [t for t in tickets if t.csat_requested_at in window]
    answered = sum(1 for t in asked if t.csat is not None)
    return {
        "count": len(scores),
        "mean": statistics.fmean(scores) if scores else None,
        "satisfied_share": ratio(sum(1 for s in scores if s >= 4), len(scores)),
        "distribution": {str(n): scores.count(n) for n in range(1, 6)},
        "requested": len(asked),
        "response_rate": ratio(answered, len(asked)),
    }


def breach_times(ticket: TicketRecord) -> set[tuple[str, datetime]]:
    """Every breach of the ticket as (clock, due instant), merged from the audit log and ``sla_fired``.

    ``sla_fired`` keys are "first_response:breach", "resolution:breach" (their due is the ticket's
    column) and "next_response:<due iso>:breach"; a key whose due cannot be known is left out.
    """
    found = {(clock, due.astimezone(UTC)) for clock, due in ticket.breach_log}
    columns = {"first_response": ticket.first_response_due, "resolution": ticket.resolution_due}
    for entry in ticket.sla_fired:
        clock, _, rest = entry.partition(":")
        if rest != "breach" and not rest.endswith(":breach"):
            continue
        due = columns.get(clock) if rest == "breach" else _parse_instant(rest.removesuffix(":breach"))
        if due is not None:
            found.add((clock, due.astimezone(UTC)))
    return found


def _parse_instant(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _sla_verdict(t: TicketRecord, window: Window, now: datetime) -> bool | None:
    """Whether ``t`` attained its SLA, or None when it is not judged in ``window``."""
    stops = [s for s in (t.first_responded_at, t.resolved_at) if s is not None and s <= now]
    first_done = min(stops) if stops else None
    first_met = t.first_response_due is None or (first_done is not None and first_done <= t.first_response_due)
    resolution_met = t.resolution_due is None or (t.resolved_at is not None and t.resolved_at <= t.resolution_due)
    if t.resolved_at in window:
        return first_met and resolution_met
    if not t.active:
        return None
    first_missed = not first_met and _passed_in(t.first_response_due, window, now)
    return False if first_missed or _passed_in(t.resolution_due, window, now) else None


def _passed_in(due: datetime | None, window: Window, now: datetime) -> bool:
    """A due time in the window that has already come (a clock is breached *at* its due instant)."""
    return due is not None and due in window and due <= now


def sla_attainment(tickets: Sequence[TicketRecord], window: Window, now: datetime) -> dict[str, Any]:
    judged = [(t, v) for t in tickets if (v := _sla_verdict(t, window, now)) is not None]
    met = sum(1 for _, v in judged if v)
    counts = Counter(clock for t in tickets for clock, due in breach_times(t) if due in window)
    return {"judged": len(judged), "met": met, "rate": ratio(met, len(judged)),
            "breaches": {clock: counts.get(clock, 0) for clock in SLA_CLOCKS},
            "breaches_total": sum(counts.values())}


def priority_label(priority: int) -> str:
    return f"P{priority}"


def backlog(tickets: Iterable[TicketRecord], now: datetime) -> dict[str, Any]:
    active = [t for t in tickets if t.active]
    grid = {p: dict.fromkeys(ACTIVE_STATUSES, 0) for p in PRIORITIES}
    for t in active:
        grid.setdefault(priority_label(t.priority), dict.fromkeys(ACTIVE_STATUSES, 0))[t.status] += 1
    waiting = [t for t in active if t.status == TicketStatus.NEW.value and t.assignee_id is None]
    since = {t.id: max([t.created_at, *(at for kind, at in t.events if kind == REOPEN_KIND)]) for t in waiting}
    oldest = min(waiting, key=lambda t: (since[t.id], t.id), default=None)
    overdue = sum(1 for t in active if (t.first_responded_at is None and t.first_response_due is not None
                                        and t.first_response_due <= now)
                  or (t.resolution_due is not None and t.resolution_due <= now))
    return {
        "total": len(active),
        "by_priority": {p: sum(row.values()) for p, row in grid.items()},
        "by_status": {s: sum(1 for t in active if t.status == s) for s in ACTIVE_STATUSES},
        "by_priority_status": grid,
        "by_assignee": dict(sorted(Counter(t.assignee_id or UNASSIGNED for t in active).items())),
        "waiting": len(waiting),
        "oldest_waiting_seconds": _seconds(now, since[oldest.id]) if oldest else None,
        "oldest_waiting_ticket_id": oldest.id if oldest else None,
        "overdue": overdue,
    }


def deflection(inbound: Iterable[InboundRecord], tickets: Iterable[TicketRecord], window: Window) -> dict[str, Any]:
    contacts = {m.conversation_id for m in inbound if m.at in window}
    escalated = len(contacts & {t.conversation_id for t in tickets if t.created_at in window})
    return {"conversations": len(contacts), "escalated": escalated, "deflected": len(contacts) - escalated,
            "rate": ratio(len(contacts) - escalated, len(contacts))}


def deflection_by_channel(inbound: Iterable[InboundRecord], tickets: Sequence[TicketRecord],
                          window: Window) -> dict[str, dict[str, Any]]:
    """``deflection`` per channel of the customer's messages."""
    per_channel: dict[str, list[InboundRecord]] = defaultdict(list)
    for m in inbound:
        per_channel[m.channel].append(m)
    return {ch: deflection(per_channel[ch], tickets, window) for ch in sorted(per_channel)}


def volume_by_channel(inbound: Iterable[InboundRecord], tickets: Iterable[TicketRecord],
                      window: Window) -> dict[str, dict[str, int]]:
    contacts: dict[str, set[str]] = defaultdict(set)
    messages: Counter[str] = Counter()
    for m in inbound:
        if m.at in window:
            contacts[m.channel].add(m.conversation_id)
            messages[m.channel] += 1
    created = Counter(t.channel for t in tickets if t.created_at in window)
    return {ch: {"conversations": len(contacts.get(ch, ())), "inbound_messages": messages[ch], "tickets": created[ch]}
            for ch in sorted(set(contacts) | set(created))}


_SPACE = re.compile(r"\s+")
_TRAILING_EXTRA = frozenset("~～")  # math symbols to Unicode, but chat filler like "发货了吗～"


def normalize_question(text: str) -> str:
    """Fold trivial variants together: "发货了吗？", " 发货了吗 " and "发货了吗?!" count as one."""
    folded = _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()
    end = len(folded)
    while end and (unicodedata.category(folded[end - 1]).startswith("P") or folded[end - 1] in _TRAILING_EXTRA):
        end -= 1
    return folded[:end].rstrip()


def top_unanswered(tickets: Iterable[TicketRecord], window: Window, n: int = 10) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    latest: dict[str, TicketRecord] = {}
    for t in tickets:
        if t.created_at in window and t.reason in UNANSWERED_REASONS and (q := normalize_question(t.summary)):
            counts[q] += 1
            if q not in latest or (t.created_at, t.id) > (latest[q].created_at, latest[q].id):
                latest[q] = t
    ranked = sorted(counts, key=lambda q: (-counts[q], -latest[q].created_at.timestamp(), -latest[q].id, q))
    return [{"question": q, "count": counts[q], "latest_ticket_id": latest[q].id,
             "latest_at": latest[q].created_at.isoformat()} for q in ranked[:n]]


def ticket_metrics(tickets: Sequence[TicketRecord], window: Window, now: datetime) -> dict[str, Any]:
    """The per-period block: volume, FRT, AHT, FCR, CSAT and SLA of ``tickets``."""
    return {
        "tickets_created": sum(1 for t in tickets if t.created_at in window),
        "first_response": first_response(tickets, window),
        "handle_time": handle_time(tickets, window),
        "fcr": first_contact_resolution(tickets, window),
        "csat": csat(tickets, window),
        "sla": sla_attainment(tickets, window, now),
    }
