"""Table-driven and randomised tests of the routing rules (ticketing.routing)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ticketing.routing import (
    AgentView,
    Presence,
    TicketView,
    assign,
    claim_allowed,
    eligible,
    pick_agent,
    queue_order,
    reassign_on_offline,
)

NOW = datetime(2024, 11, 11, 10, 0, tzinfo=UTC)
ON, AWAY, OFF = Presence.ONLINE, Presence.AWAY, Presence.OFFLINE


def ago(minutes: int) -> datetime:
    return NOW - timedelta(minutes=minutes)


def agent(
    id: str,
    skills: str = "",
    *,
    max_concurrent: int = 3,
    presence: Presence = ON,
    load: int = 0,
    last: datetime | None = None,
) -> AgentView:
    return AgentView(id, frozenset(skills.split()), max_concurrent, presence, load, last)


def ticket(
    id: str, skills: str = "", *, priority: int = 2, due: datetime | None = None, created: datetime = NOW
) -> TicketView:
    return TicketView(id, frozenset(skills.split()), priority, due, created)


# --- eligibility ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent_view", "ticket_view", "expected"),
    [
        pytest.param(agent("a"), ticket("t"), True, id="online, free, no skills needed"),
        pytest.param(agent("a", presence=AWAY), ticket("t"), False, id="away"),
        pytest.param(agent("a", presence=OFF), ticket("t"), False, id="offline"),
        pytest.param(agent("a", load=2), ticket("t"), True, id="one slot left"),
        pytest.param(agent("a", load=3), ticket("t"), False, id="full"),
        pytest.param(agent("a", load=5), ticket("t"), False, id="over capacity"),
        pytest.param(agent("a", max_concurrent=0), ticket("t"), False, id="no capacity at all"),
        pytest.param(agent("a", "returns en"), ticket("t", "returns"), True, id="has the skill"),
        pytest.param(agent("a", "returns en"), ticket("t", "returns en"), True, id="has all skills"),
        pytest.param(agent("a", "returns"), ticket("t", "returns en"), False, id="missing one skill"),
        pytest.param(agent("a"), ticket("t", "jp"), False, id="no skills"),
    ],
)
def test_eligible(agent_view: AgentView, ticket_view: TicketView, expected: bool) -> None:
    assert eligible(agent_view, ticket_view) is expected


# --- picking one agent --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agents", "ticket_view", "expected"),
    [
        pytest.param([agent("a", load=2), agent("b", load=1)], ticket("t"), "b", id="least loaded"),
        pytest.param(
            [agent("a", load=1, max_concurrent=2), agent("b", load=2, max_concurrent=8)],
            ticket("t"),
            "b",
            id="ratio before absolute load",
        ),
        pytest.param(
            [agent("a", load=2, max_concurrent=4), agent("b", load=1, max_concurrent=2)],
            ticket("t"),
            "b",
            id="equal ratio, fewer tickets",
        ),
        pytest.param(
            [agent("a", "returns en jp", last=ago(60)), agent("b", "returns", last=ago(1))],
            ticket("t", "returns"),
            "b",
            id="best match before round-robin",
        ),
        pytest.param(
            [agent("a", "returns en jp"), agent("b", "returns", load=1)],
            ticket("t", "returns"),
            "a",
            id="load before best match",
        ),
        pytest.param(
            [agent("a", last=ago(1)), agent("b", last=ago(30)), agent("c", last=ago(5))],
            ticket("t"),
            "b",
            id="round-robin: longest since last assignment",
        ),
        pytest.param([agent("a", last=ago(30)), agent("b")], ticket("t"), "b", id="never assigned first"),
        pytest.param([agent("b"), agent("a")], ticket("t"), "a", id="id breaks full ties"),
        pytest.param(
            [agent("b", last=NOW), agent("a", last=NOW + timedelta(minutes=5))],
            ticket("t"),
            "a",
            id="future timestamp counts as now",
        ),
        pytest.param(
            [agent("a", load=3), agent("b", presence=AWAY), agent("c", "en", presence=ON)],
            ticket("t", "jp"),
            None,
            id="nobody eligible",
        ),
        pytest.param(
            [agent("a", "jp", presence=OFF), agent("b", "jp", load=2)],
            ticket("t", "jp"),
            "b",
            id="only eligible agents count",
        ),
        pytest.param([], ticket("t"), None, id="no agents"),
    ],
)
def test_pick_agent(agents: list[AgentView], ticket_view: TicketView, expected: str | None) -> None:
    assert pick_agent(ticket_view, agents, NOW) == expected
    assert pick_agent(ticket_view, reversed(agents), NOW) == expected  # input order never matters


# --- queue order ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tickets", "expected"),
    [
        pytest.param([ticket("a", priority=2), ticket("b", priority=0)], ["b", "a"], id="priority first"),
        pytest.param(
            [ticket("a", due=NOW + timedelta(hours=2)), ticket("b", due=NOW + timedelta(hours=1))],
            ["b", "a"],
            id="sooner SLA first",
        ),
        pytest.param([ticket("a"), ticket("b", due=NOW + timedelta(days=9))], ["b", "a"], id="no SLA goes last"),
        pytest.param([ticket("a", priority=1), ticket("b", priority=2, due=NOW)], ["a", "b"], id="priority beats SLA"),
        pytest.param([ticket("a", created=ago(1)), ticket("b", created=ago(9))], ["b", "a"], id="older first"),
        pytest.param([ticket("b"), ticket("a")], ["a", "b"], id="id breaks ties"),
    ],
)
def test_queue_order(tickets: list[TicketView], expected: list[str]) -> None:
    assert [t.id for t in queue_order(tickets)] == expected
    assert [t.id for t in queue_order(reversed(tickets))] == expected


# --- planning -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("queue", "agents", "expected"),
    [
        pytest.param(
            [ticket("t1"), ticket("t2"), ticket("t3")],
            [agent("a", max_concurrent=2), agent("b", max_concurrent=1)],
            [("t1", "a"), ("t2", "b"), ("t3", "a")],
            id="fills by load ratio",
        ),
        pytest.param(
            [ticket(f"t{i}") for i in range(1, 7)],
            [agent("a"), agent("b"), agent("c")],
            [("t1", "a"), ("t2", "b"), ("t3", "c"), ("t4", "a"), ("t5", "b"), ("t6", "c")],
            id="round-robin among equals",
        ),
        pytest.param(
            [ticket("t1"), ticket("t2"), ticket("t3")],
            [agent("a", max_concurrent=1), agent("b", max_concurrent=1)],
            [("t1", "a"), ("t2", "b")],
            id="capacity respected, rest stays queued",
        ),
        pytest.param(
            [ticket("t1", "jp", priority=0), ticket("t2", "returns", priority=3)],
            [agent("a", "returns")],
            [("t2", "a")],
            id="no head-of-line blocking across skill sets",
        ),
        pytest.param(
            [ticket("low", priority=3), ticket("high", "returns", priority=0)],
            [agent("a", "returns", max_concurrent=1)],
            [("high", "a")],
            id="no steal: higher priority takes the only agent",
        ),
        pytest.param(
            [ticket("low", "returns", priority=3, created=ago(90)), ticket("high", "returns", priority=1)],
            [agent("a", "returns", max_concurrent=1)],
            [("high", "a")],
            id="no steal: waiting longer does not beat priority",
        ),
        pytest.param(
            [ticket("easy", priority=1), ticket("rare", "jp", priority=1, created=ago(5))],
            [agent("generalist", "jp en returns", max_concurrent=1), agent("specialist", "en", max_concurrent=1)],
            [("rare", "generalist"), ("easy", "specialist")],
            id="older rare ticket keeps the generalist",
        ),
        pytest.param(
            [ticket("easy", priority=1, created=ago(5)), ticket("rare", "jp", priority=1)],
            [agent("generalist", "jp en", max_concurrent=2), agent("specialist", "en", max_concurrent=2)],
            [("easy", "specialist"), ("rare", "generalist")],
            id="best match keeps the generalist free",
        ),
        pytest.param(
            [ticket("t1", "vip"), ticket("t2")],
            [agent("a", "vip", presence=AWAY), agent("b", presence=OFF), agent("c", "vip", load=3)],
            [],
            id="nobody available",
        ),
        pytest.param(
            [ticket("t1"), ticket("t1")],
            [agent("a"), agent("b")],
            [("t1", "a")],
            id="duplicate ticket planned once",
        ),
        pytest.param([], [agent("a")], [], id="empty queue"),
    ],
)
def test_assign(queue: list[TicketView], agents: list[AgentView], expected: list[tuple[str, str]]) -> None:
    assert assign(queue, agents, NOW) == expected
    assert assign(reversed(queue), reversed(agents), NOW) == expected  # deterministic whatever the input order


def test_assign_rejects_duplicate_agents() -> None:
    with pytest.raises(ValueError, match="duplicate agent"):
        assign([ticket("t")], [agent("a"), agent("a", load=1)], NOW)


def test_assign_does_not_mutate_its_inputs() -> None:
    agents = [agent("a", max_concurrent=2)]
    queue = [ticket("t1"), ticket("t2")]
    assign(queue, agents, NOW)
    assert agents == [agent("a", max_concurrent=2)]
    assert queue == [ticket("t1"), ticket("t2")]


# --- claiming and requeueing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent_view", "ticket_view", "claimed_today", "cap", "expected"),
    [
        pytest.param(agent("a"), ticket("t"), 0, 5, True, id="first claim"),
        pytest.param(agent("a"), ticket("t"), 4, 5, True, id="last claim under cap"),
        pytest.param(agent("a"), ticket("t"), 5, 5, False, id="cap reached"),
        pytest.param(agent("a"), ticket("t"), 0, 0, False, id="claiming disabled"),
        pytest.param(agent("a", load=3), ticket("t"), 0, 5, False, id="at capacity"),
        pytest.param(agent("a", presence=AWAY), ticket("t"), 0, 5, False, id="away"),
        pytest.param(agent("a", "en"), ticket("t", "jp"), 0, 5, False, id="missing skill"),
    ],
)
def test_claim_allowed(
    agent_view: AgentView, ticket_view: TicketView, claimed_today: int, cap: int, expected: bool
) -> None:
    assert claim_allowed(agent_view, ticket_view, claimed_today, cap) is expected


@pytest.mark.parametrize(
    ("agents", "assignments", "expected"),
    [
        pytest.param(
            [agent("a"), agent("b", presence=OFF)],
            {"t1": "a", "t2": "b", "t3": "b"},
            ["t2", "t3"],
            id="offline agent's tickets",
        ),
        pytest.param([agent("a", presence=AWAY)], {"t1": "a"}, [], id="away keeps tickets"),
        pytest.param([agent("a")], {"t1": "gone", "t2": "a"}, ["t1"], id="unknown agent"),
        pytest.param([agent("a", presence=OFF)], {"t2": "a", "t1": "a"}, ["t2", "t1"], id="keeps caller's order"),
        pytest.param([], {}, [], id="nothing assigned"),
    ],
)
def test_reassign_on_offline(agents: list[AgentView], assignments: dict[str, str], expected: list[str]) -> None:
    assert reassign_on_offline(agents, assignments) == expected


# --- properties on random snapshots --------------------------------------------------------------------

SKILLS = ("returns", "invoice", "logistics", "en", "jp", "vip")


def _random_agents(rng: random.Random, count: int) -> list[AgentView]:
    agents = []
    for i in range(count):
        max_concurrent = rng.randrange(0, 5)
        agents.append(
            AgentView(
                id=f"a{i:03d}",
                skills=frozenset(rng.sample(SKILLS, rng.randrange(0, 4))),
                max_concurrent=max_concurrent,
                presence=rng.choices([ON, AWAY, OFF], weights=[6, 1, 1])[0],
                load=rng.randrange(0, max_concurrent + 2),  # sometimes over capacity (cap lowered meanwhile)
                last_assigned_at=rng.choice([None, NOW - timedelta(minutes=rng.randrange(0, 3)), NOW]),
            )
        )
    return agents


def _random_queue(rng: random.Random, count: int) -> list[TicketView]:
    return [
        TicketView(
            id=f"t{i:05d}",
            required_skills=frozenset(rng.sample(SKILLS, rng.choices([0, 1, 2], weights=[3, 4, 1])[0])),
            priority=rng.randrange(0, 4),
            sla_due_at=rng.choice([None, NOW + timedelta(minutes=rng.randrange(0, 60))]),
            created_at=NOW - timedelta(minutes=rng.randrange(0, 30)),
        )
        for i in range(count)
    ]


def _reference_assign(queue: Iterable[TicketView], agents: Sequence[AgentView], now: datetime) -> list[tuple[str, str]]:
    """The specification, spelled out slowly: pick_agent per ticket in queue order, updating loads."""
    views = {a.id: a for a in agents}
    plan, planned = [], set()
    for t in queue_order(queue):
        if t.id in planned:
            continue
        chosen = pick_agent(t, list(views.values()), now)
        if chosen is not None:
            views[chosen] = replace(views[chosen], load=views[chosen].load + 1, last_assigned_at=now)
            plan.append((t.id, chosen))
            planned.add(t.id)
    return plan


def test_assign_properties_on_random_snapshots() -> None:
    rng = random.Random(1111)
    for _ in range(300):
        agents = _random_agents(rng, rng.randrange(0, 12))
        queue = _random_queue(rng, rng.randrange(0, 40))
        plan = assign(queue, agents, NOW)

        ticket_ids = [t for t, _ in plan]
        assert len(ticket_ids) == len(set(ticket_ids)), "a ticket was assigned twice"

        # Replay the plan in order: every step is to an eligible agent, and no later (lower-priority)
        # ticket takes an agent that an earlier ticket left waiting could have used at that moment.
        views = {a.id: a for a in agents}
        tickets = {t.id: t for t in queue}
        order = [t.id for t in queue_order(queue)]
        waiting = [t for t in order if t not in set(ticket_ids)]
        for ticket_id, agent_id in plan:
            current = views[agent_id]
            assert eligible(current, tickets[ticket_id])
            for waiting_id in waiting:
                if order.index(waiting_id) < order.index(ticket_id):
                    assert not eligible(current, tickets[waiting_id]), f"{ticket_id} stole {agent_id}"
            views[agent_id] = replace(current, load=current.load + 1, last_assigned_at=NOW)

        for original in agents:  # capacity never exceeded
            taken = sum(1 for _, a in plan if a == original.id)
            assert taken == 0 or original.load + taken <= original.max_concurrent
        for waiting_id in waiting:  # nothing left waiting that someone could still take
            assert pick_agent(tickets[waiting_id], views.values(), NOW) is None

        assert plan == _reference_assign(queue, agents, NOW)
        shuffled_queue, shuffled_agents = queue[:], agents[:]
        rng.shuffle(shuffled_queue)
        rng.shuffle(shuffled_agents)
        assert assign(shuffled_queue, shuffled_agents, NOW) == plan


def test_assign_throughput_smoke() -> None:
    """200 agents, 10,000 queued tickets: completes (the benchmark reports the rate; no timing here)."""
    rng = random.Random(618)
    agents = [replace(a, max_concurrent=a.max_concurrent + 3, presence=ON) for a in _random_agents(rng, 200)]
    queue = _random_queue(rng, 10_000)
    plan = assign(queue, agents, NOW)
    assert 0 < len(plan) <= sum(max(0, a.max_concurrent - a.load) for a in agents)
    assert len({t for t, _ in plan}) == len(plan)
