"""The metrics report behind ``GET /api/metrics``, the supervisor dashboard and ``/metrics``.

``build_report`` loads one period's rows with four set-based SELECTs (tickets touched in the period
or still active, with their channel and team joined in; their assign/resolve/reopen/SLA-breach audit
events; the period's inbound messages; agents) and aggregates them in Python with ``ticketing.metrics``,
where every definition is documented, split per agent/team/channel/day by ``ticketing.metric_groups``.
Cost is linear in the period's rows, which suits a small shop (thousands of tickets and tens of
thousands of messages a month). ``tickets`` is filtered on unindexed time columns and ``messages`` on
``created_at``: past that size, add indexes on those columns or precompute daily rollups; the
report's shape need not change.

``prometheus_text`` renders a report in the Prometheus text format. Prometheus wants "now" figures,
so the scrape reports a *rolling window* (``scrape`` uses the last 24 h, grouped by channel): every
series is a gauge, because a rolling count can go down. ``channel="all"`` is the aggregate, so sum
only over the other channel values. A value that does not exist (a mean of nothing) is left out
rather than exported as 0 or NaN, so alerts do not fire on quiet nights.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db.schema import agents, conversations, messages, ticket_events, tickets
from ticketing import metrics as m
from ticketing.metric_groups import check_group, day_windows, grouped, hour_count, preset_window

# The classic text format: understood by every Prometheus server, and what generate_latest writes.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
MAX_DAY_GROUPS = 366  # a day-grouped report is one block per day; past a year, ask for a coarser view
MAX_HOUR_GROUPS = 31 * 24  # hourly blocks for at most a month (the dashboard asks for one day)
UNKNOWN_TEAM = "unknown"  # assigned to an agent id with no agents row (deleted, or an external system)
BREACH_KIND = "sla_breach"  # written by ticketing.sla_scheduler with data {"clock", "due"}
_EVENT_KINDS = sorted(m.ASSIGN_KINDS | m.RESOLVE_KINDS | {m.REOPEN_KIND, BREACH_KIND})


async def build_report(engine: AsyncEngine, *, start: datetime, end: datetime, now: datetime,
                       group: str | None = None, top_n: int = 10) -> dict[str, Any]:
    """Every metric for ``[start, end)``, optionally per agent/team/channel/day/hour.

    The backlog is the database's current state (ages measured at ``now``); ``now`` also decides which
    due times have passed, so a report of a past period taken today judges everything due in it.

    Returns a JSON-serialisable dict: ``period``, ``generated_at``, ``group``, ``overall``, ``groups``
    (only when grouped), ``backlog``, ``deflection`` (with ``by_channel``), ``volume_by_channel`` and
    ``top_unanswered``. Raises ``ValueError`` for an unknown group, naive datetimes, an empty period,
    a negative ``top_n``, a day grouping over more than ``MAX_DAY_GROUPS`` days or an hour grouping
    over more than ``MAX_HOUR_GROUPS`` hours.
    """
    check_group(group)
    window = m.Window(start, end)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if top_n < 0:
        raise ValueError("top_n must not be negative")
    if group == "day" and len(day_windows(window)) > MAX_DAY_GROUPS:
        raise ValueError(f"按天分组最多 {MAX_DAY_GROUPS} 天 / grouping by day covers at most {MAX_DAY_GROUPS} days")
    if group == "hour" and hour_count(window) > MAX_HOUR_GROUPS:
        raise ValueError(f"按小时分组最多 {MAX_HOUR_GROUPS} 小时 / grouping by hour covers at most "
                         f"{MAX_HOUR_GROUPS} hours")
    async with engine.connect() as conn:
        records = await load_tickets(conn, window)
        inbound = await load_inbound(conn, window)
        staff = await load_agents(conn) if group in {"agent", "team"} else []
    report: dict[str, Any] = {
        "period": {"start": _iso(window.start), "end": _iso(window.end)},
        "generated_at": _iso(now),
        "day_timezone": "UTC+08:00",
        "group": group,
        "overall": m.ticket_metrics(records, window, now),
        "backlog": m.backlog(records, now),
        "deflection": {**m.deflection(inbound, records, window),
                       "by_channel": m.deflection_by_channel(inbound, records, window)},
        "volume_by_channel": m.volume_by_channel(inbound, records, window),
        "top_unanswered": m.top_unanswered(records, window, top_n),
    }
    if group is not None:
        active = [a for a in staff if a["active"]]
        known = {"agent": [a["id"] for a in active], "team": [a["team"] for a in active]}.get(group, [])
        report["groups"] = grouped(group, records, inbound, window, now, known)
        if group == "agent":
            names = {a["id"]: {"name": a["name"], "team": a["team"], "active": a["active"]} for a in staff}
            for key, block in report["groups"].items():
                block["agent"] = names.get(key)
    return report


def report_args(query: Mapping[str, str], now: datetime) -> dict[str, Any]:
    """``build_report`` keyword arguments (all but the engine) from ``GET /api/metrics`` query parameters.

    ``period`` = ``today`` | ``7d`` | ``30d`` (whole China-time days, today included; the default), or
    ``start`` and ``end`` as ISO 8601 instants with an offset; ``group`` = agent | team | channel | day | hour;
    ``top`` = 0..100 unanswered questions (default 10). Raises ``ValueError`` (answer 400 with it).
    """
    if "start" in query or "end" in query:
        try:
            window = m.Window(datetime.fromisoformat(query["start"]), datetime.fromisoformat(query["end"]))
        except KeyError:
            raise ValueError("start 和 end 须同时给出 / give both start and end") from None
    else:
        window = preset_window(query.get("period", "today"), now)
    group = query.get("group") or None
    check_group(group)
    try:
        top_n = int(query.get("top", "10"))
    except ValueError:
        raise ValueError("top 须为整数 / top must be an integer") from None
    if not 0 <= top_n <= 100:
        raise ValueError("top 须在 0 到 100 之间 / top must be between 0 and 100")
    return {"start": window.start, "end": window.end, "now": now, "group": group, "top_n": top_n}


async def scrape(engine: AsyncEngine, *, now: datetime, window: timedelta = timedelta(hours=24)) -> bytes:
    """The ``/metrics`` body: the last ``window`` up to ``now``, per channel (serve with ``CONTENT_TYPE``)."""
    return prometheus_text(await build_report(engine, start=now - window, end=now, now=now, group="channel",
                                              top_n=0))


# --- loading ----------------------------------------------------------------------------------------


def _in(column: Any, window: m.Window) -> ColumnElement[bool]:
    return and_(column >= window.start, column < window.end)


def _relevant(window: m.Window) -> ColumnElement[bool]:
    """Tickets some metric needs: created, resolved, rated, asked to rate or due in the period, breached
    in it, or active now."""
    # A breach is timed by its due instant but found by the audit row's time: a scan lagging across the
    # period's end can only miss a ticket that no other condition here loads, and only for that lag.
    breached = select(ticket_events.c.ticket_id).where(ticket_events.c.kind == BREACH_KIND,
                                                        _in(ticket_events.c.at, window))
    return or_(*(_in(column, window) for column in (
        tickets.c.created_at, tickets.c.resolved_at, tickets.c.csat_at, tickets.c.csat_requested_at,
        tickets.c.first_response_due, tickets.c.resolution_due)),
        tickets.c.status.in_(m.ACTIVE_STATUSES), tickets.c.id.in_(breached))


async def load_tickets(conn: AsyncConnection, window: m.Window) -> list[m.TicketRecord]:
    """The period's tickets as records, with their audit events (two queries, whatever the count)."""
    events: dict[int, list[tuple[str, datetime]]] = {}
    breach_log: dict[int, list[tuple[str, datetime]]] = {}
    rows = await conn.execute(
        select(ticket_events.c.ticket_id, ticket_events.c.kind, ticket_events.c.at, ticket_events.c.data)
        .join(tickets, tickets.c.id == ticket_events.c.ticket_id)
        .where(_relevant(window), ticket_events.c.kind.in_(_EVENT_KINDS))
        .order_by(ticket_events.c.ticket_id, ticket_events.c.id))
    for ticket_id, kind, at, data in rows:
        if kind != BREACH_KIND:
            events.setdefault(ticket_id, []).append((kind, at))
        elif (breach := _breach(data)) is not None:
            breach_log.setdefault(ticket_id, []).append(breach)
    rows = await conn.execute(
        select(tickets, conversations.c.channel.label("conversation_channel"), agents.c.team.label("team"))
        .select_from(tickets.join(conversations, conversations.c.id == tickets.c.conversation_id)
                     .outerjoin(agents, agents.c.id == tickets.c.assignee_id))
        .where(_relevant(window)).order_by(tickets.c.id))
    return [_record(row._mapping, tuple(events.get(row.id, ())), tuple(breach_log.get(row.id, ()))) for row in rows]


def _breach(data: Any) -> tuple[str, datetime] | None:
    """(clock, due) of an ``sla_breach`` audit row; None when its data is not what the scheduler writes."""
    data = _json(data)
    try:
        due = datetime.fromisoformat(data["due"])
    except (TypeError, KeyError, ValueError):
        return None
    return (str(data.get("clock")), due) if due.tzinfo is not None else None


def _record(row: RowMapping, events: tuple[tuple[str, datetime], ...],
            breach_log: tuple[tuple[str, datetime], ...]) -> m.TicketRecord:
    assignee = row["assignee_id"]
    return m.TicketRecord(
        id=row["id"], conversation_id=row["conversation_id"], status=row["status"], created_at=row["created_at"],
        channel=row["channel"] or row["conversation_channel"], reason=row["reason"], summary=row["summary"],
        priority=row["priority"], assignee_id=assignee,
        team=m.UNASSIGNED if assignee is None else row["team"] or UNKNOWN_TEAM,
        assigned_at=row["assigned_at"], first_responded_at=row["first_responded_at"],
        resolved_at=row["resolved_at"], reopened_count=row["reopened_count"], csat=row["csat"],
        csat_at=row["csat_at"], csat_requested_at=row["csat_requested_at"],
        first_response_due=row["first_response_due"], resolution_due=row["resolution_due"],
        sla_fired=tuple(str(v) for v in _json(row["sla_fired"]) or ()), events=events, breach_log=breach_log,
    )


def _json(value: Any) -> Any:
    # Decoded here, not with JSON operators in SQL (they differ between SQLite and PostgreSQL). The JSON
    # column type hands back Python values already; a string is a row some other writer double-encoded.
    return json.loads(value) if isinstance(value, str) else value


async def load_inbound(conn: AsyncConnection, window: m.Window) -> list[m.InboundRecord]:
    """Customer messages received in the period (three narrow columns per message)."""
    rows = await conn.execute(
        select(messages.c.conversation_id, messages.c.channel, messages.c.created_at)
        .where(messages.c.direction == "in", _in(messages.c.created_at, window)))
    return [m.InboundRecord(conversation_id, channel, at) for conversation_id, channel, at in rows]


async def load_agents(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(select(agents.c.id, agents.c.name, agents.c.team, agents.c.active).order_by(agents.c.id))
    return [dict(r._mapping) for r in rows]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


# --- Prometheus -------------------------------------------------------------------------------------


class _ReportCollector:
    """Yields one report's figures as gauge families (a fresh registry per render: no global state)."""

    def __init__(self, report: Mapping[str, Any]) -> None:
        self.report = report

    def collect(self) -> Iterator[Metric]:
        r = self.report
        period = m.Window(datetime.fromisoformat(r["period"]["start"]), datetime.fromisoformat(r["period"]["end"]))
        yield _gauge("huiliu_report_window_seconds", "Length of the rolling window the other figures cover",
                     [], [([], (period.end - period.start).total_seconds())])
        yield from _backlog(r["backlog"])
        blocks = {"all": r["overall"], **(r.get("groups", {}) if r.get("group") == "channel" else {})}
        yield _gauge("huiliu_tickets_created", "Tickets created in the window", ["channel"],
                     [([ch], b["tickets_created"]) for ch, b in blocks.items()])
        yield _gauge("huiliu_first_response_seconds", "Human first response time of tickets created in the window",
                     ["channel", "stat"], [([ch, stat], b["first_response"][stat]) for ch, b in blocks.items()
                                           for stat in ("mean", "median", "p90")])
        yield _gauge("huiliu_handle_time_seconds_mean", "Mean handle time of tickets resolved in the window",
                     ["channel"], [([ch], b["handle_time"]["mean"]) for ch, b in blocks.items()])
        yield _gauge("huiliu_fcr_ratio", "Share of tickets resolved in the window never reopened", ["channel"],
                     [([ch], b["fcr"]["rate"]) for ch, b in blocks.items()])
        yield _gauge("huiliu_csat_average", "Mean CSAT rating (1-5) given in the window", ["channel"],
                     [([ch], b["csat"]["mean"]) for ch, b in blocks.items()])
        yield _gauge("huiliu_csat_satisfied_ratio", "Share of CSAT ratings of 4 or 5", ["channel"],
                     [([ch], b["csat"]["satisfied_share"]) for ch, b in blocks.items()])
        yield _gauge("huiliu_csat_responses", "CSAT ratings given in the window", ["channel"],
                     [([ch], b["csat"]["count"]) for ch, b in blocks.items()])
        yield _gauge("huiliu_sla_attainment_ratio", "Share of tickets judged in the window that met both SLA clocks",
                     ["channel"], [([ch], b["sla"]["rate"]) for ch, b in blocks.items()])
        yield _gauge("huiliu_sla_breaches", "SLA breaches fired on tickets judged in the window", ["channel", "clock"],
                     [([ch, clock], n) for ch, b in blocks.items() for clock, n in b["sla"]["breaches"].items()])
        deflection = {"all": r["deflection"], **r["deflection"].get("by_channel", {})}
        yield _gauge("huiliu_bot_deflection_ratio", "Share of contacts in the window the bot handled without a ticket",
                     ["channel"], [([ch], d["rate"]) for ch, d in deflection.items()])
        yield _gauge("huiliu_conversations", "Conversations with customer messages in the window", ["channel"],
                     [([ch], d["conversations"]) for ch, d in deflection.items()])
        volume = r["volume_by_channel"]
        yield _gauge("huiliu_inbound_messages", "Customer messages received in the window", ["channel"],
                     [(["all"], sum(v["inbound_messages"] for v in volume.values()))]
                     + [([ch], v["inbound_messages"]) for ch, v in volume.items()])


def _backlog(b: Mapping[str, Any]) -> Iterator[Metric]:
    yield _gauge("huiliu_backlog_tickets", "Active tickets now, by priority and status", ["priority", "status"],
                 [([p, s], n) for p, row in b["by_priority_status"].items() for s, n in row.items()])
    yield _gauge("huiliu_waiting_tickets", "Active tickets waiting in the queue with nobody assigned", [],
                 [([], b["waiting"])])
    # 0 when nobody waits is the truth here (the oldest wait is no wait), unlike a mean of nothing.
    yield _gauge("huiliu_waiting_oldest_seconds", "Age of the longest-waiting unassigned ticket", [],
                 [([], b["oldest_waiting_seconds"] or 0.0)])
    yield _gauge("huiliu_overdue_tickets", "Active tickets past a due time with the clock still running", [],
                 [([], b["overdue"])])


def _gauge(name: str, documentation: str, labels: list[str],
           samples: Sequence[tuple[list[str], float | None]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for values, value in samples:
        if value is not None:
            family.add_metric(values, float(value))
    return family


def prometheus_text(report: Mapping[str, Any]) -> bytes:
    """``report`` (from ``build_report``) in the Prometheus text format; per-channel ticket figures need
    ``group="channel"``, deflection and volume are per channel regardless."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReportCollector(report))
    return generate_latest(registry)
