"""The dispatcher on real Redis and both databases: planning, claiming, offline reassignment, the
run loop, and concurrent planners + claims that must never assign a ticket twice or starve one."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from tests_helpers import eventually

from gateway.db.conversations import insert_inbound
from gateway.db.engine import make_engine
from gateway.db.schema import conversations, ticket_events, tickets
from gateway.keys import Keys
from gateway.models import Channel, CustomerRef, InboundMessage
from ticketing.agents import AgentDirectory
from ticketing.claims import CLAIM_HTTP_STATUS, ClaimRejected, claim_day_start
from ticketing.dispatcher import Dispatcher
from ticketing.escalation import EscalationReason, escalate_in
from ticketing.live import kick_router
from ticketing.presence import PresenceBoard
from ticketing.routing import Presence
from ticketing.ticket_rows import assign_in

NOW = datetime(2024, 6, 1, 4, 0, tzinfo=UTC)  # 12:00 China time


def clock() -> datetime:
    return NOW


@pytest.fixture
def directory(engine: AsyncEngine) -> AgentDirectory:
    return AgentDirectory(engine, clock=clock)


@pytest.fixture
def board(redis: aioredis.Redis, keys: Keys) -> PresenceBoard:
    return PresenceBoard(redis, keys, ttl_s=60, clock=clock)


@pytest.fixture
def dispatcher(engine: AsyncEngine, redis: aioredis.Redis, keys: Keys, board: PresenceBoard) -> Dispatcher:
    return Dispatcher(engine, redis, keys, board, clock, claim_cap_per_day=2, interval_s=30.0, lock_wait_s=60.0)


@pytest.fixture
async def live_events(redis: aioredis.Redis, keys: Keys) -> AsyncIterator[PubSub]:
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.events_channel())
    await pubsub.get_message(timeout=1.0)
    yield pubsub
    await pubsub.aclose()  # type: ignore[no-untyped-call]


_counter = iter(range(10**9))


async def make_ticket(engine: AsyncEngine, *, skills: Iterable[str] = (), priority: int = 2,
                      due: datetime | None = None, created: datetime = NOW) -> int:
    """A conversation that escalated, with the priority/skills/SLA the intake would have planned."""
    n = next(_counter)
    msg = InboundMessage.build(channel=Channel.WEBCHAT, external_message_id=f"m{n}", conversation_key=f"v{n}",
                               customer=CustomerRef(channel=Channel.WEBCHAT, external_id=f"c{n}"),
                               text="转人工", sent_at=created)
    async with engine.begin() as conn:
        await insert_inbound(conn, msg)
        escalation = await escalate_in(conn, msg.conversation_id, EscalationReason.ASKED_FOR_HUMAN,
                                       summary="customer asked for a human", now=created)
        ticket_id = escalation.ticket.id
        await conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(
            priority=priority, skills=sorted(skills), first_response_due=due))
    return ticket_id


async def agent(directory: AgentDirectory, board: PresenceBoard, agent_id: str, skills: Iterable[str],
                capacity: int = 5, presence: Presence = Presence.ONLINE) -> None:
    await directory.create(agent_id, agent_id.title(), list(skills), capacity)
    if presence is not Presence.OFFLINE:
        await board.heartbeat(agent_id, presence)


async def ticket(engine: AsyncEngine, ticket_id: int) -> dict[str, Any]:
    async with engine.connect() as conn:
        return dict((await conn.execute(select(tickets).where(tickets.c.id == ticket_id))).one()._mapping)


async def audit(engine: AsyncEngine, ticket_id: int) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(ticket_events).where(ticket_events.c.ticket_id == ticket_id)
                                  .order_by(ticket_events.c.id))
        return [dict(r._mapping) for r in rows]


async def give(engine: AsyncEngine, ticket_id: int, agent_id: str, *, at: datetime = NOW) -> None:
    """Pre-existing work: a supervisor assigned the ticket earlier."""
    async with engine.begin() as conn:
        await assign_in(conn, ticket_id, agent_id, actor="supervisor", now=at)


# --- planning ------------------------------------------------------------------------------------


async def test_the_agent_with_the_right_skill_gets_the_ticket(
        engine: AsyncEngine, directory: AgentDirectory, board: PresenceBoard, dispatcher: Dispatcher,
        live_events: PubSub) -> None:
    await agent(directory, board, "ret", ["returns"])
    await agent(directory, board, "log", ["logistics"])
    returns = await make_ticket(engine, skills=["returns"])
    logistics = await make_ticket(engine, skills=["logistics"])

    assert sorted(await dispatcher.plan_and_assign()) == [(returns, "ret"), (logistics, "log")]
    row = await ticket(engine, returns)
    assert (row["status"], row["assignee_id"], row["assigned_at"]) == ("assigned", "ret", NOW)
    [_, assigned] = await audit(engine, returns)
    assert (assigned["kind"], assigned["actor"], assigned["data"]["agent_id"]) == ("assign", "router", "ret")
    async with engine.connect() as conn:
        state = await conn.scalar(select(conversations.c.state).where(conversations.c.id == row["conversation_id"]))
    assert state == "agent"

    seen: list[dict[str, Any]] = []
    while len(seen) < 2 and (msg := await live_events.get_message(ignore_subscribe_messages=True, timeout=2)):
        seen.append(json.loads(msg["data"]))
    assert {(e["kind"], e["data"]["ticket_id"], e["data"]["assignee_id"]) for e in seen} == {
        ("ticket_assigned", returns, "ret"), ("ticket_assigned", logistics, "log")}
    assert next(e for e in seen if e["data"]["ticket_id"] == returns)["data"]["skills"] == ["returns"]

    assert await dispatcher.plan_and_assign() == []  # nothing left


async def test_least_loaded_first_and_round_robin_among_equals(
        engine: AsyncEngine, directory: AgentDirectory, board: PresenceBoard, dispatcher: Dispatcher) -> None:
    await agent(directory, board, "busy", ["returns"])
    await agent(directory, board, "idle", ["returns"])
    await agent(directory, board, "away", ["returns"], presence=Presence.AWAY)  # keeps tickets, gets none
    for _ in range(2):
        await give(engine, await make_ticket(engine, skills=["returns"]), "busy")
    fresh = await make_ticket(engine, skills=["returns"])
    assert await dispatcher.plan_and_assign() == [(fresh, "idle")]

    # Equal load (0 each, after resolving), but "rr1" was assigned more recently: "rr2" goes first.
    await agent(directory, board, "rr1", ["invoices"])
    await agent(directory, board, "rr2", ["invoices"])
    done = await make_ticket(engine, skills=["invoices"])
    await give(engine, done, "rr1", at=NOW - timedelta(hours=1))
    async with engine.begin() as conn:
        await conn.execute(update(tickets).where(tickets.c.id == done).values(status="resolved", open_key=None))
    nxt = await make_ticket(engine, skills=["invoices"])
    assert await dispatcher.plan_and_assign() == [(nxt, "rr2")]


async def test_vip_and_language_skills(
        engine: AsyncEngine, directory: AgentDirectory, board: PresenceBoard, dispatcher: Dispatcher) -> None:
    await agent(directory, board, "generalist", ["returns", "logistics"], capacity=10)
    await agent(directory, board, "vipdesk", ["vip", "returns"], capacity=10)
    await agent(directory, board, "english", ["lang:en", "logistics"], capacity=10)
    for _ in range(3):  # the VIP desk is the busiest, yet the only one who may take VIP tickets
        await give(engine, await make_ticket(engine, skills=["returns"]), "vipdesk")
    vip = await make_ticket(engine, skills=["vip", "returns"], priority=0)
    english = await make_ticket(engine, skills=["lang:en", "logistics"])
    plain = await make_ticket(engine, skills=["returns"])
    assert sorted(await dispatcher.plan_and_assign()) == sorted(
        [(vip, "vipdesk"), (english, "english"), (plain, "generalist")])


async def test_a_skill_nobody_holds_is_relaxed(
        engine: AsyncEngine, directory: AgentDirectory, board: PresenceBoard, dispatcher: Dispatcher) -> None:
    await agent(directory, board, "inv", ["invoices"])
    await agent(directory, board, "log", ["logistics"])
    french = await make_ticket(engine, skills=["invoices", "lang:fr"])
    assert await dispatcher.plan_and_assign() == [(french, "inv")]
    assert (await ticket(engine, french))["skills"] == ["invoices", "lang:fr"]  # kept for reporting


async def test_no_eligible_agent_waits_until_the_run_loop_is_kicked(
        engine: AsyncEngine, redis: aioredis.Redis, keys: Keys, directory: AgentDirectory,
        board: PresenceBoard, dispatcher: Dispatcher) -> None:
    await agent(directory, board, "nina", ["appliances"], capacity=1, presence=Presence.OFFLINE)
    await agent(directory, board, "log", ["logistics"])
    urgent = await make_ticket(engine, skills=["appliances"], priority=0)
    later = await make_ticket(engine, skills=["appliances"], priority=3)
    assert await dispatcher.plan_and_assign() == []
    assert (await ticket(engine, urgent))["status"] == "new"

    stop = asyncio.Event()
    loop_task = asyncio.create_task(dispatcher.run(stop))  # timer 30 s: only kicks make it plan here
    try:
        await eventually(lambda: _subscribed(redis, keys))
        await board.heartbeat("nina")  # comes online
        await kick_router(redis, keys)
        await eventually(lambda: _assignee(engine, urgent, "nina"))
        assert (await ticket(engine, later))["status"] == "new"  # she has one slot, P0 went first

        async with engine.begin() as conn:  # she resolves it; the service kicks the router
            await conn.execute(update(tickets).where(tickets.c.id == urgent).values(status="resolved", open_key=None))
        await kick_router(redis, keys)
        await eventually(lambda: _assignee(engine, later, "nina"))
    finally:
        stop.set()
        await asyncio.wait_for(loop_task, 10)


async def _subscribed(redis: aioredis.Redis, keys: Keys) -> bool:
    [(_, count)] = await redis.pubsub_numsub(keys.routing_kick)
    return bool(count)


async def _assignee(engine: AsyncEngine, ticket_id: int, agent_id: str) -> bool:
    return bool((await ticket(engine, ticket_id))["assignee_id"] == agent_id)


async def test_the_run_loop_survives_database_errors(
        engine: AsyncEngine, redis: aioredis.Redis, keys: Keys, directory: AgentDirectory, board: PresenceBoard,
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    await agent(directory, board, "li", ["returns"])
    waiting = await make_ticket(engine, skills=["returns"])
    broken = make_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")  # cannot even connect
    dispatcher = Dispatcher(broken, redis, keys, board, clock, interval_s=0.2)
    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="ticketing.dispatcher"):
        loop_task = asyncio.create_task(dispatcher.run(stop))
        try:
            await eventually(lambda: "dispatcher round failed" in caplog.text)
            dispatcher.engine = engine  # the database is back
            await eventually(lambda: _assignee(engine, waiting, "li"))
        finally:
            stop.set()
            await asyncio.wait_for(loop_task, 15)
            await broken.dispose()


# --- claiming ------------------------------------------------------------------------------------


async def _reason(dispatcher: Dispatcher, agent_id: str, ticket_id: int) -> str:
    with pytest.raises(ClaimRejected) as rejected:
        await dispatcher.claim(agent_id, ticket_id)
    return rejected.value.reason


async def test_claims(engine: AsyncEngine, directory: AgentDirectory, board: PresenceBoard,
                      dispatcher: Dispatcher, live_events: PubSub) -> None:
    await agent(directory, board, "li", ["returns"], capacity=5)
    await agent(directory, board, "wang", ["returns"], presence=Presence.OFFLINE)
    await agent(directory, board, "zhao", ["returns"], presence=Presence.AWAY)
    await agent(directory, board, "full", ["returns"], capacity=0)
    await agent(directory, board, "vipdesk", ["vip"], presence=Presence.OFFLINE)  # so "vip" is a held skill
    t1, t2, t3 = [await make_ticket(engine, skills=["returns"]) for _ in range(3)]
    vip = await make_ticket(engine, skills=["vip"])
    exotic = await make_ticket(engine, skills=["returns", "lang:fr"])  # nobody holds lang:fr: relaxed

    row = await dispatcher.claim("li", t1)
    assert (row["id"], row["status"], row["assignee_id"]) == (t1, "assigned", "li")
    [_, claimed] = await audit(engine, t1)
    assert (claimed["kind"], claimed["actor"], claimed["data"]["agent_id"]) == ("claim", "li", "li")
    event = json.loads((await live_events.get_message(ignore_subscribe_messages=True, timeout=2))["data"])
    assert (event["kind"], event["data"]["ticket_id"], event["data"]["assignee_id"]) == ("ticket_assigned", t1, "li")

    reasons = {
        "taken": await _reason(dispatcher, "li", t1),
        "not_found": await _reason(dispatcher, "li", 999_999),
        "missing_skills": await _reason(dispatcher, "li", vip),
        "offline": await _reason(dispatcher, "wang", t2),
        "offline (away)": await _reason(dispatcher, "zhao", t2),
        "no_capacity": await _reason(dispatcher, "full", t2),
        "unknown agent": await _reason(dispatcher, "ghost", t2),
    }
    assert reasons == {"taken": "taken", "not_found": "not_found", "missing_skills": "missing_skills",
                       "offline": "offline", "offline (away)": "offline", "no_capacity": "no_capacity",
                       "unknown agent": "not_found"}

    assert (await dispatcher.claim("li", exotic))["assignee_id"] == "li"
    assert await _reason(dispatcher, "li", t2) == "cap_reached"  # 2 claims a day
    assert (await ticket(engine, t2))["status"] == "new"
    assert set(CLAIM_HTTP_STATUS) >= {*reasons.values(), "cap_reached"}

    await directory.update("li", active=False)
    await directory.create("li2", "Li Two", ["returns"], 5)
    await board.heartbeat("li2")
    await directory.update("li2", active=False)
    assert await _reason(dispatcher, "li2", t3) == "offline"  # deactivated


async def test_the_claim_cap_resets_at_midnight_china_time(
        engine: AsyncEngine, redis: aioredis.Redis, keys: Keys, directory: AgentDirectory,
        board: PresenceBoard) -> None:
    now = [datetime(2024, 6, 1, 15, 59, tzinfo=UTC)]  # 23:59 in China
    dispatcher = Dispatcher(engine, redis, keys, board, lambda: now[0], claim_cap_per_day=1)
    await agent(directory, board, "li", ["returns"])
    first, second = [await make_ticket(engine, skills=["returns"]) for _ in range(2)]
    await dispatcher.claim("li", first)
    assert await _reason(dispatcher, "li", second) == "cap_reached"
    now[0] = datetime(2024, 6, 1, 16, 0, tzinfo=UTC)  # 00:00 the next day in China
    assert (await dispatcher.claim("li", second))["assignee_id"] == "li"


@pytest.mark.parametrize(("now", "start"), [
    (datetime(2024, 6, 1, 4, 0, tzinfo=UTC), datetime(2024, 5, 31, 16, 0, tzinfo=UTC)),
    (datetime(2024, 6, 1, 15, 59, 59, tzinfo=UTC), datetime(2024, 5, 31, 16, 0, tzinfo=UTC)),
    (datetime(2024, 6, 1, 16, 0, tzinfo=UTC), datetime(2024, 6, 1, 16, 0, tzinfo=UTC)),
    (datetime(2024, 12, 31, 23, 0, tzinfo=UTC), datetime(2024, 12, 31, 16, 0, tzinfo=UTC)),
])
def test_claim_day_start(now: datetime, start: datetime) -> None:
    assert claim_day_start(now) == start


# --- offline agents --------------------------------------------------------------------------------


async def test_tickets_move_off_offline_agents(
        engine: AsyncEngine, directory: AgentDirectory, board: PresenceBoard, dispatcher: Dispatcher) -> None:
    await agent(directory, board, "a", ["returns"])
    await agent(directory, board, "b", ["returns"], presence=Presence.OFFLINE)
    await agent(directory, board, "resting", ["returns"], presence=Presence.AWAY)
    await agent(directory, board, "gone", ["returns"])
    moving = await make_ticket(engine, skills=["returns"])
    assert await dispatcher.plan_and_assign() == [(moving, "a")]
    async with engine.begin() as conn:  # "a" already replied: the ticket is open
        await conn.execute(update(tickets).where(tickets.c.id == moving).values(status="open"))
    kept = await make_ticket(engine, skills=["returns"])
    await give(engine, kept, "resting")
    orphan = await make_ticket(engine, skills=["returns"])
    await give(engine, orphan, "gone")
    await directory.update("gone", active=False)  # deactivated agents lose their tickets too

    await board.go_offline("a")
    await board.heartbeat("b")
    assert sorted(await dispatcher.reassign_offline()) == sorted([moving, orphan])
    assert (await ticket(engine, moving))["status"] == "new"
    assert sorted(await dispatcher.plan_and_assign()) == sorted([(moving, "b"), (orphan, "b")])

    assert (await ticket(engine, kept))["assignee_id"] == "resting"  # away keeps its tickets
    events = await audit(engine, moving)
    assert [(e["kind"], e["actor"]) for e in events] == [
        ("escalated", "bot"), ("assign", "router"), ("unassign", "router"), ("assign", "router")]
    assert events[2]["data"]["why"] == "agent_offline" and events[2]["data"]["previous_agent_id"] == "a"
    assert events[3]["data"]["agent_id"] == "b"
    assert await dispatcher.tick() == []  # stable once everyone holding tickets is present


async def test_the_run_loop_moves_tickets_when_an_agent_signs_out(
        engine: AsyncEngine, redis: aioredis.Redis, keys: Keys, directory: AgentDirectory,
        board: PresenceBoard) -> None:
    await agent(directory, board, "day", ["returns"])
    await agent(directory, board, "night", ["returns"], presence=Presence.AWAY)
    held = await make_ticket(engine, skills=["returns"])
    await give(engine, held, "day")
    dispatcher = Dispatcher(engine, redis, keys, board, clock, interval_s=30.0, reassign_warmup_s=0)
    stop = asyncio.Event()
    loop_task = asyncio.create_task(dispatcher.run(stop))
    try:
        await eventually(lambda: _subscribed(redis, keys))
        await board.heartbeat("night")  # online now (kicks the router)
        await board.go_offline("day")  # kicks the router too
        await eventually(lambda: _assignee(engine, held, "night"))
    finally:
        stop.set()
        await asyncio.wait_for(loop_task, 10)
    assert [e["kind"] for e in await audit(engine, held)] == ["escalated", "assign", "unassign", "assign"]


# --- the integration test ------------------------------------------------------------------------

SKILL_SETS: list[tuple[str, ...]] = [(), ("logistics",), ("returns",), ("invoices",), ("appliances",),
                                     ("vip", "returns"), ("lang:en", "logistics")]
TEAM: dict[str, tuple[str, ...]] = {
    "a1": ("logistics", "returns"),
    "a2": ("logistics", "invoices"),
    "a3": ("returns", "appliances", "vip"),
    "a4": ("logistics", "returns", "invoices", "appliances", "lang:en"),
    "a5": ("vip", "logistics", "returns", "lang:en"),
    "a6": ("appliances", "invoices", "returns"),
}
CAPACITY = 12  # 6 x 12 = 72 slots for 60 tickets
CLAIM_CAP = 3


async def test_concurrent_planners_and_claims_never_double_assign_nor_starve(
        engine: AsyncEngine, redis: aioredis.Redis, keys: Keys, directory: AgentDirectory,
        board: PresenceBoard) -> None:
    rng = random.Random(20241111)
    for agent_id, skills in TEAM.items():
        await agent(directory, board, agent_id, skills, capacity=CAPACITY)
    dispatchers = [Dispatcher(engine, redis, keys, board, clock, claim_cap_per_day=CLAIM_CAP, lock_wait_s=120.0)
                   for _ in range(3)]  # three replicas
    all_tickets: dict[int, tuple[str, ...]] = {}
    claim_outcomes: Counter[str] = Counter()

    for _round in range(3):
        batch: dict[int, tuple[str, ...]] = {}
        for _ in range(20):
            skills = rng.choice(SKILL_SETS)
            due = None if rng.random() < 0.2 else NOW + timedelta(minutes=rng.randint(5, 600))
            batch[await make_ticket(engine, skills=skills, priority=rng.randint(0, 3), due=due)] = skills
        all_tickets.update(batch)

        attempts: list[tuple[str, int]] = []
        for i in range(20):
            agent_id = rng.choice(list(TEAM))
            fitting = [t for t, s in batch.items() if set(s) <= set(TEAM[agent_id])]
            attempts.append((agent_id, rng.choice(fitting if i % 4 and fitting else list(batch))))

        async def claim(agent_id: str, ticket_id: int, d: Dispatcher) -> tuple[int, str] | str:
            try:
                await d.claim(agent_id, ticket_id)
                return ticket_id, agent_id
            except ClaimRejected as rejected:
                return rejected.reason

        async def staggered(job: Coroutine[Any, Any, Any], delay: float) -> Any:
            await asyncio.sleep(delay)  # spreads the starts so claims and plans interleave
            return await job

        jobs: list[Coroutine[Any, Any, Any]] = [claim(a, t, dispatchers[i % 3]) for i, (a, t) in enumerate(attempts)]
        jobs += [d.plan_and_assign() for d in dispatchers]
        results = await asyncio.gather(*(staggered(job, rng.uniform(0, 0.03)) for job in jobs))

        applied: list[tuple[int, str]] = []
        for result in results:
            if isinstance(result, str):
                claim_outcomes[result] += 1
            elif isinstance(result, tuple):
                claim_outcomes["ok"] += 1
                applied.append(result)
            else:
                applied.extend(result)
        assigned_ids = [t for t, _ in applied]
        assert sorted(assigned_ids) == sorted(batch)  # each ticket of the round applied exactly once

    assert claim_outcomes["ok"] >= 1 and claim_outcomes["taken"] >= 1, claim_outcomes
    assert set(claim_outcomes) <= {"ok", *CLAIM_HTTP_STATUS}

    async with engine.connect() as conn:
        rows = {r.id: r for r in await conn.execute(select(tickets.c.id, tickets.c.status, tickets.c.assignee_id))}
        assigns: dict[int, int] = dict((await conn.execute(
            select(ticket_events.c.ticket_id, func.count()).where(ticket_events.c.kind.in_(["assign", "claim"]))
            .group_by(ticket_events.c.ticket_id))).all())
        claims_by: dict[str, int] = dict((await conn.execute(
            select(ticket_events.c.actor, func.count()).where(ticket_events.c.kind == "claim")
            .group_by(ticket_events.c.actor))).all())
    assert set(rows) == set(all_tickets)
    assert all(r.status == "assigned" and r.assignee_id in TEAM for r in rows.values())  # none starved
    assert assigns == dict.fromkeys(all_tickets, 1)  # exactly one assign/claim audit row each
    load = Counter(r.assignee_id for r in rows.values())
    assert max(load.values()) <= CAPACITY, load
    assert all(set(all_tickets[t]) <= set(TEAM[r.assignee_id]) for t, r in rows.items())  # skills respected
    assert all(count <= CLAIM_CAP for count in claims_by.values()), claims_by


async def test_claim_mode_leaves_the_queue_to_the_agents(
        engine: AsyncEngine, redis: aioredis.Redis, keys: Keys, directory: AgentDirectory,
        board: PresenceBoard) -> None:
    """ROUTING_MODE=claim (抢单): nothing is pushed; agents claim; offline agents still lose theirs."""
    manual = Dispatcher(engine, redis, keys, board, clock, claim_cap_per_day=2, interval_s=30.0,
                        lock_wait_s=60.0, auto_assign=False)
    await agent(directory, board, "a", ["returns"])
    waiting = await make_ticket(engine, skills=["returns"])
    assert await manual.tick() == []
    assert (await ticket(engine, waiting))["assignee_id"] is None
    await manual.claim("a", waiting)
    assert (await ticket(engine, waiting))["assignee_id"] == "a"
    await board.go_offline("a")
    assert await manual.tick() == []
    assert (await ticket(engine, waiting))["status"] == "new"  # back in the queue for someone to claim
