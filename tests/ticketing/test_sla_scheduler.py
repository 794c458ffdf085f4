"""The SLA scheduler: table-driven planning with an injected clock, then real scans against Redis and
both databases -- exactly-once firing, concurrent schedulers, and timers surviving a process restart."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from tests_helpers import eventually

from gateway.db.schema import conversations, ticket_events, tickets
from gateway.keys import Keys
from gateway.models import Channel, ConversationEvent, EventKind
from ticketing.escalation import EscalationReason, escalate_in
from ticketing.lifecycle import TicketStatus
from ticketing.priority import Priority, Tier
from ticketing.sla import SlaPolicy
from ticketing.sla_scheduler import (
    AlertKind,
    SlaAction,
    SlaClock,
    SlaScheduler,
    SlaTicket,
    fired_key,
    plan_sla_actions,
)

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 11, 11, 2, 0, tzinfo=UTC)  # 双11, 10:00 in Beijing
M = timedelta(minutes=1)
POLICY = SlaPolicy.standard()  # P2 normal: first response 120 min, next response 120 min, resolution 24 h; warn 30 min
FR_DUE, RES_DUE = T0 + 120 * M, T0 + 24 * 60 * M
NR_DUE = T0 + 180 * M
NR_WARN, NR_BREACH = (fired_key(SlaClock.NEXT_RESPONSE, k, NR_DUE) for k in AlertKind)
FR_W, FR_B, RES_W, RES_B = "first_response:warning", "first_response:breach", "resolution:warning", "resolution:breach"

FR, NR, RES = SlaClock.FIRST_RESPONSE, SlaClock.NEXT_RESPONSE, SlaClock.RESOLUTION
WARN, BREACH = AlertKind.WARNING, AlertKind.BREACH


def at(minutes: float) -> datetime:
    return T0 + minutes * M


def sla_ticket(**changes: Any) -> SlaTicket:
    base = SlaTicket(priority=Priority.P2, tier=Tier.NORMAL, channel=Channel.WEBCHAT, status=TicketStatus.NEW,
                     first_response_due=FR_DUE, resolution_due=RES_DUE)
    return replace(base, **changes)


# --- planning (pure) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ticket", "now", "actions", "next_check", "fired", "priority"),
    [
        pytest.param(sla_ticket(), at(10), [], at(90), set(), 2, id="ok: next check is the warning"),
        pytest.param(sla_ticket(), at(90), [(FR, WARN, FR_DUE)], FR_DUE, {FR_W}, 2, id="warning at warn time"),
        pytest.param(sla_ticket(sla_fired=frozenset({FR_W})), at(100), [], FR_DUE, {FR_W}, 2,
                     id="warning already fired: wait for the breach"),
        pytest.param(sla_ticket(sla_fired=frozenset({FR_W})), at(120), [(FR, BREACH, FR_DUE)], at(24 * 60 - 30),
                     {FR_W, FR_B}, 1, id="breach at the due instant raises priority"),
        pytest.param(sla_ticket(), at(150), [(FR, BREACH, FR_DUE)], at(24 * 60 - 30), {FR_W, FR_B}, 1,
                     id="down across the warning window: breach only, both recorded"),
        pytest.param(sla_ticket(sla_fired=frozenset({FR_W, FR_B})), at(200), [], at(24 * 60 - 30), {FR_W, FR_B}, 2,
                     id="breach already fired"),
        pytest.param(sla_ticket(first_responded_at=at(60)), at(100), [], at(24 * 60 - 30), set(), 2,
                     id="met: first response clock stops"),
        pytest.param(sla_ticket(first_responded_at=at(130), sla_fired=frozenset({FR_W})), at(140), [],
                     at(24 * 60 - 30), {FR_W}, 2, id="met late: no stale breach"),
        pytest.param(sla_ticket(first_responded_at=at(130)), at(125), [(FR, BREACH, FR_DUE)], at(24 * 60 - 30),
                     {FR_W, FR_B}, 1, id="replaying history: a reply after now is not done yet"),
        pytest.param(sla_ticket(status=TicketStatus.RESOLVED, resolved_at=at(30)), at(200), [], None, set(), 2,
                     id="resolved: nothing, no more checks"),
        pytest.param(sla_ticket(status=TicketStatus.OPEN, first_responded_at=at(5), next_response_due=NR_DUE),
                     at(150), [(NR, WARN, NR_DUE)], NR_DUE, {NR_WARN}, 2, id="next response warning"),
        pytest.param(sla_ticket(status=TicketStatus.OPEN, first_responded_at=at(5), next_response_due=NR_DUE,
                                sla_fired=frozenset({NR_WARN})), at(180), [(NR, BREACH, NR_DUE)],
                     at(24 * 60 - 30), {NR_WARN, NR_BREACH}, 1, id="next response breach"),
        pytest.param(sla_ticket(status=TicketStatus.OPEN, first_responded_at=at(5), next_response_due=NR_DUE,
                                sla_fired=frozenset({fired_key(NR, WARN, at(60)), fired_key(NR, BREACH, at(60))})),
                     at(150), [(NR, WARN, NR_DUE)], NR_DUE, {NR_WARN},
                     2, id="a new next response clock warns again; answered clocks' keys are dropped"),
        pytest.param(sla_ticket(status=TicketStatus.OPEN, first_responded_at=at(5)), at(150), [], at(24 * 60 - 30),
                     set(), 2, id="no next response clock while nothing is unanswered"),
        pytest.param(sla_ticket(), at(24 * 60 + 5), [(FR, BREACH, FR_DUE), (RES, BREACH, RES_DUE)], None,
                     {FR_W, FR_B, RES_W, RES_B}, 0, id="down across everything: two breaches, two levels"),
        pytest.param(sla_ticket(sla_fired=frozenset({FR_W, FR_B, RES_W, RES_B})), at(24 * 60 + 5), [], None,
                     {FR_W, FR_B, RES_W, RES_B}, 2, id="nothing left to fire"),
        pytest.param(sla_ticket(priority=Priority.P0, first_response_due=at(10), resolution_due=at(240)), at(5),
                     [(FR, WARN, at(10))], at(10), {FR_W}, 0, id="short target: warning clamped to half of it"),
        pytest.param(sla_ticket(priority=Priority.P0, first_response_due=at(10), resolution_due=at(240),
                                sla_fired=frozenset({FR_W})), at(10), [(FR, BREACH, at(10))], at(210),
                     {FR_W, FR_B}, 0, id="P0 breach stays P0"),
        pytest.param(sla_ticket(first_response_due=None, resolution_due=None), at(10), [], None, set(), 2,
                     id="no due times: nothing to watch"),
    ],
)
def test_plan(ticket: SlaTicket, now: datetime, actions: list[tuple[SlaClock, AlertKind, datetime]],
              next_check: datetime | None, fired: set[str], priority: int) -> None:
    plan = plan_sla_actions(ticket, POLICY, now)
    assert list(plan.actions) == [SlaAction(*a) for a in actions]
    assert plan.next_check_at == next_check
    assert set(plan.fired) == fired
    assert plan.priority == priority
    assert plan.next_check_at is None or plan.next_check_at > now  # a scan never leaves work due behind it


def test_replanning_after_firing_fires_nothing_more() -> None:
    """Applying a plan and planning again at the same instant is a no-op (what makes scans idempotent)."""
    ticket = sla_ticket(status=TicketStatus.OPEN, first_responded_at=at(5), next_response_due=NR_DUE)
    for minutes in range(0, 26 * 60, 7):
        plan = plan_sla_actions(ticket, POLICY, at(minutes))
        ticket = replace(ticket, sla_fired=frozenset(plan.fired), priority=plan.priority)
        again = plan_sla_actions(ticket, POLICY, at(minutes))
        assert again.actions == () and again.fired == plan.fired


# --- scanning (real Redis and databases) ---------------------------------------------------------------


async def open_ticket(engine: AsyncEngine, key: str, **columns: Any) -> int:
    """An escalated web-chat ticket opened at T0 with the due times the intake stores."""
    async with engine.begin() as conn:
        await conn.execute(conversations.insert().values(
            id=f"webchat:{key}", channel="webchat", conversation_key=key, customer_external_id=key,
            state="bot", created_at=T0, updated_at=T0))
        esc = await escalate_in(conn, f"webchat:{key}", EscalationReason.ASKED_FOR_HUMAN, summary="人工", now=T0)
        await conn.execute(update(tickets).where(tickets.c.id == esc.ticket.id).values(**{
            "priority": 2, "tier": "normal", "channel": "webchat", "first_response_due": FR_DUE,
            "resolution_due": RES_DUE, "sla_next_check_at": at(90), **columns}))
    return esc.ticket.id


async def ticket_row(engine: AsyncEngine, ticket_id: int) -> dict[str, Any]:
    async with engine.connect() as conn:
        return dict((await conn.execute(select(tickets).where(tickets.c.id == ticket_id))).one()._mapping)


async def audit(engine: AsyncEngine, ticket_id: int | None = None) -> list[tuple[int, str, str, dict[str, Any]]]:
    query = select(ticket_events.c.ticket_id, ticket_events.c.actor, ticket_events.c.kind, ticket_events.c.data)
    if ticket_id is not None:
        query = query.where(ticket_events.c.ticket_id == ticket_id)
    async with engine.connect() as conn:
        return [(r[0], r[1], r[2], r[3]) for r in await conn.execute(query.order_by(ticket_events.c.id))]


async def sla_kinds(engine: AsyncEngine, ticket_id: int | None = None) -> list[str]:
    return [kind for _, _, kind, _ in await audit(engine, ticket_id) if kind != "escalated"]


async def standard() -> SlaPolicy:
    return POLICY


def scheduler(engine: AsyncEngine, redis: aioredis.Redis, keys: Keys, now: datetime = T0) -> SlaScheduler:
    return SlaScheduler(engine, redis, keys, lambda: now, standard)


async def test_warning_then_breach_fire_once_each(engine: AsyncEngine, redis: aioredis.Redis, keys: Keys) -> None:
    ticket_id = await open_ticket(engine, "c1")
    events: list[ConversationEvent] = []
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.events_channel())

    async def listen() -> None:
        while True:
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if msg is not None:
                events.append(ConversationEvent.model_validate_json(msg["data"]))

    listener = asyncio.create_task(listen())
    try:
        s = scheduler(engine, redis, keys)
        counts = [(r.warnings, r.breaches) for r in
                  [await s.scan_once(at(m)) for m in (10, 89, 90, 95, 119, 120, 121, 600, 24 * 60 - 30)]]
        assert counts == [(0, 0), (0, 0), (1, 0), (0, 0), (0, 0), (0, 1), (0, 0), (0, 0), (1, 0)]
        row = await ticket_row(engine, ticket_id)
        assert row["priority"] == 1
        assert row["priority_reasons"][-1] == {"code": "sla_breach", "text": "SLA breached: first_response"}
        assert set(row["sla_fired"]) == {FR_W, FR_B, RES_W}
        assert row["sla_next_check_at"] == RES_DUE
        log = await audit(engine, ticket_id)
        assert [(actor, kind) for _, actor, kind, _ in log] == [
            ("bot", "escalated"), ("system", "sla_warning"), ("system", "sla_breach"), ("system", "priority_raised"),
            ("system", "sla_warning")]
        assert log[1][3] == {"clock": "first_response", "due": FR_DUE.isoformat()}
        assert log[3][3] == {"clock": "first_response", "due": FR_DUE.isoformat(), "from": "P2", "to": "P1"}
        assert log[4][3] == {"clock": "resolution", "due": RES_DUE.isoformat()}

        entries: Any = await redis.xrange(keys.supervisor_alerts)
        alerts = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]
        assert [(a["kind"], a["clock"], a["priority"]) for a in alerts] == [
            ("sla_warning", "first_response", "2"), ("sla_breach", "first_response", "1"),
            ("sla_warning", "resolution", "1")]
        assert alerts[0] == {"kind": "sla_warning", "ticket_id": str(ticket_id), "clock": "first_response",
                             "due": FR_DUE.isoformat(), "priority": "2", "assignee_id": ""}

        await eventually(lambda: len(events) >= 3)
        assert [e.kind for e in events] == [EventKind.SLA_WARNING, EventKind.SLA_BREACHED, EventKind.SLA_WARNING]
        assert {e.conversation_id for e in events} == {"webchat:c1"}
        assert events[1].data == {"ticket_id": ticket_id, "assignee_id": None, "clock": "first_response",
                                  "due": FR_DUE.isoformat(), "priority": 1}
    finally:
        listener.cancel()
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_concurrent_schedulers_fire_each_event_once(engine: AsyncEngine, redis: aioredis.Redis,
                                                          keys: Keys) -> None:
    ids = [await open_ticket(engine, f"c{i}") for i in range(6)]
    # Two share the lock; two more use another key prefix, so only the compare-and-set stands between them.
    other = Keys(f"{keys.prefix}:b")
    schedulers = [scheduler(engine, redis, k) for k in (keys, keys, other, other)]
    for now in (at(90), at(120)):
        await asyncio.gather(*(s.scan_once(now) for s in schedulers))
    for ticket_id in ids:
        assert await sla_kinds(engine, ticket_id) == ["sla_warning", "sla_breach", "priority_raised"]
        assert (await ticket_row(engine, ticket_id))["priority"] == 1
    alerts = await redis.xlen(keys.supervisor_alerts) + await redis.xlen(other.supervisor_alerts)
    assert alerts == 2 * len(ids)


async def test_resolved_and_answered_tickets_fire_nothing(engine: AsyncEngine, redis: aioredis.Redis,
                                                          keys: Keys) -> None:
    resolved = await open_ticket(engine, "r", status="resolved", open_key=None, resolved_at=at(30))
    answered = await open_ticket(engine, "a", status="open", assignee_id="agent-1", first_responded_at=at(20))
    result = await scheduler(engine, redis, keys).scan_once(at(150))
    assert (result.warnings, result.breaches) == (0, 0)
    assert await sla_kinds(engine) == []
    assert await redis.xlen(keys.supervisor_alerts) == 0
    assert (await ticket_row(engine, resolved))["sla_next_check_at"] is None  # leaves the scan index for good
    assert (await ticket_row(engine, answered))["sla_next_check_at"] == at(24 * 60 - 30)


async def test_one_broken_ticket_does_not_stop_the_scan(engine: AsyncEngine, redis: aioredis.Redis,
                                                        keys: Keys) -> None:
    broken = await open_ticket(engine, "x", tier="gold")  # not a Tier: planning it raises
    fine = await open_ticket(engine, "y")
    result = await scheduler(engine, redis, keys).scan_once(at(90))
    assert (result.warnings, result.errors) == (1, 1)
    assert await sla_kinds(engine, fine) == ["sla_warning"]
    assert await sla_kinds(engine, broken) == []


async def test_a_held_lock_skips_the_scan(engine: AsyncEngine, redis: aioredis.Redis, keys: Keys) -> None:
    await open_ticket(engine, "c")
    await redis.set(keys.sla_scan_lock, b"someone-else", px=60_000)
    assert (await scheduler(engine, redis, keys).scan_once(at(90))).skipped
    assert await redis.get(keys.sla_scan_lock) == b"someone-else"  # not ours: left alone
    await redis.delete(keys.sla_scan_lock)
    assert (await scheduler(engine, redis, keys).scan_once(at(90))).warnings == 1


async def test_run_loop_fires_until_stopped(engine: AsyncEngine, redis: aioredis.Redis, keys: Keys) -> None:
    ticket_id = await open_ticket(engine, "c")
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler(engine, redis, keys, now=at(95)).run(stop, interval_s=0.05))
    await eventually(lambda: sla_kinds(engine, ticket_id))
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    assert await sla_kinds(engine, ticket_id) == ["sla_warning"]


# --- restart: timers are data ------------------------------------------------------------------------------


def cli_env(engine: AsyncEngine, redis_url: str | None, keys: Keys, tmp_path: Path) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "DATABASE_URL": engine.url.render_as_string(),
           "HUILIU_KEY_PREFIX": keys.prefix, "HUILIU_DATA_DIR": str(tmp_path / "cli-data"),
           "HUILIU_ADMIN_TOKEN": "x", "WEBCHAT_SECRET": "x", "TELEGRAM_MODE": "off", "RASA_URL": "off"}
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return env


async def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "gateway.cli", "sla", "scan", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


async def test_warning_fires_after_a_process_restart(engine: AsyncEngine, db_kind: str, redis: aioredis.Redis,
                                                     redis_url: str, keys: Keys, tmp_path: Path) -> None:
    if db_kind != "sqlite":
        pytest.skip("the subprocess reaches the database by URL; the PostgreSQL fixture pins a schema by setting")
    ticket_id = await open_ticket(engine, "restart")
    assert (await scheduler(engine, redis, keys).scan_once(at(60))).warnings == 0  # this process: too early
    assert await sla_kinds(engine, ticket_id) == []

    # A brand-new process that knows nothing but the database and Redis fires the stored timer.
    env = cli_env(engine, redis_url, keys, tmp_path)
    first = await run_cli(env, "--at", at(95).isoformat())
    assert first.returncode == 0, first.stderr
    assert "预警 1 条" in first.stdout and "1 warnings" in first.stdout
    assert await sla_kinds(engine, ticket_id) == ["sla_warning"]

    again = await run_cli(env, "--at", at(100).isoformat())
    assert again.returncode == 0, again.stderr
    assert "预警 0 条" in again.stdout
    assert await sla_kinds(engine, ticket_id) == ["sla_warning"]
    assert await redis.xlen(keys.supervisor_alerts) == 1


async def test_cli_needs_redis_url(engine: AsyncEngine, db_kind: str, keys: Keys, tmp_path: Path) -> None:
    if db_kind != "sqlite":
        pytest.skip("database-independent")
    done = await run_cli(cli_env(engine, None, keys, tmp_path))
    assert done.returncode == 2
    assert "REDIS_URL" in done.stderr
    assert not (tmp_path / "cli-data").exists()  # no embedded Redis (nor anything else) was started
