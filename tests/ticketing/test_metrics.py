"""Table-driven tests of the pure service metrics (ticketing.metrics, ticketing.metric_groups): every definition
and its edges."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ticketing.metric_groups import (
    check_group,
    day_windows,
    grouped,
    hour_count,
    hour_windows,
    local_day,
    local_hour,
    preset_window,
)
from ticketing.metrics import (
    InboundRecord,
    TicketRecord,
    Window,
    backlog,
    breach_times,
    csat,
    deflection,
    deflection_by_channel,
    duration_stats,
    first_assigned_at,
    first_contact_resolution,
    first_response,
    handle_seconds,
    handle_time,
    normalize_question,
    percentile,
    sla_attainment,
    top_unanswered,
    volume_by_channel,
)

S, M, H = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1)
T0 = datetime(2024, 11, 11, 2, 0, tzinfo=UTC)  # 10:00 on 双11 in China
DAY = Window(datetime(2024, 11, 10, 16, tzinfo=UTC), datetime(2024, 11, 11, 16, tzinfo=UTC))  # 2024-11-11 CST
NOW = datetime(2024, 11, 11, 12, tzinfo=UTC)


def tk(id: int = 1, **kw: Any) -> TicketRecord:
    base: dict[str, Any] = {"conversation_id": f"webchat:c{id}", "status": "resolved", "created_at": T0,
                            "channel": "webchat"}
    return TicketRecord(id=id, **{**base, **kw})


def msg(conv: str, at: datetime, channel: str = "webchat") -> InboundRecord:
    return InboundRecord(conv, channel, at)


# --- windows, days, percentiles ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param(datetime(2024, 11, 11, 15, 59, 59, tzinfo=UTC), date(2024, 11, 11), id="15:59:59 UTC same day"),
        pytest.param(datetime(2024, 11, 11, 16, tzinfo=UTC), date(2024, 11, 12), id="16:00 UTC is tomorrow"),
        pytest.param(datetime(2024, 11, 11, 0, tzinfo=UTC), date(2024, 11, 11), id="UTC midnight is 08:00"),
    ],
)
def test_local_day_is_china_time(at: datetime, expected: date) -> None:
    assert local_day(at) == expected


def test_day_windows_clip_to_the_period() -> None:
    days = day_windows(Window(datetime(2024, 11, 10, 20, tzinfo=UTC), datetime(2024, 11, 12, 1, tzinfo=UTC)))
    utc = [(d.isoformat(), w.start.astimezone(UTC).hour, w.end.astimezone(UTC).hour) for d, w in days]
    assert utc == [("2024-11-11", 20, 16), ("2024-11-12", 16, 1)]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param(datetime(2024, 11, 11, 2, 59, 59, tzinfo=UTC), "2024-11-11T10:00:00+08:00", id="10:59:59 CST"),
        pytest.param(datetime(2024, 11, 11, 3, tzinfo=UTC), "2024-11-11T11:00:00+08:00", id="on the hour"),
        pytest.param(datetime(2024, 11, 11, 16, 30, tzinfo=UTC), "2024-11-12T00:00:00+08:00", id="after midnight"),
    ],
)
def test_local_hour_is_china_time(at: datetime, expected: str) -> None:
    assert local_hour(at).isoformat() == expected


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        pytest.param(Window(T0, T0 + H), [("10:00", "02:00", "03:00")], id="one whole hour"),
        pytest.param(Window(T0 + 30 * M, T0 + 2 * H), [("10:00", "02:30", "03:00"), ("11:00", "03:00", "04:00")],
                     id="clipped start"),
        pytest.param(Window(T0 + 59 * M, T0 + 61 * M), [("10:00", "02:59", "03:00"), ("11:00", "03:00", "03:01")],
                     id="two minutes over a boundary"),
        pytest.param(DAY, [(f"{h:02d}:00", f"{(h - 8) % 24:02d}:00", f"{(h - 7) % 24:02d}:00") for h in range(24)],
                     id="a China day is 24 hours"),
    ],
)
def test_hour_windows_clip_to_the_period(window: Window, expected: list[tuple[str, str, str]]) -> None:
    hours = hour_windows(window)
    got = [(h.strftime("%H:%M"), w.start.astimezone(UTC).strftime("%H:%M"), w.end.astimezone(UTC).strftime("%H:%M"))
           for h, w in hours]
    assert got == expected
    assert hour_count(window) == len(hours)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        pytest.param(T0, T0, "must be after", id="empty"),
        pytest.param(T0, T0 - H, "must be after", id="reversed"),
        pytest.param(T0.replace(tzinfo=None), T0 + H, "timezone-aware", id="naive"),
    ],
)
def test_window_validation(start: datetime, end: datetime, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Window(start, end)


def test_window_is_half_open() -> None:
    assert DAY.start in DAY and DAY.end not in DAY and None not in DAY


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        pytest.param([], 90, None, id="empty"),
        pytest.param([7.0], 90, 7.0, id="one item is its own p90"),
        pytest.param([float(v) for v in range(1, 11)], 90, 9.0, id="nearest rank of ten"),
        pytest.param([float(v) for v in range(1, 11)], 50, 5.0, id="median rank"),
        pytest.param([3.0, 1.0, 2.0], 100, 3.0, id="unsorted max"),
        pytest.param([3.0, 1.0, 2.0], 0, 1.0, id="p0 is the minimum"),
        pytest.param([10.0, 20.0], 90, 20.0, id="two items"),
    ],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def test_duration_stats_of_nothing_are_none() -> None:
    assert duration_stats([]) == {"count": 0, "mean": None, "median": None, "p90": None}
    assert duration_stats([60.0, 120.0]) == {"count": 2, "mean": 90.0, "median": 90.0, "p90": 120.0}


# --- first response ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tickets", "expected"),
    [
        pytest.param([], {"count": 0, "mean": None, "median": None, "p90": None, "awaiting": 0}, id="no data"),
        pytest.param([tk(first_responded_at=T0 + M)], {"count": 1, "mean": 60.0, "median": 60.0, "p90": 60.0,
                                                       "awaiting": 0}, id="one reply"),
        pytest.param([tk(1, first_responded_at=T0 + M), tk(2, first_responded_at=T0 + 3 * M),
                      tk(3, status="new")],
                     {"count": 2, "mean": 120.0, "median": 120.0, "p90": 180.0, "awaiting": 1}, id="one still waits"),
        pytest.param([tk(status="resolved")], {"count": 0, "mean": None, "median": None, "p90": None,
                                               "awaiting": 0}, id="resolved without a human reply"),
        pytest.param([tk(created_at=DAY.start - S, first_responded_at=T0)],
                     {"count": 0, "mean": None, "median": None, "p90": None, "awaiting": 0}, id="created before"),
        pytest.param([tk(first_responded_at=T0 - S)], {"count": 1, "mean": 0.0, "median": 0.0, "p90": 0.0,
                                                       "awaiting": 0}, id="skewed clock clamps at 0"),
    ],
)
def test_first_response(tickets: list[TicketRecord], expected: dict[str, Any]) -> None:
    assert first_response(tickets, DAY) == expected


# --- handle time ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ticket", "assigned", "seconds"),
    [
        pytest.param(tk(resolved_at=T0 + H), T0, 3600.0, id="never assigned: from creation"),
        pytest.param(tk(resolved_at=T0 + H, assigned_at=T0 + 10 * M), T0 + 10 * M, 3000.0, id="assigned_at"),
        pytest.param(tk(resolved_at=T0 + H, assigned_at=T0 + 30 * M,
                        events=(("assign", T0 + 20 * M), ("claim", T0 + 5 * M))), T0 + 5 * M, 3300.0,
                     id="earliest assign or claim event wins"),
        pytest.param(tk(resolved_at=T0 + 5 * H, events=(("assign", T0), ("resolve", T0 + H),
                                                        ("reopened", T0 + 3 * H))), T0, 3 * 3600.0,
                     id="resolved-then-reopened gap is not handling"),
        pytest.param(tk(resolved_at=T0 + 5 * H, events=(("resolve", T0 + H), ("reopened", T0 + 3 * H),
                                                        ("assign", T0 + 2 * H))), T0 + 2 * H, 2 * 3600.0,
                     id="only the gap after first assignment counts"),
        pytest.param(tk(resolved_at=T0 + 2 * H, events=(("assign", T0), ("hand_back", T0 + H),
                                                        ("reopened", T0 + H))), T0, 2 * 3600.0,
                     id="reopened at once"),
        pytest.param(tk(resolved_at=None, status="open"), T0, None, id="not resolved"),
    ],
)
def test_handle_seconds(ticket: TicketRecord, assigned: datetime, seconds: float | None) -> None:
    assert first_assigned_at(ticket) == assigned
    assert handle_seconds(ticket) == seconds


def test_handle_time_counts_tickets_resolved_in_the_window() -> None:
    tickets = [tk(1, resolved_at=T0 + H), tk(2, resolved_at=T0 + 3 * H), tk(3, resolved_at=DAY.end),
               tk(4, status="open")]
    assert handle_time(tickets, DAY) == {"count": 2, "mean": 7200.0}
    assert handle_time([], DAY) == {"count": 0, "mean": None}


# --- FCR, CSAT ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reopens", "expected"),
    [
        pytest.param([], {"resolved": 0, "first_contact": 0, "rate": None}, id="none resolved"),
        pytest.param([0, 0], {"resolved": 2, "first_contact": 2, "rate": 1.0}, id="all first contact"),
        pytest.param([0, 1, 2, 0], {"resolved": 4, "first_contact": 2, "rate": 0.5}, id="reopened tickets"),
    ],
)
def test_first_contact_resolution(reopens: list[int], expected: dict[str, Any]) -> None:
    tickets = [tk(i, resolved_at=T0 + H, reopened_count=n) for i, n in enumerate(reopens)]
    tickets.append(tk(99, resolved_at=DAY.start - S, reopened_count=0))  # resolved before the window
    assert first_contact_resolution(tickets, DAY) == expected


@pytest.mark.parametrize(
    ("ratings", "asked", "expected"),
    [
        pytest.param([], 0, {"count": 0, "mean": None, "satisfied_share": None, "requested": 0,
                             "response_rate": None, "distribution": dict.fromkeys("12345", 0)}, id="no ratings"),
        pytest.param([5, 4, 1, 3, 5], 5, {"count": 5, "mean": 3.6, "satisfied_share": 0.6, "requested": 5,
                                          "response_rate": 1.0,
                                          "distribution": {"1": 1, "2": 0, "3": 1, "4": 1, "5": 2}},
                     id="distribution"),
        pytest.param([2, None, None, None], 4, {"count": 1, "mean": 2.0, "satisfied_share": 0.0, "requested": 4,
                                                "response_rate": 0.25,
                                                "distribution": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 0}},
                     id="few answer"),
        pytest.param([0, 9], 0, {"count": 0, "mean": None, "satisfied_share": None, "requested": 0,
                                 "response_rate": None, "distribution": dict.fromkeys("12345", 0)},
                     id="out-of-range ratings ignored"),
    ],
)
def test_csat(ratings: list[int | None], asked: int, expected: dict[str, Any]) -> None:
    tickets = [tk(i, csat=r, csat_at=T0 + H if r is not None else None,
                  csat_requested_at=T0 + M if i < asked else None) for i, r in enumerate(ratings)]
    tickets.append(tk(99, csat=1, csat_at=DAY.end))  # rated after the window
    assert csat(tickets, DAY) == expected


# --- SLA -----------------------------------------------------------------------------------------------

FR_DUE, RES_DUE = T0 + 10 * M, T0 + 4 * H


@pytest.mark.parametrize(
    ("ticket", "verdict"),
    [
        pytest.param(tk(first_responded_at=T0 + 5 * M, resolved_at=T0 + H, first_response_due=FR_DUE,
                        resolution_due=RES_DUE), True, id="both met"),
        pytest.param(tk(first_responded_at=FR_DUE, resolved_at=RES_DUE, first_response_due=FR_DUE,
                        resolution_due=RES_DUE), True, id="met exactly at the due instant"),
        pytest.param(tk(first_responded_at=T0 + 20 * M, resolved_at=T0 + H, first_response_due=FR_DUE,
                        resolution_due=RES_DUE), False, id="late first response"),
        pytest.param(tk(first_responded_at=T0 + 5 * M, resolved_at=T0 + 5 * H, first_response_due=FR_DUE,
                        resolution_due=RES_DUE), False, id="late resolution"),
        pytest.param(tk(resolved_at=T0 + 5 * M, first_response_due=FR_DUE, resolution_due=RES_DUE), True,
                     id="resolved without reply stops the first-response clock"),
        pytest.param(tk(resolved_at=T0 + H), True, id="no due times"),
        pytest.param(tk(status="new", first_response_due=FR_DUE, resolution_due=RES_DUE), False,
                     id="active: first response due passed unmet"),
        pytest.param(tk(status="open", first_responded_at=T0 + 20 * M, first_response_due=FR_DUE,
                        resolution_due=NOW + H), False, id="active: replied late"),
        pytest.param(tk(status="open", first_responded_at=T0 + 5 * M, first_response_due=FR_DUE,
                        resolution_due=RES_DUE), False, id="active: resolution due passed"),
        pytest.param(tk(status="open", first_responded_at=T0 + 5 * M, first_response_due=FR_DUE,
                        resolution_due=NOW + H), None, id="active and on time: not judged"),
        pytest.param(tk(status="new", first_response_due=NOW + M, resolution_due=NOW + H), None,
                     id="active: due later today has not passed"),
        pytest.param(tk(status="new", created_at=DAY.start - 2 * H, first_response_due=DAY.start - H,
                        resolution_due=DAY.end + H), None, id="active: missed before the window"),
        pytest.param(tk(resolved_at=DAY.start - H), None, id="resolved before the window"),
    ],
)
def test_sla_attainment(ticket: TicketRecord, verdict: bool | None) -> None:
    result = sla_attainment([ticket], DAY, NOW)
    assert result["judged"] == (verdict is not None)
    assert result["rate"] == (None if verdict is None else float(verdict))


NEXT = "next_response:2024-11-11T02:40:00+00:00"


@pytest.mark.parametrize(
    ("ticket", "expected"),
    [
        pytest.param(tk(), set(), id="none"),
        pytest.param(tk(sla_fired=("first_response:warning", f"{NEXT}:warning")), set(), id="warnings only"),
        pytest.param(tk(sla_fired=("first_response:warning", "first_response:breach", "resolution:breach"),
                        first_response_due=FR_DUE, resolution_due=RES_DUE),
                     {("first_response", FR_DUE), ("resolution", RES_DUE)}, id="timed by the due columns"),
        pytest.param(tk(sla_fired=("first_response:breach",)), set(), id="no due column: cannot be timed"),
        pytest.param(tk(sla_fired=(f"{NEXT}:breach", "next_response:garbage:breach")),
                     {("next_response", T0 + 40 * M)}, id="next response due from the key"),
        pytest.param(tk(sla_fired=(f"{NEXT}:breach",), breach_log=(("next_response", T0 + 40 * M),
                                                                  ("next_response", T0 + 3 * H))),
                     {("next_response", T0 + 40 * M), ("next_response", T0 + 3 * H)},
                     id="audit log adds pruned keys, same breach once"),
    ],
)
def test_breach_times(ticket: TicketRecord, expected: set[tuple[str, datetime]]) -> None:
    assert breach_times(ticket) == expected


def test_sla_counts_breaches_when_they_happened() -> None:
    tickets = [tk(1, resolved_at=T0 + H, sla_fired=(f"{NEXT}:breach",)),
               tk(2, status="new", first_response_due=FR_DUE, sla_fired=("first_response:breach",)),
               tk(3, status="open", resolution_due=T0, sla_fired=("resolution:breach",)),
               # Breached yesterday: counted in yesterday's report, and it is not judged today.
               tk(4, status="open", first_responded_at=DAY.start, first_response_due=DAY.start - H,
                  sla_fired=("first_response:breach",))]
    assert sla_attainment(tickets, DAY, NOW) == {
        "judged": 3, "met": 1, "rate": 1 / 3, "breaches_total": 3,
        "breaches": {"first_response": 1, "resolution": 1, "next_response": 1}}
    assert sla_attainment([], DAY, NOW)["rate"] is None


# --- backlog -------------------------------------------------------------------------------------------


def test_backlog_of_nothing() -> None:
    result = backlog([tk(status="resolved"), tk(status="closed")], NOW)
    assert result["total"] == 0 and result["waiting"] == 0 and result["overdue"] == 0
    assert result["oldest_waiting_seconds"] is None and result["oldest_waiting_ticket_id"] is None
    assert result["by_priority"] == {"P0": 0, "P1": 0, "P2": 0, "P3": 0}


def test_backlog_by_priority_status_and_oldest_wait() -> None:
    tickets = [
        tk(1, status="new", priority=0, created_at=NOW - 2 * H, first_response_due=NOW - H),
        # Created long ago but reopened 30 min ago: it has waited 30 minutes, not days.
        tk(2, status="new", priority=2, created_at=NOW - 72 * H, reopened_count=1,
           events=(("resolve", NOW - 70 * H), ("reopened", NOW - 30 * M))),
        tk(3, status="open", priority=1, assignee_id="alice", first_responded_at=NOW - H,
           first_response_due=NOW - 30 * M, resolution_due=NOW - M),
        tk(4, status="pending_customer", priority=3, assignee_id="alice"),
        tk(5, status="assigned", priority=2, assignee_id="bob", created_at=NOW - 5 * H),  # assigned: not waiting
        tk(6, status="resolved", priority=0),
    ]
    result = backlog(tickets, NOW)
    assert result["total"] == 5
    assert result["by_priority"] == {"P0": 1, "P1": 1, "P2": 2, "P3": 1}
    assert result["by_status"] == {"new": 2, "assigned": 1, "open": 1, "pending_customer": 1}
    assert result["by_priority_status"]["P2"] == {"new": 1, "assigned": 1, "open": 0, "pending_customer": 0}
    assert result["by_assignee"] == {"alice": 2, "bob": 1, "unassigned": 2}
    assert (result["waiting"], result["oldest_waiting_ticket_id"], result["oldest_waiting_seconds"]) == (2, 1, 7200.0)
    assert result["overdue"] == 2  # ticket 1 (no reply past due), ticket 3 (resolution past due)


# --- deflection and volume -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inbound", "tickets", "expected"),
    [
        pytest.param([], [], {"conversations": 0, "escalated": 0, "deflected": 0, "rate": None}, id="no data"),
        pytest.param([msg("a", T0), msg("a", T0 + M), msg("b", T0)], [],
                     {"conversations": 2, "escalated": 0, "deflected": 2, "rate": 1.0}, id="all deflected"),
        pytest.param([msg("a", T0), msg("b", T0), msg("c", T0), msg("d", T0)],
                     [tk(1, conversation_id="a"), tk(2, conversation_id="b", created_at=DAY.start - H)],
                     {"conversations": 4, "escalated": 1, "deflected": 3, "rate": 0.75},
                     id="a ticket from an earlier contact does not count"),
        pytest.param([msg("a", DAY.start - S)], [tk(1, conversation_id="a")],
                     {"conversations": 0, "escalated": 0, "deflected": 0, "rate": None},
                     id="messages outside the window"),
    ],
)
def test_deflection(inbound: list[InboundRecord], tickets: list[TicketRecord], expected: dict[str, Any]) -> None:
    assert deflection(inbound, tickets, DAY) == expected


def test_deflection_and_volume_by_channel() -> None:
    inbound = [msg("w1", T0), msg("w1", T0 + M), msg("w2", T0), msg("t1", T0, "telegram"),
               msg("t2", DAY.end, "telegram")]
    tickets = [tk(1, conversation_id="w1"), tk(2, conversation_id="x", channel="email")]
    assert deflection_by_channel(inbound, tickets, DAY) == {
        "telegram": {"conversations": 1, "escalated": 0, "deflected": 1, "rate": 1.0},
        "webchat": {"conversations": 2, "escalated": 1, "deflected": 1, "rate": 0.5}}
    assert volume_by_channel(inbound, tickets, DAY) == {
        "email": {"conversations": 0, "inbound_messages": 0, "tickets": 1},
        "telegram": {"conversations": 1, "inbound_messages": 1, "tickets": 0},
        "webchat": {"conversations": 2, "inbound_messages": 3, "tickets": 1}}


# --- unanswered questions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("  发货了吗？ ", "发货了吗", id="Chinese question mark and spaces"),
        pytest.param("发货了吗?!", "发货了吗", id="ASCII punctuation"),
        pytest.param("发货了吗～～", "发货了吗", id="chat tilde"),
        pytest.param("好的。谢谢！", "好的。谢谢", id="inner punctuation kept"),
        pytest.param("Where IS my\n\t order ?", "where is my order", id="case and whitespace"),
        pytest.param("ＷＨＥＲＥ？", "where", id="full-width letters"),
        pytest.param("。。。", "", id="only punctuation"),
        pytest.param("", "", id="empty"),
    ],
)
def test_normalize_question(text: str, expected: str) -> None:
    assert normalize_question(text) == expected


def test_top_unanswered() -> None:
    tickets = [
        tk(1, reason="out_of_scope", summary="发货了吗？"),
        tk(2, reason="low_confidence", summary=" 发货了吗", created_at=T0 + H),
        tk(3, reason="low_confidence", summary="Can I pay with PayPal?", created_at=T0 + 2 * H),
        tk(4, reason="out_of_scope", summary="能开发票吗", created_at=T0 + 3 * H),
        tk(5, reason="anger", summary="发货了吗"),  # the bot knew the answer; the customer was angry
        tk(6, reason="out_of_scope", summary="发货了吗", created_at=DAY.end),  # after the window
        tk(7, reason="out_of_scope", summary="？"),  # nothing left after normalising
    ]
    assert top_unanswered(tickets, DAY, 2) == [
        {"question": "发货了吗", "count": 2, "latest_ticket_id": 2, "latest_at": (T0 + H).isoformat()},
        {"question": "能开发票吗", "count": 1, "latest_ticket_id": 4, "latest_at": (T0 + 3 * H).isoformat()},
    ]
    assert top_unanswered(tickets, DAY, 0) == [] and top_unanswered([], DAY) == []


# --- grouping ------------------------------------------------------------------------------------------


def test_group_by_agent_lists_known_agents_and_unassigned() -> None:
    tickets = [tk(1, assignee_id="alice", first_responded_at=T0 + M), tk(2, status="new"),
               tk(3, assignee_id="bob", first_responded_at=T0 + 3 * M)]
    groups = grouped("agent", tickets, [], DAY, NOW, known=["alice", "carol"])
    assert list(groups) == ["alice", "bob", "carol", "unassigned"]
    assert groups["alice"]["first_response"]["mean"] == 60.0
    assert groups["carol"]["tickets_created"] == 0 and groups["carol"]["fcr"]["rate"] is None
    assert "deflection" not in groups["alice"]


def test_group_by_team_and_channel() -> None:
    tickets = [tk(1, team="presales", channel="jd"), tk(2, team="aftersales"), tk(3, team="unassigned")]
    assert list(grouped("team", tickets, [], DAY, NOW)) == ["aftersales", "presales", "unassigned"]
    inbound = [msg("webchat:c2", T0), msg("tg", T0, "telegram")]
    by_channel = grouped("channel", tickets, inbound, DAY, NOW)
    assert list(by_channel) == ["jd", "telegram", "webchat"]
    assert by_channel["webchat"]["deflection"]["rate"] == 0.0
    assert by_channel["telegram"]["deflection"]["rate"] == 1.0 and by_channel["telegram"]["tickets_created"] == 0


def test_group_by_day_splits_at_16_utc_and_lists_empty_days() -> None:
    window = Window(datetime(2024, 11, 9, 16, tzinfo=UTC), datetime(2024, 11, 12, 16, tzinfo=UTC))
    before, after = datetime(2024, 11, 10, 15, 59, 59, tzinfo=UTC), datetime(2024, 11, 10, 16, tzinfo=UTC)
    tickets = [tk(1, created_at=before, first_responded_at=before + M, resolved_at=after + H),
               tk(2, created_at=after, first_responded_at=after + 2 * M)]
    inbound = [msg("a", before), msg("a", after), msg("b", after)]
    days = grouped("day", tickets, inbound, window, NOW)
    assert list(days) == ["2024-11-10", "2024-11-11", "2024-11-12"]
    assert days["2024-11-10"]["first_response"]["mean"] == 60.0 and days["2024-11-10"]["tickets_created"] == 1
    assert days["2024-11-11"]["first_response"]["mean"] == 120.0 and days["2024-11-11"]["tickets_created"] == 1
    assert days["2024-11-11"]["handle_time"]["count"] == 1  # resolved on the 11th, created on the 10th
    assert days["2024-11-10"]["deflection"]["conversations"] == 1
    assert days["2024-11-11"]["deflection"]["conversations"] == 2  # "a" wrote on both days
    assert days["2024-11-12"]["tickets_created"] == 0 and days["2024-11-12"]["deflection"]["rate"] is None


def test_group_by_hour_lists_every_china_hour() -> None:
    tickets = [tk(1, created_at=T0 + 5 * M, first_responded_at=T0 + 7 * M, resolved_at=T0 + 2 * H),
               tk(2, created_at=T0 + 59 * M, status="new")]
    inbound = [msg("webchat:c1", T0 + 4 * M), msg("webchat:c2", T0 + 58 * M), msg("tg", T0 + H, "telegram"),
               msg("tg", T0 + H + M, "telegram")]
    hours = grouped("hour", tickets, inbound, DAY, NOW)
    assert len(hours) == 24 and next(iter(hours)) == "2024-11-11T00:00:00+08:00"
    ten, eleven, noon = hours["2024-11-11T10:00:00+08:00"], hours["2024-11-11T11:00:00+08:00"], \
        hours["2024-11-11T12:00:00+08:00"]
    assert ten["tickets_created"] == 2 and ten["first_response"] == {"count": 1, "mean": 120.0, "median": 120.0,
                                                                      "p90": 120.0, "awaiting": 1}
    assert ten["deflection"] == {"conversations": 2, "escalated": 2, "deflected": 0, "rate": 0.0}
    assert eleven["deflection"] == {"conversations": 1, "escalated": 0, "deflected": 1, "rate": 1.0}
    assert eleven["volume_by_channel"] == {"telegram": {"conversations": 1, "inbound_messages": 2, "tickets": 0}}
    assert noon["handle_time"]["count"] == 1 and noon["tickets_created"] == 0  # resolved at 12:05 CST
    assert hours["2024-11-11T23:00:00+08:00"]["deflection"]["rate"] is None


@pytest.mark.parametrize("group", ["week", "Agent", ""])
def test_unknown_group_is_rejected(group: str) -> None:
    with pytest.raises(ValueError, match="unknown group"):
        check_group(group)
    with pytest.raises(ValueError, match="unknown group"):
        grouped(group, [], [], DAY, NOW)


@pytest.mark.parametrize(
    ("name", "now", "start", "end"),
    [
        pytest.param("today", NOW, DAY.start, DAY.end, id="today"),
        pytest.param("today", datetime(2024, 11, 11, 16, tzinfo=UTC), DAY.end, DAY.end + 24 * H,
                     id="16:00 UTC starts the next day"),
        pytest.param("7d", NOW, DAY.start - 6 * 24 * H, DAY.end, id="seven days incl. today"),
        pytest.param("30d", NOW, DAY.start - 29 * 24 * H, DAY.end, id="thirty days"),
    ],
)
def test_preset_window(name: str, now: datetime, start: datetime, end: datetime) -> None:
    window = preset_window(name, now)
    assert (window.start, window.end) == (start, end)


def test_preset_window_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="unknown period"):
        preset_window("yesterday", NOW)


def test_records_are_values() -> None:
    assert replace(tk(), status="open").active and not tk().active
