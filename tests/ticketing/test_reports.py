"""The metrics report end to end on a real database (SQLite and PostgreSQL): one small, realistic 双11
day of conversations, messages, tickets, audit events and agents, inserted with SQLAlchemy Core."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.schema import agents, conversations, messages, ticket_events, tickets
from ticketing.reports import CONTENT_TYPE, build_report, prometheus_text, report_args, scrape

M, H = timedelta(minutes=1), timedelta(hours=1)
START, END = datetime(2024, 11, 10, 16, tzinfo=UTC), datetime(2024, 11, 11, 16, tzinfo=UTC)  # 2024-11-11 CST
NOW = datetime(2024, 11, 11, 12, tzinfo=UTC)  # 20:00 in China


def at(hour: int, minute: int = 0, day: int = 11) -> datetime:
    return datetime(2024, 11, day, hour, minute, tzinfo=UTC)


# id, channel, inbound message times (customer), outbound (bot) message times
CONVERSATIONS: list[tuple[str, str, list[datetime], list[datetime]]] = [
    ("webchat:c1", "webchat", [at(1, 59)], [at(2, 0)]),
    ("telegram:c2", "telegram", [at(3, 59)], []),
    ("webchat:c3", "webchat", [at(8, 59)], []),
    ("wechat:c4", "wechat", [at(9, 59)], []),
    ("webchat:c5", "webchat", [at(0, 59, day=10)], []),  # yesterday's contact; its ticket resolved today
    ("webchat:c6", "webchat", [at(15, 59, day=10)], []),  # 23:59 China time on the 10th
    ("webchat:c7", "webchat", [at(5), at(5, 1)], [at(5, 0), at(5, 2)]),  # the bot answered: deflected
    ("telegram:c8", "telegram", [at(8)], [at(8)]),  # deflected
    ("email:c9", "email", [at(15, 59, day=10), at(16, 1, day=10)], []),  # wrote on both China days
    ("webchat:c10", "webchat", [], [at(6)]),  # only our outbound message: not a contact
    ("webchat:c11", "webchat", [at(12, day=8)], []),
]

AGENTS = [("alice", "Alice 王", "presales", True), ("bob", "Bob 李", "aftersales", True),
          ("carol", "Carol 张", "aftersales", True), ("dave", "Dave 赵", "aftersales", False)]


def ticket(conv: str, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"conversation_id": conv, "status": "resolved", "reason": "asked_for_human", "summary": "",
                           "details": {}, "priority": 2, "channel": conv.split(":")[0], "sla_fired": []}
    row.update(kw)
    row.setdefault("updated_at", row["created_at"])
    if row["status"] in {"new", "assigned", "open", "pending_customer"}:
        row["open_key"] = conv
    return row


TICKETS: list[dict[str, Any]] = [
    # 1: a good one -- replied in 5 min, resolved in an hour, rated 5.
    ticket("webchat:c1", created_at=at(2), assignee_id="alice", assigned_at=at(2, 1), first_responded_at=at(2, 5),
           resolved_at=at(3, 1), first_response_due=at(2, 10), resolution_due=at(6), csat=5, csat_at=at(3, 10),
           csat_requested_at=at(3, 1), sla_fired=["next_response:2024-11-11T02:40:00+00:00:breach"]),
    # 2: late first reply, reopened once, rated 2; the bot could not answer it.
    ticket("telegram:c2", created_at=at(4), assignee_id="bob", assigned_at=at(4, 20), first_responded_at=at(4, 30),
           resolved_at=at(7, 10), reopened_count=1, first_response_due=at(4, 10), resolution_due=at(10), csat=2,
           csat_at=at(7, 30), csat_requested_at=at(5, 10), reason="low_confidence", summary="发货了吗？",
           sla_fired=["first_response:warning", "first_response:breach"]),
    # 3: P0 waiting in the queue since 17:00 China time, first response overdue.
    ticket("webchat:c3", status="new", created_at=at(9), priority=0, first_response_due=at(9, 30),
           resolution_due=at(13), reason="out_of_scope", summary="  发货了吗 ", sla_fired=["first_response:breach"]),
    # 4: open with Alice, on time; tickets.channel was never set (older rows): the conversation's is used.
    ticket("wechat:c4", status="open", channel=None, created_at=at(10), priority=1, assignee_id="alice",
           assigned_at=at(10, 5), first_responded_at=at(10, 20), first_response_due=at(10, 30),
           resolution_due=at(14), reason="out_of_scope", summary="Can I pay with PayPal?"),
    # 5: created yesterday, resolved (then closed) today, no events: AHT from assigned_at.
    ticket("webchat:c5", status="closed", created_at=at(1, day=10), assignee_id="bob", assigned_at=at(2, day=10),
           first_responded_at=at(2, 10, day=10), resolved_at=at(1), reason="anger"),
    # 6: created one second before the China day began; still open with Bob.
    ticket("webchat:c6", status="open", created_at=datetime(2024, 11, 10, 15, 59, 59, tzinfo=UTC),
           assignee_id="bob", assigned_at=at(16, day=10), first_responded_at=datetime(2024, 11, 10, 16, 0, 29,
                                                                                       tzinfo=UTC),
           first_response_due=at(16, 10, day=10), resolution_due=at(13)),
    # 7: two days ago, resolved yesterday; a next-response breach on the 9th is only in the audit log.
    ticket("webchat:c11", created_at=at(12, day=8), assignee_id="bob", assigned_at=at(12, 5, day=8),
           first_responded_at=at(12, 6, day=8), first_response_due=at(12, 10, day=8), resolved_at=at(17, day=9),
           resolution_due=at(20, day=9)),
]

EVENTS: list[tuple[Any, ...]] = [  # (ticket index, kind, at[, data])
    (1, "escalated", at(2)), (1, "assign", at(2, 1)), (1, "agent_reply", at(2, 5)), (1, "resolve", at(3, 1)),
    (2, "escalated", at(4)), (2, "claim", at(4, 10)), (2, "assign", at(4, 20)), (2, "resolve", at(5, 10)),
    (2, "reopened", at(6, 10)), (2, "resolve", at(7, 10)),
    (3, "escalated", at(9)), (4, "escalated", at(10)), (4, "assign", at(10, 5)),
    (6, "escalated", datetime(2024, 11, 10, 15, 59, 59, tzinfo=UTC)), (6, "assign", at(16, day=10)),
    # The scheduler's audit rows: ticket 3's is also in sla_fired (counted once); ticket 4's next-response
    # key was pruned from sla_fired when Alice answered; ticket 7's is in no other column at all.
    (3, "sla_breach", at(9, 30), {"clock": "first_response", "due": at(9, 30).isoformat()}),
    (4, "sla_breach", at(11, 1), {"clock": "next_response", "due": at(11).isoformat()}),
    (7, "sla_breach", at(3, 1, day=9), {"clock": "next_response", "due": at(3, day=9).isoformat()}),
    (7, "sla_breach", at(3, 2, day=9), {"clock": "next_response"}),  # malformed: ignored
]


async def seed(engine: AsyncEngine) -> list[int]:
    """Insert the day; returns the ticket ids in ``TICKETS`` order."""
    async with engine.begin() as conn:
        for agent_id, name, team, active in AGENTS:
            await conn.execute(agents.insert().values(id=agent_id, name=name, skills=[], max_concurrent=4,
                                                      created_at=at(0, day=1), team=team, active=active))
        for conv, channel, inbound, outbound in CONVERSATIONS:
            first = min([*inbound, *outbound])
            await conn.execute(conversations.insert().values(
                id=conv, channel=channel, conversation_key=conv.split(":")[1], customer_external_id=conv,
                state="bot", created_at=first, updated_at=first))
            for n, stamp in enumerate(inbound):
                await conn.execute(messages.insert().values(
                    id=f"{conv}:in{n}", conversation_id=conv, direction="in", author="customer", channel=channel,
                    text="你好", attachments=[], raw={}, created_at=stamp))
            for n, stamp in enumerate(outbound):
                await conn.execute(messages.insert().values(
                    id=f"{conv}:out{n}", conversation_id=conv, direction="out", author="bot", channel=channel,
                    text="您好", attachments=[], raw={}, created_at=stamp))
        ids: list[int] = []
        for row in TICKETS:
            key = (await conn.execute(tickets.insert().values(**row))).inserted_primary_key
            assert key is not None
            ids.append(int(key[0]))
        for index, kind, stamp, *data in EVENTS:
            await conn.execute(ticket_events.insert().values(ticket_id=ids[index - 1], at=stamp, actor="test",
                                                             kind=kind, data=data[0] if data else {}))
    return ids


async def test_overall_report(engine: AsyncEngine) -> None:
    ids = await seed(engine)
    report = await build_report(engine, start=START, end=END, now=NOW)
    assert json.loads(json.dumps(report)) == report  # JSON-serialisable as is
    assert report["period"] == {"start": "2024-11-10T16:00:00+00:00", "end": "2024-11-11T16:00:00+00:00"}
    assert "groups" not in report and report["group"] is None
    overall = report["overall"]
    assert overall["tickets_created"] == 4  # tickets 1-4; ticket 6 is one second too early
    assert overall["first_response"] == {"count": 3, "mean": 1100.0, "median": 1200.0, "p90": 1800.0, "awaiting": 1}
    # 1: 02:01-03:01; 2: claimed 04:10, resolved 07:10 minus an hour resolved before reopening; 5: 23 h.
    assert overall["handle_time"] == {"count": 3, "mean": (3600 + 7200 + 82800) / 3}
    assert overall["fcr"] == {"resolved": 3, "first_contact": 2, "rate": 2 / 3}
    assert overall["csat"] == {"count": 2, "mean": 3.5, "satisfied_share": 0.5, "requested": 2, "response_rate": 1.0,
                               "distribution": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}}
    # Judged: 1 (met), 2 (late reply), 5 (no due times: met), 3 (active, reply overdue); 4 and 6 still on time.
    # Breaches due today: 2 and 3 (first response), 1 (in sla_fired) and 4 (audit only) next response.
    assert overall["sla"] == {"judged": 4, "met": 2, "rate": 0.5, "breaches_total": 4,
                              "breaches": {"first_response": 2, "resolution": 0, "next_response": 2}}

    backlog = report["backlog"]
    assert backlog["total"] == 3
    assert backlog["by_priority"] == {"P0": 1, "P1": 1, "P2": 1, "P3": 0}
    assert backlog["by_status"] == {"new": 1, "assigned": 0, "open": 2, "pending_customer": 0}
    assert backlog["by_priority_status"]["P0"]["new"] == 1
    assert backlog["by_assignee"] == {"alice": 1, "bob": 1, "unassigned": 1}
    assert (backlog["waiting"], backlog["oldest_waiting_ticket_id"], backlog["oldest_waiting_seconds"]) == (
        1, ids[2], 3 * 3600.0)
    assert backlog["overdue"] == 1

    # Contacts today: c1 c2 c3 c4 c7 c8 c9 (c5 and c6 wrote yesterday; c10 has only our message).
    deflection = report["deflection"]
    assert {k: deflection[k] for k in ("conversations", "escalated", "deflected")} == {
        "conversations": 7, "escalated": 4, "deflected": 3}
    assert deflection["rate"] == pytest.approx(3 / 7)
    assert deflection["by_channel"]["webchat"] == {"conversations": 3, "escalated": 2, "deflected": 1, "rate": 1 / 3}
    assert deflection["by_channel"]["email"]["rate"] == 1.0
    assert report["volume_by_channel"] == {
        "email": {"conversations": 1, "inbound_messages": 1, "tickets": 0},
        "telegram": {"conversations": 2, "inbound_messages": 2, "tickets": 1},
        "webchat": {"conversations": 3, "inbound_messages": 4, "tickets": 2},
        "wechat": {"conversations": 1, "inbound_messages": 1, "tickets": 1},
    }
    assert report["top_unanswered"] == [
        {"question": "发货了吗", "count": 2, "latest_ticket_id": ids[2], "latest_at": at(9).isoformat()},
        {"question": "can i pay with paypal", "count": 1, "latest_ticket_id": ids[3], "latest_at": at(10).isoformat()},
    ]
    assert len((await build_report(engine, start=START, end=END, now=NOW, top_n=1))["top_unanswered"]) == 1


async def test_grouped_by_agent_and_team(engine: AsyncEngine) -> None:
    await seed(engine)
    by_agent = (await build_report(engine, start=START, end=END, now=NOW, group="agent"))["groups"]
    assert list(by_agent) == ["alice", "bob", "carol", "unassigned"]  # dave is inactive and had nothing
    assert by_agent["alice"]["agent"] == {"name": "Alice 王", "team": "presales", "active": True}
    assert by_agent["unassigned"]["agent"] is None
    assert by_agent["alice"]["first_response"]["mean"] == 750.0 and by_agent["alice"]["tickets_created"] == 2
    assert by_agent["bob"]["handle_time"] == {"count": 2, "mean": 45000.0}
    assert by_agent["bob"]["fcr"]["rate"] == 0.5 and by_agent["bob"]["csat"]["mean"] == 2.0
    assert by_agent["carol"]["tickets_created"] == 0 and by_agent["carol"]["first_response"]["mean"] is None
    assert by_agent["unassigned"]["sla"]["rate"] == 0.0

    by_team = (await build_report(engine, start=START, end=END, now=NOW, group="team"))["groups"]
    assert list(by_team) == ["aftersales", "presales", "unassigned"]
    assert by_team["presales"]["csat"]["mean"] == 5.0
    assert by_team["aftersales"]["handle_time"]["count"] == 2


async def test_grouped_by_channel_and_day(engine: AsyncEngine) -> None:
    await seed(engine)
    by_channel = (await build_report(engine, start=START, end=END, now=NOW, group="channel"))["groups"]
    assert list(by_channel) == ["email", "telegram", "webchat", "wechat"]
    assert by_channel["wechat"]["tickets_created"] == 1  # from the conversation's channel
    assert by_channel["telegram"]["first_response"]["mean"] == 1800.0
    assert by_channel["webchat"]["deflection"] == {"conversations": 3, "escalated": 2, "deflected": 1, "rate": 1 / 3}
    assert by_channel["email"]["tickets_created"] == 0 and by_channel["email"]["deflection"]["rate"] == 1.0

    report = await build_report(engine, start=START - 24 * H, end=END, now=NOW, group="day")
    days = report["groups"]
    assert list(days) == ["2024-11-10", "2024-11-11"]
    assert days["2024-11-10"]["tickets_created"] == 2  # tickets 5 and 6 (23:59:59 China time)
    assert days["2024-11-10"]["first_response"]["count"] == 2
    assert days["2024-11-11"]["tickets_created"] == 4
    assert days["2024-11-11"]["handle_time"]["count"] == 3  # ticket 5 was resolved on the 11th
    assert days["2024-11-10"]["deflection"]["conversations"] == 3  # c5, c6, c9
    assert days["2024-11-11"]["deflection"]["conversations"] == 7
    assert days["2024-11-10"]["volume_by_channel"]["email"]["inbound_messages"] == 1
    assert report["overall"]["tickets_created"] == 6 and report["deflection"]["conversations"] == 9


async def test_grouped_by_hour(engine: AsyncEngine) -> None:
    await seed(engine)
    report = await build_report(engine, start=START, end=END, now=NOW, group="hour")
    hours = report["groups"]
    assert len(hours) == 24 and list(hours)[:2] == ["2024-11-11T00:00:00+08:00", "2024-11-11T01:00:00+08:00"]
    # 10:00 CST = 02:00 UTC: ticket 1 created, c1 wrote at 01:59 UTC (the 09:00 hour).
    assert hours["2024-11-11T10:00:00+08:00"]["tickets_created"] == 1
    assert hours["2024-11-11T09:00:00+08:00"]["deflection"]["conversations"] == 1
    # 13:00 CST: c7 wrote twice and the bot answered it; no ticket.
    assert hours["2024-11-11T13:00:00+08:00"]["deflection"] == {"conversations": 1, "escalated": 0, "deflected": 1,
                                                                "rate": 1.0}
    assert sum(h["tickets_created"] for h in hours.values()) == report["overall"]["tickets_created"]
    assert sum(h["deflection"]["conversations"] for h in hours.values()) == report["deflection"]["conversations"]


async def test_empty_database_gives_none_not_errors(engine: AsyncEngine) -> None:
    report = await build_report(engine, start=START, end=END, now=NOW, group="day")
    overall = report["overall"]
    assert overall["first_response"]["mean"] is None and overall["handle_time"]["mean"] is None
    assert overall["fcr"]["rate"] is None and overall["csat"]["mean"] is None and overall["sla"]["rate"] is None
    assert report["deflection"]["rate"] is None and report["backlog"]["oldest_waiting_seconds"] is None
    assert report["top_unanswered"] == [] and report["volume_by_channel"] == {}
    families = {f.name: f for f in text_string_to_metric_families(prometheus_text(report).decode())}
    assert "huiliu_fcr_ratio" in families and families["huiliu_fcr_ratio"].samples == []  # no 0 for "no data"
    assert families["huiliu_waiting_oldest_seconds"].samples[0].value == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"group": "week"}, "unknown group", id="group"),
        pytest.param({"end": START}, "must be after", id="empty period"),
        pytest.param({"start": START.replace(tzinfo=None)}, "timezone-aware", id="naive start"),
        pytest.param({"now": NOW.replace(tzinfo=None)}, "timezone-aware", id="naive now"),
        pytest.param({"top_n": -1}, "top_n", id="negative top"),
        pytest.param({"start": START - 400 * 24 * H, "group": "day"}, "366", id="too many days"),
        pytest.param({"start": START - 31 * 24 * H, "group": "hour"}, "744 hours", id="too many hours"),
    ],
)
async def test_invalid_arguments(engine: AsyncEngine, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await build_report(engine, **{"start": START, "end": END, "now": NOW, **kwargs})


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text.decode()) for s in family.samples}


async def test_prometheus_text(engine: AsyncEngine) -> None:
    await seed(engine)
    got = samples(prometheus_text(await build_report(engine, start=START, end=END, now=NOW, group="channel")))
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")
    expected = {
        ("huiliu_report_window_seconds", ()): 86400.0,
        ("huiliu_backlog_tickets", (("priority", "P0"), ("status", "new"))): 1.0,
        ("huiliu_backlog_tickets", (("priority", "P3"), ("status", "open"))): 0.0,
        ("huiliu_waiting_tickets", ()): 1.0,
        ("huiliu_waiting_oldest_seconds", ()): 10800.0,
        ("huiliu_overdue_tickets", ()): 1.0,
        ("huiliu_tickets_created", (("channel", "all"),)): 4.0,
        ("huiliu_first_response_seconds", (("channel", "all"), ("stat", "p90"))): 1800.0,
        ("huiliu_first_response_seconds", (("channel", "telegram"), ("stat", "mean"))): 1800.0,
        ("huiliu_handle_time_seconds_mean", (("channel", "all"),)): 31200.0,
        ("huiliu_fcr_ratio", (("channel", "telegram"),)): 0.0,
        ("huiliu_csat_average", (("channel", "all"),)): 3.5,
        ("huiliu_csat_responses", (("channel", "all"),)): 2.0,
        ("huiliu_csat_satisfied_ratio", (("channel", "webchat"),)): 1.0,
        ("huiliu_sla_attainment_ratio", (("channel", "all"),)): 0.5,
        ("huiliu_sla_breaches", (("channel", "all"), ("clock", "first_response"))): 2.0,
        ("huiliu_sla_breaches", (("channel", "wechat"), ("clock", "next_response"))): 1.0,
        ("huiliu_bot_deflection_ratio", (("channel", "webchat"),)): pytest.approx(1 / 3),
        ("huiliu_conversations", (("channel", "all"),)): 7.0,
        ("huiliu_conversations", (("channel", "email"),)): 1.0,
        ("huiliu_inbound_messages", (("channel", "all"),)): 8.0,
    }
    assert {key: got.get(key) for key in expected} == expected
    assert len([k for k in got if k[0] == "huiliu_backlog_tickets"]) == 16  # stable series, zeros included
    assert ("huiliu_handle_time_seconds_mean", (("channel", "wechat"),)) not in got  # nothing resolved there

    rolling = samples(await scrape(engine, now=NOW))  # the last 24 h: ticket 6 (15:59:59 on the 10th) is in
    assert rolling[("huiliu_report_window_seconds", ())] == 86400.0
    assert rolling[("huiliu_tickets_created", (("channel", "all"),))] == 5.0


async def test_breach_found_only_in_the_audit_log(engine: AsyncEngine) -> None:
    await seed(engine)
    ninth = await build_report(engine, start=START - 48 * H, end=START - 24 * H, now=NOW, group="agent")
    assert ninth["overall"]["sla"]["breaches"] == {"first_response": 0, "resolution": 0, "next_response": 1}
    assert ninth["overall"]["tickets_created"] == 0 and ninth["overall"]["sla"]["judged"] == 0
    assert ninth["groups"]["bob"]["sla"]["breaches_total"] == 1
    tenth = await build_report(engine, start=START - 24 * H, end=START, now=NOW)
    assert tenth["overall"]["fcr"] == {"resolved": 1, "first_contact": 1, "rate": 1.0}  # ticket 7
    assert tenth["overall"]["sla"]["breaches_total"] == 0


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param({}, {"start": START, "end": END, "group": None, "top_n": 10}, id="today by default"),
        pytest.param({"period": "today", "group": "hour"}, {"start": START, "end": END, "group": "hour", "top_n": 10},
                     id="today by hour"),
        pytest.param({"period": "7d", "group": "agent", "top": "5"},
                     {"start": START - 6 * 24 * H, "end": END, "group": "agent", "top_n": 5}, id="last 7 days"),
        pytest.param({"start": "2024-11-11T00:00:00+08:00", "end": "2024-11-11T12:00:00Z", "group": ""},
                     {"start": START, "end": at(12), "group": None, "top_n": 10}, id="explicit instants"),
    ],
)
def test_report_args(query: dict[str, str], expected: dict[str, Any]) -> None:
    assert report_args(query, NOW) == {**expected, "now": NOW}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param({"period": "yesterday"}, "unknown period", id="period"),
        pytest.param({"group": "week"}, "unknown group", id="group"),
        pytest.param({"start": "2024-11-11T00:00:00+08:00"}, "both start and end", id="half a range"),
        pytest.param({"start": "2024-11-11T00:00:00", "end": "2024-11-12T00:00:00"}, "timezone-aware", id="naive"),
        pytest.param({"start": "yesterday", "end": "today"}, "isoformat", id="not ISO"),
        pytest.param({"top": "ten"}, "integer", id="top not a number"),
        pytest.param({"top": "1000"}, "between 0 and 100", id="top too large"),
    ],
)
def test_report_args_rejects(query: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        report_args(query, NOW)
