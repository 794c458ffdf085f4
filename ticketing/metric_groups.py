"""Grouping and periods for the service metrics: per agent, team, channel, China-time day or hour, and
the dashboard's preset periods. Pure functions (no I/O; ``now`` passed in).

The metric definitions, including what each group means, are documented in ``ticketing.metrics``;
this module only splits records and windows and calls those metrics on each part.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from ticketing.metrics import (
    UNASSIGNED,
    InboundRecord,
    TicketRecord,
    Window,
    breach_times,
    deflection,
    ticket_metrics,
    volume_by_channel,
)
from ticketing.sla import CHINA_STANDARD_TIME

CHINA_TZ = timezone(CHINA_STANDARD_TIME)
GROUPS = frozenset({"agent", "team", "channel", "day", "hour"})
HOUR = timedelta(hours=1)
PRESET_DAYS = {"today": 1, "7d": 7, "30d": 30}


def local_day(at: datetime) -> date:
    """The calendar day of ``at`` in China time (16:00 UTC is already tomorrow)."""
    return at.astimezone(CHINA_TZ).date()


def day_windows(window: Window) -> list[tuple[date, Window]]:
    """Each China-time day overlapping ``window``, clipped to it, in order."""
    days: list[tuple[date, Window]] = []
    day = local_day(window.start)
    while (midnight := datetime.combine(day, time(0), CHINA_TZ)) < window.end:
        days.append((day, Window(max(window.start, midnight), min(window.end, midnight + timedelta(days=1)))))
        day += timedelta(days=1)
    return days


def local_hour(at: datetime) -> datetime:
    """The start of ``at``'s hour in China time (an aware datetime at +08:00)."""
    return at.astimezone(CHINA_TZ).replace(minute=0, second=0, microsecond=0)


def hour_count(window: Window) -> int:
    """How many China-time hours ``window`` overlaps (``len(hour_windows(window))`` without building them)."""
    return math.ceil((window.end - local_hour(window.start)) / HOUR)


def hour_windows(window: Window) -> list[tuple[datetime, Window]]:
    """Each China-time hour overlapping ``window``, clipped to it, in order (the dashboard's "today" trend)."""
    hours: list[tuple[datetime, Window]] = []
    hour = local_hour(window.start)
    while hour < window.end:
        hours.append((hour, Window(max(window.start, hour), min(window.end, hour + HOUR))))
        hour += HOUR
    return hours


def preset_window(name: str, now: datetime) -> Window:
    """The dashboard's periods in whole China-time days: ``today``, ``7d`` or ``30d`` (today included).

    The window ends at the next local midnight, so day groups show today as one full day; nothing
    after ``now`` exists yet, and due-time checks compare with ``now``, not with the window end.
    """
    if name not in PRESET_DAYS:
        raise ValueError(f"未知的时间范围 {name!r} / unknown period {name!r}; expected one of {sorted(PRESET_DAYS)}")
    tomorrow = datetime.combine(local_day(now) + timedelta(days=1), time(0), CHINA_TZ)
    return Window(tomorrow - timedelta(days=PRESET_DAYS[name]), tomorrow)


def check_group(group: str | None) -> None:
    """Raise ``ValueError`` (bilingual: the console shows it) unless ``group`` is None or a known group."""
    if group is not None and group not in GROUPS:
        raise ValueError(f"未知的分组 {group!r} / unknown group {group!r}; expected one of {sorted(GROUPS)} or none")


def grouped(group: str, tickets: Sequence[TicketRecord], inbound: Sequence[InboundRecord], window: Window,
            now: datetime, known: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """``ticket_metrics`` per group; channel groups also get deflection, day and hour groups deflection
    and volume by channel.

    ``known`` keys (e.g. every active agent) are listed even without data, so a per-agent table shows
    the agent who handled nothing today.
    """
    check_group(group)
    if group == "day":
        days = [(day.isoformat(), part) for day, part in day_windows(window)]
        return _by_time(tickets, inbound, window, now, days, lambda at: local_day(at).isoformat())
    if group == "hour":
        hours = [(hour.isoformat(), part) for hour, part in hour_windows(window)]
        return _by_time(tickets, inbound, window, now, hours, lambda at: local_hour(at).isoformat())
    parts: dict[str, list[TicketRecord]] = {k: [] for k in known}
    for t in tickets:
        parts.setdefault(group_key(t, group), []).append(t)
    messages: dict[str, list[InboundRecord]] = defaultdict(list)
    if group == "channel":
        for m in inbound:
            messages[m.channel].append(m)
            parts.setdefault(m.channel, [])
    out: dict[str, dict[str, Any]] = {}
    for k in sorted(parts):
        block = ticket_metrics(parts[k], window, now)
        if group == "channel":
            block["deflection"] = deflection(messages[k], parts[k], window)
        out[k] = block
    return out


def group_key(ticket: TicketRecord, group: str) -> str:
    """The agent, team or channel group of a ticket (day and hour groups depend on the metric's anchor)."""
    if group == "agent":
        return ticket.assignee_id or UNASSIGNED
    return ticket.team if group == "team" else ticket.channel


def _by_time(tickets: Sequence[TicketRecord], inbound: Sequence[InboundRecord], window: Window, now: datetime,
             parts: Sequence[tuple[str, Window]], bucket: Callable[[datetime], str]) -> dict[str, dict[str, Any]]:
    """Day or hour groups: ``parts`` are the (key, clipped window) of every bucket, ``bucket`` maps an
    instant to its key; every bucket is listed, empty ones too."""
    # Bucket each record under its anchors' keys first: a year of days stays linear, not days x rows.
    ticket_parts: dict[str, list[TicketRecord]] = defaultdict(list)
    for t in tickets:
        anchors = (t.created_at, t.resolved_at, t.csat_at, t.csat_requested_at, t.first_response_due,
                   t.resolution_due, *(due for _, due in breach_times(t)))
        for key in {bucket(a) for a in anchors if a is not None and a in window}:
            ticket_parts[key].append(t)
    message_parts: dict[str, list[InboundRecord]] = defaultdict(list)
    for m in inbound:
        message_parts[bucket(m.at)].append(m)
    out: dict[str, dict[str, Any]] = {}
    for key, part in parts:
        block = ticket_metrics(ticket_parts[key], part, now)
        block["deflection"] = deflection(message_parts[key], ticket_parts[key], part)
        block["volume_by_channel"] = volume_by_channel(message_parts[key], ticket_parts[key], part)
        out[key] = block
    return out
