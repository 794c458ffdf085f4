"""Table-driven tests of the SLA rules (ticketing.sla): business time, deadlines, clock states, peak."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from gateway.models import Channel
from ticketing.priority import Priority, Tier
from ticketing.sla import (
    DEFAULT_WARN_BEFORE,
    BusinessHours,
    ClockState,
    Deadlines,
    OpenInterval,
    Profile,
    SlaPolicy,
    SlaTargets,
    TargetKey,
    add_business_time,
    clock_status,
    effective_warn_before,
    next_response_due,
    sla_deadlines,
    sla_state,
)

CST = timezone(timedelta(hours=8))
H, M = timedelta(hours=1), timedelta(minutes=1)


def cst(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """A 2024 instant in China Standard Time; 2024-11-11 (双11) is a Monday."""
    return datetime(2024, month, day, hour, minute, tzinfo=CST)


DAILY = BusinessHours.daily(time(9), time(22))  # Mon-Sun 09:00-22:00
WEEKDAYS = BusinessHours.daily(time(9), time(18), weekdays=range(5))  # Mon-Fri 09:00-18:00
TUESDAY_OFF = BusinessHours.daily(time(9), time(22), holidays=[date(2024, 11, 12)])
NIGHT_SHIFT = BusinessHours.daily(time(20), time(2))  # every evening 20:00 to 02:00 next day
NIGHT_SHIFT_MONDAY_OFF = BusinessHours.daily(time(20), time(2), holidays=[date(2024, 11, 11)])
ROUND_THE_CLOCK = BusinessHours.daily(time(0), time(0))
OVERLAPPING = BusinessHours(
    intervals=(OpenInterval(0, time(9), time(12)), OpenInterval(0, time(11), time(14)))  # Mondays 09-14
)


@pytest.mark.parametrize(
    ("start", "duration", "calendar", "expected"),
    [
        pytest.param(cst(11, 21), 2 * H, None, cst(11, 23), id="wall clock"),
        pytest.param(cst(11, 10), 2 * H, DAILY, cst(11, 12), id="within hours"),
        pytest.param(cst(11, 21), 2 * H, DAILY, cst(12, 10), id="overnight"),
        pytest.param(cst(11, 21), 1 * H, DAILY, cst(11, 22), id="ends exactly at closing"),
        pytest.param(cst(11, 7), 30 * M, DAILY, cst(11, 9, 30), id="before opening"),
        pytest.param(cst(11, 23), 30 * M, DAILY, cst(12, 9, 30), id="after closing"),
        pytest.param(cst(11, 22), 30 * M, DAILY, cst(12, 9, 30), id="at closing"),
        pytest.param(cst(11, 9), 26 * H, DAILY, cst(12, 22), id="two full days"),
        pytest.param(cst(11, 9), 27 * H, DAILY, cst(13, 10), id="into the third day"),
        pytest.param(cst(15, 17), 2 * H, WEEKDAYS, cst(18, 10), id="over the weekend"),
        pytest.param(cst(16, 12), 1 * H, WEEKDAYS, cst(18, 10), id="starts on Saturday"),
        pytest.param(cst(11, 21), 2 * H, TUESDAY_OFF, cst(13, 10), id="over a holiday"),
        pytest.param(cst(12, 12), 1 * H, TUESDAY_OFF, cst(13, 10), id="starts on a holiday"),
        pytest.param(cst(11, 1), 30 * M, NIGHT_SHIFT, cst(11, 1, 30), id="inside yesterday's night shift"),
        pytest.param(cst(11, 1, 30), 1 * H, NIGHT_SHIFT, cst(11, 20, 30), id="night shift ends, next evening"),
        pytest.param(cst(11, 23), 4 * H, NIGHT_SHIFT, cst(12, 21), id="across midnight"),
        pytest.param(cst(11, 1), 30 * M, NIGHT_SHIFT_MONDAY_OFF, cst(11, 1, 30), id="Sunday shift runs into holiday"),
        pytest.param(cst(11, 1, 30), 1 * H, NIGHT_SHIFT_MONDAY_OFF, cst(12, 20, 30), id="holiday shift cancelled"),
        pytest.param(cst(11, 3), 30 * H, ROUND_THE_CLOCK, cst(12, 9), id="24 hour calendar"),
        pytest.param(cst(11, 9), 5 * H, OVERLAPPING, cst(11, 14), id="overlaps counted once"),
        pytest.param(cst(11, 9), 6 * H, OVERLAPPING, cst(18, 10), id="overlaps, next week"),
        pytest.param(cst(11, 23), timedelta(0), DAILY, cst(11, 23), id="zero duration while closed"),
    ],
)
def test_add_business_time(
    start: datetime, duration: timedelta, calendar: BusinessHours | None, expected: datetime
) -> None:
    assert add_business_time(start, duration, calendar) == expected


def test_add_business_time_keeps_the_callers_timezone() -> None:
    start = datetime(2024, 11, 11, 13, 30, tzinfo=UTC)  # 21:30 in Beijing
    due = add_business_time(start, H, DAILY)
    assert due == cst(12, 9, 30)
    assert due.tzinfo is UTC


def test_wall_clock_is_elapsed_time_across_dst() -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2024, 10, 27, 1, 30, tzinfo=berlin)  # clocks go back at 03:00 that night
    due = add_business_time(start, 2 * H, None)
    assert due.astimezone(UTC) - start.astimezone(UTC) == 2 * H
    assert due.replace(tzinfo=None) == datetime(2024, 10, 27, 2, 30)  # naive `start + 2h` would say 03:30


def test_calendar_in_another_offset() -> None:
    london_hours = BusinessHours.daily(time(9), time(17), utc_offset=timedelta(0))
    assert add_business_time(cst(11, 16), H, london_hours) == cst(11, 18)  # 09:00 London is 17:00 Beijing


@pytest.mark.parametrize(
    ("at", "calendar", "expected"),
    [
        pytest.param(cst(11, 9), DAILY, True, id="opening is open"),
        pytest.param(cst(11, 22), DAILY, False, id="closing is closed"),
        pytest.param(cst(11, 3), DAILY, False, id="night"),
        pytest.param(cst(16, 12), WEEKDAYS, False, id="Saturday"),
        pytest.param(cst(12, 12), TUESDAY_OFF, False, id="holiday"),
        pytest.param(cst(12, 1), NIGHT_SHIFT, True, id="after midnight in the night shift"),
        pytest.param(cst(11, 1), NIGHT_SHIFT_MONDAY_OFF, True, id="eve shift runs into holiday"),
    ],
)
def test_is_open(at: datetime, calendar: BusinessHours, expected: bool) -> None:
    assert calendar.is_open(at) is expected


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: add_business_time(datetime(2024, 11, 11, 9), H, None), id="naive start"),
        pytest.param(lambda: add_business_time(cst(11, 9), -H, DAILY), id="negative duration"),
        pytest.param(lambda: BusinessHours(intervals=()), id="no intervals"),
        pytest.param(lambda: OpenInterval(7, time(9), time(17)), id="weekday 7"),
        pytest.param(lambda: OpenInterval(0, time(9, tzinfo=UTC), time(17)), id="aware interval time"),
        pytest.param(lambda: BusinessHours.daily(time(9), time(17), utc_offset=timedelta(hours=24)), id="offset"),
        pytest.param(lambda: SlaTargets(H, H, timedelta(0)), id="zero target"),
        pytest.param(lambda: SlaPolicy(defaults={Priority.P0: SlaTargets(H, H, H)}), id="missing defaults"),
        pytest.param(lambda: SlaPolicy.standard().peak(0.5), id="peak that tightens"),
    ],
)
def test_invalid_inputs_are_rejected(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


# --- policy lookup and deadlines ------------------------------------------------------------------


def targets(first: int, resolution: int) -> SlaTargets:
    return SlaTargets(first * M, first * M, resolution * M)


FALLBACK = SlaPolicy(
    defaults={p: targets(100 + p, 1000) for p in Priority},
    targets={
        (Priority.P1, Tier.VIP, Channel.TAOBAO): targets(1, 10),
        (Priority.P1, Tier.VIP, None): targets(2, 20),
    },
)


@pytest.mark.parametrize(
    ("priority", "tier", "channel", "expected"),
    [
        pytest.param(Priority.P1, Tier.VIP, Channel.TAOBAO, targets(1, 10), id="exact"),
        pytest.param(Priority.P1, Tier.VIP, Channel.JD, targets(2, 20), id="any channel"),
        pytest.param(Priority.P1, Tier.VIP, None, targets(2, 20), id="no channel"),
        pytest.param(Priority.P1, Tier.NORMAL, Channel.TAOBAO, targets(101, 1000), id="default for the tier"),
        pytest.param(Priority.P3, Tier.VIP, Channel.TAOBAO, targets(103, 1000), id="default for the priority"),
    ],
)
def test_target_fallback(priority: Priority, tier: Tier, channel: Channel | None, expected: SlaTargets) -> None:
    assert FALLBACK.targets_for(priority, tier, channel) == expected


def test_policy_copies_its_mappings() -> None:
    mapping: dict[TargetKey, SlaTargets] = {(Priority.P1, Tier.VIP, None): targets(2, 20)}
    policy = SlaPolicy(defaults={p: targets(100, 1000) for p in Priority}, targets=mapping)
    mapping[(Priority.P1, Tier.VIP, None)] = targets(50, 500)
    assert policy.targets_for(Priority.P1, Tier.VIP, None) == targets(2, 20)


def test_standard_policy_gives_vips_faster_responses() -> None:
    policy = SlaPolicy.standard()
    for priority in Priority:
        normal = policy.targets_for(priority, Tier.NORMAL, Channel.WEBCHAT)
        vip = policy.targets_for(priority, Tier.VIP, Channel.WEBCHAT)
        assert vip.first_response == normal.first_response / 2
        assert vip.resolution == normal.resolution
    ordered = [policy.targets_for(p, Tier.NORMAL, None).first_response for p in Priority]
    assert ordered == sorted(ordered)  # P0 is the fastest


@pytest.mark.parametrize(
    ("created", "priority", "calendar", "first_due", "resolution_due"),
    [
        pytest.param(cst(11, 10), Priority.P2, None, cst(11, 12), cst(12, 10), id="wall clock"),
        pytest.param(cst(11, 21, 30), Priority.P2, DAILY, cst(12, 10, 30), cst(13, 19, 30), id="evening ticket"),
        pytest.param(cst(15, 17), Priority.P1, WEEKDAYS, cst(15, 17, 30), cst(18, 16), id="Friday ticket"),
    ],
)
def test_sla_deadlines(
    created: datetime, priority: Priority, calendar: BusinessHours | None, first_due: datetime, resolution_due: datetime
) -> None:
    policy = SlaPolicy.standard(calendar)
    deadlines = sla_deadlines(created, priority, Tier.NORMAL, Channel.WEBCHAT, policy)
    assert (deadlines.first_response_due, deadlines.resolution_due) == (first_due, resolution_due)
    assert deadlines.first_response_target == policy.targets_for(priority, Tier.NORMAL, None).first_response


def test_next_response_due_uses_the_next_response_target() -> None:
    policy = SlaPolicy(
        defaults={p: SlaTargets(10 * M, 45 * M, 10 * H) for p in Priority},
        calendar=DAILY,
    )
    assert next_response_due(cst(11, 21, 30), Priority.P2, Tier.NORMAL, None, policy) == cst(12, 9, 15)


# --- clock states -----------------------------------------------------------------------------------

T0 = datetime(2024, 11, 11, 10, 0, tzinfo=UTC)


def at(hour: int, minute: int = 0) -> datetime:
    return T0.replace(hour=hour, minute=minute)


DEADLINES = Deadlines(  # created 10:00; first response 1 h (warn 10:30); resolution 8 h (warn 17:30)
    first_response_due=at(11),
    resolution_due=at(18),
    first_response_target=1 * H,
    resolution_target=8 * H,
)
OK, WARN, BREACH, MET, LATE = (
    ClockState.OK,
    ClockState.WARNING,
    ClockState.BREACHED,
    ClockState.MET,
    ClockState.MET_LATE,
)


@pytest.mark.parametrize(
    ("now", "responded", "resolved", "first", "resolution", "next_event"),
    [
        pytest.param(at(10, 10), None, None, OK, OK, at(10, 30), id="fresh ticket"),
        pytest.param(at(10, 30), None, None, WARN, OK, at(11), id="warning fires at warn time"),
        pytest.param(at(10, 59), None, None, WARN, OK, at(11), id="warning until due"),
        pytest.param(at(11), None, None, BREACH, OK, at(17, 30), id="breach fires at due time"),
        pytest.param(at(12), at(10, 45), None, MET, OK, at(17, 30), id="answered in time"),
        pytest.param(at(12), at(11), None, MET, OK, at(17, 30), id="answered exactly at due"),
        pytest.param(at(12), at(11, 30), None, LATE, OK, at(17, 30), id="answered late"),
        pytest.param(at(17, 45), at(10, 45), None, MET, WARN, at(18), id="resolution warning"),
        pytest.param(at(19), at(10, 45), None, MET, BREACH, None, id="resolution breached"),
        pytest.param(at(19), at(10, 45), at(17), MET, MET, None, id="resolved in time"),
        pytest.param(at(19), at(10, 45), at(18, 30), MET, LATE, None, id="resolved late"),
        pytest.param(at(12), None, at(10, 20), MET, MET, None, id="resolved without a reply stops both"),
        pytest.param(at(10, 40), at(10, 45), None, WARN, OK, at(11), id="replay before the reply"),
    ],
)
def test_sla_state(
    now: datetime,
    responded: datetime | None,
    resolved: datetime | None,
    first: ClockState,
    resolution: ClockState,
    next_event: datetime | None,
) -> None:
    status = sla_state(
        DEADLINES, now=now, first_responded_at=responded, resolved_at=resolved, warn_before=DEFAULT_WARN_BEFORE
    )
    assert (status.first_response, status.resolution, status.next_event_at) == (first, resolution, next_event)
    assert status.missed is (BREACH in (first, resolution) or LATE in (first, resolution))


@pytest.mark.parametrize(
    ("warn_before", "target", "expected"),
    [
        pytest.param(30 * M, 2 * H, 30 * M, id="long target keeps warn_before"),
        pytest.param(30 * M, 1 * H, 30 * M, id="exactly half"),
        pytest.param(30 * M, 10 * M, 5 * M, id="short target clamps to half"),
        pytest.param(timedelta(0), 1 * H, timedelta(0), id="no warning"),
    ],
)
def test_effective_warn_before(warn_before: timedelta, target: timedelta, expected: timedelta) -> None:
    assert effective_warn_before(warn_before, target) == expected


@pytest.mark.parametrize(
    ("now", "expected", "next_event"),
    [
        pytest.param(at(10, 4), OK, at(10, 5), id="before half the target"),
        pytest.param(at(10, 5), WARN, at(10, 10), id="warns at half the target, not on creation"),
        pytest.param(at(10, 10), BREACH, None, id="breached"),
    ],
)
def test_warning_is_clamped_for_short_targets(now: datetime, expected: ClockState, next_event: datetime | None) -> None:
    status = clock_status(at(10, 10), 10 * M, now=now, done_at=None, warn_before=30 * M)
    assert (status.state, status.next_event_at, status.warn_at) == (expected, next_event, at(10, 5))


def test_next_event_is_the_earliest_of_both_clocks() -> None:
    # Resolution warning (10:45) comes before the first-response due time (11:00): it must win.
    deadlines = Deadlines(at(11), at(11), first_response_target=1 * H, resolution_target=30 * M)
    status = sla_state(deadlines, now=at(10, 35), first_responded_at=None, resolved_at=None, warn_before=30 * M)
    assert (status.first_response, status.resolution, status.next_event_at) == (WARN, OK, at(10, 45))


def test_timer_firing_at_next_event_sees_the_change() -> None:
    """Walking from creation through each next_event_at visits warning then breach for both clocks."""
    now, seen = at(10), []
    while True:
        status = sla_state(DEADLINES, now=now, first_responded_at=None, resolved_at=None, warn_before=30 * M)
        seen.append((status.first_response, status.resolution))
        if status.next_event_at is None:
            break
        assert status.next_event_at > now
        now = status.next_event_at
    assert seen == [(OK, OK), (WARN, OK), (BREACH, OK), (BREACH, WARN), (BREACH, BREACH)]


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError):
        sla_state(
            DEADLINES, now=datetime(2024, 11, 11, 10), first_responded_at=None, resolved_at=None, warn_before=30 * M
        )


# --- peak profile -------------------------------------------------------------------------------------


def test_peak_relaxes_every_target_and_keeps_the_rest() -> None:
    standard = SlaPolicy.standard(DAILY)
    peak = standard.peak()
    assert (standard.profile, peak.profile) == (Profile.STANDARD, Profile.PEAK)
    assert (peak.calendar, peak.warn_before) == (standard.calendar, standard.warn_before)
    for priority in Priority:
        for tier in Tier:
            assert peak.targets_for(priority, tier, Channel.TAOBAO) == standard.targets_for(
                priority, tier, Channel.TAOBAO
            ).scaled(2)
    created = cst(11, 10)
    assert (
        sla_deadlines(created, Priority.P1, Tier.NORMAL, None, peak).first_response_due
        > sla_deadlines(created, Priority.P1, Tier.NORMAL, None, standard).first_response_due
    )


@pytest.mark.parametrize(
    ("policy", "priority", "tier", "expected"),
    [
        pytest.param(
            SlaPolicy.standard().peak(),
            Priority.P1,
            Tier.VIP,
            "当前咨询量较大，预计等待约30分钟 / High volume: expected wait about 30 minutes",
            id="peak VIP P1",
        ),
        pytest.param(
            SlaPolicy.standard().peak(),
            Priority.P2,
            Tier.NORMAL,
            "当前咨询量较大，预计等待约4小时 / High volume: expected wait about 4 hours",
            id="peak P2 in hours",
        ),
        pytest.param(
            SlaPolicy.standard(),
            Priority.P1,
            Tier.VIP,
            "预计等待约15分钟 / Expected wait about 15 minutes",
            id="standard: no high-volume notice",
        ),
        pytest.param(
            SlaPolicy.standard().peak(3),
            Priority.P3,
            Tier.NORMAL,
            "当前咨询量较大，预计等待约24小时 / High volume: expected wait about 24 hours",
            id="peak x3 P3",
        ),
    ],
)
def test_expected_wait_text(policy: SlaPolicy, priority: Priority, tier: Tier, expected: str) -> None:
    assert policy.expected_wait_text(priority, tier) == expected


@pytest.mark.parametrize(
    ("first_response", "zh", "en"),
    [
        pytest.param(1 * M, "约5分钟", "about 5 minutes", id="at least 5 minutes"),
        pytest.param(31 * M, "约35分钟", "about 35 minutes", id="rounds up to 5 minutes"),
        pytest.param(timedelta(minutes=30, seconds=1), "约35分钟", "about 35 minutes", id="a second over"),
        pytest.param(119 * M, "约120分钟", "about 120 minutes", id="minutes below two hours"),
        pytest.param(2 * H, "约2小时", "about 2 hours", id="two hours"),
        pytest.param(121 * M, "约3小时", "about 3 hours", id="rounds hours up"),
        pytest.param(48 * H, "约2天", "about 2 days", id="days"),
    ],
)
def test_expected_wait_rounding(first_response: timedelta, zh: str, en: str) -> None:
    policy = SlaPolicy(defaults={p: SlaTargets(first_response, H, H) for p in Priority})
    text = policy.expected_wait_text(Priority.P2, Tier.NORMAL)
    assert text == f"预计等待{zh} / Expected wait {en}"
