"""SLA rules: targets, business-hours arithmetic, due times and clock states -- all pure.

Due times are data: ``sla_deadlines`` computes them once when a ticket is opened (they are stored on
the ticket), ``sla_state`` judges them against an injected ``now`` and returns ``next_event_at``, the
next moment a warning or a breach fires. A scheduler stores that instant and wakes up then, so timers
survive restarts and a second scheduler replica computes exactly the same thing.

Conventions:

- All datetimes must be timezone-aware; naive ones raise ``ValueError`` (a silently assumed zone is
  how SLA reports end up eight hours wrong).
- Targets are *business* durations when the policy has a ``BusinessHours`` calendar, wall-clock
  (elapsed) durations otherwise.
- Warnings fire ``warn_before`` wall-clock time before the due instant, clamped to half the target so
  a 10-minute target never warns the moment the ticket opens. Wall-clock, not business time: the
  warning is a nudge for whoever is on shift when it fires.
- A clock is met when done at or before the due instant, and breached *at* the due instant when not
  done: the timer stored for the due time must find the breach when it fires.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from enum import StrEnum
from types import MappingProxyType

from gateway.models import Channel
from ticketing.priority import Priority, Tier

DEFAULT_WARN_BEFORE = timedelta(minutes=30)
CHINA_STANDARD_TIME = timedelta(hours=8)  # China has no DST, so a fixed offset is exact all year
_DAY = timedelta(days=1)


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


# --- business hours -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenInterval:
    """One weekly opening: ``weekday`` (0 = Monday) from ``start`` to ``end`` local time.

    ``end <= start`` means the shift runs past midnight into the next day (22:00-02:00); ``end ==
    start`` is a full 24 hours. The shift belongs to the day it *starts* on, including for holidays.
    """

    weekday: int
    start: time
    end: time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday) .. 6 (Sunday), got {self.weekday}")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("interval times are local to the calendar's utc_offset; give naive times")

    def span(self) -> tuple[timedelta, timedelta]:
        """Offsets from local midnight of the start day; the end may exceed 24 h for overnight shifts."""
        start = timedelta(hours=self.start.hour, minutes=self.start.minute, seconds=self.start.second)
        end = timedelta(hours=self.end.hour, minutes=self.end.minute, seconds=self.end.second)
        if end <= start:
            end += _DAY
        return start, end


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """A weekly opening calendar in one fixed UTC offset, minus holidays (local dates).

    A holiday cancels every shift that starts on that date; an overnight shift that started the
    evening before still runs to its end (the agents are already there).
    """

    intervals: tuple[OpenInterval, ...]
    utc_offset: timedelta = CHINA_STANDARD_TIME
    holidays: frozenset[date] = frozenset()
    # Precomputed per weekday, sorted by start: (start, end) offsets from local midnight.
    _spans: tuple[tuple[tuple[timedelta, timedelta], ...], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        if not self.intervals:
            raise ValueError("a business calendar needs at least one open interval (or pass calendar=None)")
        if abs(self.utc_offset) >= _DAY:
            raise ValueError("utc_offset must be strictly between -24 h and +24 h")
        per_day: list[list[tuple[timedelta, timedelta]]] = [[] for _ in range(7)]
        for interval in self.intervals:
            per_day[interval.weekday].append(interval.span())
        object.__setattr__(self, "_spans", tuple(tuple(sorted(spans)) for spans in per_day))

    @classmethod
    def daily(
        cls,
        start: time,
        end: time,
        *,
        weekdays: Iterable[int] = range(7),
        utc_offset: timedelta = CHINA_STANDARD_TIME,
        holidays: Iterable[date] = (),
    ) -> BusinessHours:
        """The same hours on each of ``weekdays``, e.g. ``daily(time(9), time(22))`` for Mon-Sun 09-22."""
        return cls(
            intervals=tuple(OpenInterval(day, start, end) for day in weekdays),
            utc_offset=utc_offset,
            holidays=frozenset(holidays),
        )

    @property
    def tz(self) -> timezone:
        return timezone(self.utc_offset)

    def _open_spans_from(self, day: date) -> Iterable[tuple[datetime, datetime]]:
        """Open spans as aware datetimes, day by day from ``day`` on, in start order (endless)."""
        tz = self.tz
        while True:
            if day not in self.holidays:
                midnight = datetime.combine(day, time(0), tz)
                for start, end in self._spans[day.weekday()]:
                    yield midnight + start, midnight + end
            day += _DAY

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` falls inside an open span (start inclusive, end exclusive)."""
        _require_aware("at", at)
        local = at.astimezone(self.tz)
        for start, end in self._open_spans_from(local.date() - _DAY):
            if start > local:
                return False
            if local < end:
                return True
        raise AssertionError("unreachable: the span generator is endless")

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """``start`` plus ``duration`` of open time; see ``add_business_time``."""
        remaining = duration
        cursor = start.astimezone(self.tz)
        # Start one day early: yesterday's overnight shift may still be open at ``start``. Spans come in
        # start order and the cursor only moves forward, so overlapping intervals are never counted twice.
        for span_start, span_end in self._open_spans_from(cursor.date() - _DAY):
            if span_end <= cursor:
                continue
            begin = max(span_start, cursor)
            available = span_end - begin
            if remaining <= available:
                # ``<=``: work that fits exactly is due at closing time, not at the next opening.
                return (begin + remaining).astimezone(start.tzinfo)
            remaining -= available
            cursor = span_end
        raise AssertionError("unreachable: the span generator is endless and holidays are finite")


def add_business_time(start: datetime, duration: timedelta, calendar: BusinessHours | None) -> datetime:
    """The instant ``duration`` of working time after ``start``, in ``start``'s timezone.

    Time outside open spans (nights, closed weekdays, holidays) does not count. Starting while closed
    counts from the next opening. A zero duration returns ``start`` unchanged. With ``calendar=None``
    the clock is wall-clock elapsed time, computed in UTC so a DST zone on ``start`` cannot shift it.
    """
    _require_aware("start", start)
    if duration < timedelta(0):
        raise ValueError("duration must not be negative")
    if duration == timedelta(0):
        return start
    if calendar is None:
        return (start.astimezone(UTC) + duration).astimezone(start.tzinfo)
    return calendar.add(start, duration)


# --- policy ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlaTargets:
    """How long we promise to take, per clock."""

    first_response: timedelta
    next_response: timedelta
    resolution: timedelta

    def __post_init__(self) -> None:
        if min(self.first_response, self.next_response, self.resolution) <= timedelta(0):
            raise ValueError("SLA targets must be positive")

    def scaled(self, factor: float) -> SlaTargets:
        """Every target multiplied by ``factor`` (rounded to whole seconds, so due times stay tidy)."""
        return SlaTargets(*(timedelta(seconds=round(t.total_seconds() * factor)) for t in self._all()))

    def _all(self) -> tuple[timedelta, timedelta, timedelta]:
        return self.first_response, self.next_response, self.resolution


class Profile(StrEnum):
    """Which set of targets is in force; PEAK is the relaxed 双11/618 set shown to customers as such."""

    STANDARD = "standard"
    PEAK = "peak"


TargetKey = tuple[Priority, Tier, Channel | None]
_Minutes = tuple[int, int, int]  # first response, next response, resolution


def _targets(p0: _Minutes, p1: _Minutes, p2: _Minutes, p3: _Minutes) -> dict[Priority, SlaTargets]:
    return {
        priority: SlaTargets(*(timedelta(minutes=m) for m in minutes))
        for priority, minutes in zip(Priority, (p0, p1, p2, p3), strict=True)
    }


VIP_RESPONSE_FACTOR = 0.5  # VIP first/next response targets relative to the defaults; resolution unchanged


def vip_targets(defaults: Mapping[Priority, SlaTargets]) -> dict[TargetKey, SlaTargets]:
    """VIPs get half the response times and the same resolution time (fixing takes what it takes;
    being heard should not)."""
    return {
        (priority, Tier.VIP, None): replace(t, first_response=t.first_response * VIP_RESPONSE_FACTOR,
                                            next_response=t.next_response * VIP_RESPONSE_FACTOR)
        for priority, t in defaults.items()
    }


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Targets per (priority, tier, channel), a warning lead time, and an optional business calendar.

    Lookup falls back from the exact ``(priority, tier, channel)`` entry, to ``(priority, tier, None)``
    (any channel), to ``defaults[priority]``: a shop configures only the exceptions.
    """

    defaults: Mapping[Priority, SlaTargets]
    targets: Mapping[TargetKey, SlaTargets] = field(default_factory=dict)
    warn_before: timedelta = DEFAULT_WARN_BEFORE
    calendar: BusinessHours | None = None
    profile: Profile = Profile.STANDARD

    def __post_init__(self) -> None:
        missing = [p.name for p in Priority if p not in self.defaults]
        if missing:
            raise ValueError(f"defaults must cover every priority; missing {', '.join(missing)}")
        if self.warn_before < timedelta(0):
            raise ValueError("warn_before must not be negative")
        # Copy into read-only views: a frozen policy must not change because the caller's dict did.
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))
        object.__setattr__(self, "targets", MappingProxyType(dict(self.targets)))

    @classmethod
    def standard(cls, calendar: BusinessHours | None = None) -> SlaPolicy:
        """Sensible defaults (minutes: first response / next response / resolution), VIPs by ``vip_targets``."""
        defaults = _targets((10, 10, 240), (30, 30, 480), (120, 120, 1440), (480, 480, 4320))
        return cls(defaults=defaults, targets=vip_targets(defaults), calendar=calendar)

    def peak(self, factor: float = 2.0) -> SlaPolicy:
        """The relaxed 双11 profile: every target times ``factor``; warnings and calendar unchanged."""
        if factor < 1:
            raise ValueError("a peak profile relaxes targets: factor must be >= 1")
        return replace(
            self,
            defaults={p: t.scaled(factor) for p, t in self.defaults.items()},
            targets={k: t.scaled(factor) for k, t in self.targets.items()},
            profile=Profile.PEAK,
        )

    def targets_for(self, priority: Priority, tier: Tier, channel: Channel | None) -> SlaTargets:
        """Exact entry, then any-channel entry for the tier, then the priority's default."""
        if channel is not None and (exact := self.targets.get((priority, tier, channel))) is not None:
            return exact
        any_channel = self.targets.get((priority, tier, None))
        return any_channel if any_channel is not None else self.defaults[priority]

    def expected_wait_text(self, priority: Priority, tier: Tier, channel: Channel | None = None) -> str:
        """Bilingual notice for the customer, Chinese first: the first-response promise, rounded up.

        It quotes the target (our promise), not a live queue estimate, and says "high volume" only in
        the peak profile so customers are not told we are busy when we are not.
        """
        zh, en = _wait_phrase(self.targets_for(priority, tier, channel).first_response)
        if self.profile is Profile.PEAK:
            return f"当前咨询量较大，预计等待约{zh} / High volume: expected wait about {en}"
        return f"预计等待约{zh} / Expected wait about {en}"


def _wait_phrase(wait: timedelta) -> tuple[str, str]:
    """Round *up* to a human unit: promising 30 minutes and answering in 32 is worse than the reverse."""
    minutes = math.ceil(wait.total_seconds() / 60)
    if minutes < 120:
        minutes = max(5, math.ceil(minutes / 5) * 5)
        return f"{minutes}分钟", f"{minutes} minutes"
    hours = math.ceil(minutes / 60)
    if hours < 48:
        return f"{hours}小时", f"{hours} hours"
    days = math.ceil(hours / 24)
    return f"{days}天", f"{days} days"


def effective_warn_before(warn_before: timedelta, target: timedelta) -> timedelta:
    """``warn_before``, but never more than half the target (else short targets warn on creation)."""
    return min(warn_before, target / 2)


# --- deadlines and clock states ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Due instants of a ticket, plus the targets they came from (needed to clamp warnings)."""

    first_response_due: datetime
    resolution_due: datetime
    first_response_target: timedelta
    resolution_target: timedelta


def sla_deadlines(
    created_at: datetime, priority: Priority, tier: Tier, channel: Channel | None, policy: SlaPolicy
) -> Deadlines:
    """Due times from the moment the ticket was opened (the human clock starts at escalation)."""
    targets = policy.targets_for(priority, tier, channel)
    return Deadlines(
        first_response_due=add_business_time(created_at, targets.first_response, policy.calendar),
        resolution_due=add_business_time(created_at, targets.resolution, policy.calendar),
        first_response_target=targets.first_response,
        resolution_target=targets.resolution,
    )


def next_response_due(
    last_customer_message_at: datetime, priority: Priority, tier: Tier, channel: Channel | None, policy: SlaPolicy
) -> datetime:
    """When the agent must answer the customer's latest unanswered message."""
    target = policy.targets_for(priority, tier, channel).next_response
    return add_business_time(last_customer_message_at, target, policy.calendar)


class ClockState(StrEnum):
    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"
    MET = "met"
    MET_LATE = "met_late"


@dataclass(frozen=True, slots=True)
class ClockStatus:
    """One clock judged at ``now``; ``next_event_at`` is None once nothing more can fire."""

    state: ClockState
    warn_at: datetime
    due: datetime
    next_event_at: datetime | None


def clock_status(
    due: datetime, target: timedelta, *, now: datetime, done_at: datetime | None, warn_before: timedelta
) -> ClockStatus:
    """Judge one clock (first response, resolution, or a next-response clock) at ``now``.

    ``done_at`` later than ``now`` is treated as not yet done, so replaying history at a past ``now``
    gives the state as it was then.
    """
    _require_aware("due", due)
    _require_aware("now", now)
    warn_at = due - effective_warn_before(warn_before, target)
    if done_at is not None and done_at <= now:
        state = ClockState.MET if done_at <= due else ClockState.MET_LATE
        return ClockStatus(state, warn_at, due, None)
    if now >= due:
        return ClockStatus(ClockState.BREACHED, warn_at, due, None)
    if now >= warn_at:
        return ClockStatus(ClockState.WARNING, warn_at, due, due)
    return ClockStatus(ClockState.OK, warn_at, due, warn_at)


@dataclass(frozen=True, slots=True)
class SlaStatus:
    first_response: ClockState
    resolution: ClockState
    next_event_at: datetime | None  # earliest future warning/breach; None when no timer is needed

    @property
    def missed(self) -> bool:
        """Whether any clock is breached or was met late (counts against SLA attainment)."""
        return bool({self.first_response, self.resolution} & {ClockState.BREACHED, ClockState.MET_LATE})


def sla_state(
    deadlines: Deadlines,
    *,
    now: datetime,
    first_responded_at: datetime | None,
    resolved_at: datetime | None,
    warn_before: timedelta,
) -> SlaStatus:
    """Both clocks of a ticket at ``now``.

    ``first_responded_at`` must be a *human* reply (bot replies never satisfy an SLA). Resolving a
    ticket without a reply stops the first-response clock too: nobody should be paged to answer a
    closed ticket, and it is judged met or late by the resolution time.
    """
    stops = [t for t in (first_responded_at, resolved_at) if t is not None]
    first = clock_status(
        deadlines.first_response_due,
        deadlines.first_response_target,
        now=now,
        done_at=min(stops) if stops else None,
        warn_before=warn_before,
    )
    resolution = clock_status(
        deadlines.resolution_due, deadlines.resolution_target, now=now, done_at=resolved_at, warn_before=warn_before
    )
    events = [e for e in (first.next_event_at, resolution.next_event_at) if e is not None]
    return SlaStatus(first.state, resolution.state, min(events) if events else None)
