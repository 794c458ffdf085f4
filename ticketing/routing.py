"""Routing: which queued ticket goes to which agent -- pure functions over snapshots.

The service around these loads agent and ticket snapshots, calls ``assign`` and stores the plan
(compare-and-set on the ticket, so a ticket claimed by hand meanwhile is simply skipped).

**Eligibility** (``eligible``): the agent is online (``away`` agents keep their tickets but get no
new ones), has spare capacity (``load < max_concurrent``) and holds *all* the ticket's skills.

**Agent order** (``pick_agent``), first difference wins:

1. load ratio ``load / max_concurrent``, lowest first -- spreads work fairly between a trainee with
   2 slots and a senior with 8 (compared exactly, as fractions, so ties are real ties);
2. absolute load, lowest first -- between equal ratios, the agent with fewer open conversations;
3. skill surplus, smallest first ("best match") -- among equally loaded agents, the one whose skills
   exceed the ticket's needs the least, so generalists stay free for tickets only they can take.
   It comes *after* load on purpose: specialisation must never overload a specialist while a
   generalist idles;
4. round-robin: least recently assigned first, never-assigned before everyone (a timestamp from a
   skewed clock later than ``now`` counts as ``now``);
5. agent id, so the same snapshot always yields the same answer on every replica.

**Queue order** (``queue_order``): priority (P0 first), then SLA due (soonest first, tickets without
a due time last), then creation time, then ticket id.

**Planning** (``assign``): walks the queue in that order and gives each ticket the agent
``pick_agent`` would choose, updating the chosen agent's load (and last-assigned time, to ``now``)
before the next ticket. A ticket nobody can take stays queued and the walk goes on, so a ticket
needing other skills behind it is still served (no head-of-line blocking across skill sets). A
later ticket can never take an agent an earlier waiting ticket could use: the earlier ticket had
its turn first and found no eligible agent, and loads only grow during a plan, so every agent it
could not use then it cannot use afterwards either. ``assign(q, a, now)`` is by construction exactly
"repeatedly ``pick_agent``", only faster: per distinct skill set it keeps a heap of candidate
agents, so the cost is about O(tickets * log agents + assignments * skill sets) rather than
O(tickets * agents).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from fractions import Fraction

TicketId = str
AgentId = str

_NEVER = datetime.min.replace(tzinfo=UTC)  # sorts before every real assignment time


class Presence(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class AgentView:
    """An agent as routing sees them at one instant."""

    id: AgentId
    skills: frozenset[str]
    max_concurrent: int
    presence: Presence
    load: int  # open tickets assigned to the agent
    last_assigned_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.max_concurrent < 0 or self.load < 0:
            raise ValueError("max_concurrent and load must not be negative")


@dataclass(frozen=True, slots=True)
class TicketView:
    """A queued ticket as routing sees it."""

    id: TicketId
    required_skills: frozenset[str]
    priority: int  # a ticketing.priority.Priority; 0 is the most urgent
    sla_due_at: datetime | None
    created_at: datetime


def has_capacity(agent: AgentView) -> bool:
    """Online with a free slot: could take *some* ticket now."""
    return agent.presence is Presence.ONLINE and agent.load < agent.max_concurrent


def eligible(agent: AgentView, ticket: TicketView) -> bool:
    """Online, spare capacity, and every required skill."""
    return has_capacity(agent) and ticket.required_skills <= agent.skills


_Rank = tuple[Fraction, int, int, datetime, AgentId]


def _rank(agent: AgentView, now: datetime) -> _Rank:
    """Sort key of an eligible agent (module docstring, "Agent order").

    The skill surplus ``len(skills - required)`` equals ``len(skills) - len(required)`` for every
    agent holding all required skills, so ranking by ``len(skills)`` orders them identically and makes
    the key independent of the ticket -- which is what lets ``assign`` share one heap per skill set.
    """
    last = _NEVER if agent.last_assigned_at is None else min(agent.last_assigned_at, now)
    return Fraction(agent.load, agent.max_concurrent), agent.load, len(agent.skills), last, agent.id


def pick_agent(ticket: TicketView, agents: Iterable[AgentView], now: datetime) -> AgentId | None:
    """The best eligible agent's id, or None when nobody can take the ticket now."""
    best = min((a for a in agents if eligible(a, ticket)), key=lambda a: _rank(a, now), default=None)
    return None if best is None else best.id


def _queue_key(ticket: TicketView) -> tuple[int, bool, datetime, datetime, TicketId]:
    due = ticket.sla_due_at
    # (False, due) sorts before (True, placeholder): tickets without an SLA due time go last.
    return ticket.priority, due is None, due or ticket.created_at, ticket.created_at, ticket.id


def queue_order(tickets: Iterable[TicketView]) -> list[TicketView]:
    """Priority, then SLA due (None last), then creation time, then id."""
    return sorted(tickets, key=_queue_key)


def assign(queue: Iterable[TicketView], agents: Iterable[AgentView], now: datetime) -> list[tuple[TicketId, AgentId]]:
    """Plan assignments for the queue (see "Planning" in the module docstring); pure, returns the plan.

    A ticket id appearing twice in ``queue`` is planned once (the first in queue order): a snapshot
    that unions two sources must not make one ticket take two agents. Duplicate agent ids are an
    error, because it is unknowable which snapshot of the agent is true.
    """
    views: dict[AgentId, AgentView] = {}
    for agent in agents:
        if agent.id in views:
            raise ValueError(f"duplicate agent id {agent.id!r}")
        views[agent.id] = agent

    # Agents that can take work now, and an index from each skill to them (for building heaps).
    open_ids = {a.id for a in views.values() if has_capacity(a)}
    holders: dict[str, list[AgentId]] = {}
    for agent_id in sorted(open_ids):
        for skill in views[agent_id].skills:
            holders.setdefault(skill, []).append(agent_id)

    # One heap per distinct required-skill set, built when first needed. Entries go stale when the
    # agent's load changes; ``version`` tells current entries from stale ones (lazy deletion).
    heaps: dict[frozenset[str], list[tuple[_Rank, int, AgentId]]] = {}
    member_of: dict[AgentId, list[list[tuple[_Rank, int, AgentId]]]] = {}
    version = dict.fromkeys(views, 0)

    def heap_for(skills: frozenset[str]) -> list[tuple[_Rank, int, AgentId]]:
        if skills:
            rarest = min(skills, key=lambda s: len(holders.get(s, ())))
            pool: Iterable[AgentId] = holders.get(rarest, ())
        else:
            pool = sorted(open_ids)
        heap = [(_rank(views[a], now), version[a], a) for a in pool if a in open_ids and skills <= views[a].skills]
        heapq.heapify(heap)
        for _, _, agent_id in heap:
            member_of.setdefault(agent_id, []).append(heap)
        heaps[skills] = heap
        return heap

    plan: list[tuple[TicketId, AgentId]] = []
    planned: set[TicketId] = set()
    for ticket in queue_order(queue):
        if ticket.id in planned:
            continue
        heap = heaps.get(ticket.required_skills)
        if heap is None:
            heap = heap_for(ticket.required_skills)
        while heap and heap[0][1] != version[heap[0][2]]:
            heapq.heappop(heap)
        if not heap:
            continue  # nobody can take it; an empty heap stays empty, since loads only grow
        agent_id = heap[0][2]
        agent = replace(views[agent_id], load=views[agent_id].load + 1, last_assigned_at=now)
        views[agent_id] = agent
        version[agent_id] += 1  # every entry of this agent is now stale
        plan.append((ticket.id, agent_id))
        planned.add(ticket.id)
        if has_capacity(agent):
            entry = (_rank(agent, now), version[agent_id], agent_id)
            for member in member_of[agent_id]:
                heapq.heappush(member, entry)
        else:
            open_ids.discard(agent_id)
    return plan


def claim_allowed(agent: AgentView, ticket: TicketView, claimed_today: int, cap: int) -> bool:
    """Whether the agent may take ``ticket`` from the pool by hand.

    Claiming is a deliberate choice, so it may skip the queue order; the daily ``cap`` keeps it from
    becoming cherry-picking of easy tickets. Eligibility still applies: no claiming past capacity,
    while away, or without the skills.
    """
    return eligible(agent, ticket) and claimed_today < cap


def reassign_on_offline(agents: Sequence[AgentView], assignments: Mapping[TicketId, AgentId]) -> list[TicketId]:
    """Tickets to put back in the queue because their agent is offline (or no longer exists).

    ``away`` keeps its tickets: a short break should not bounce a conversation to a stranger.
    Order follows ``assignments``, so the caller controls it (e.g. pass them in queue order).
    """
    presence = {a.id: a.presence for a in agents}
    return [
        ticket_id
        for ticket_id, agent_id in assignments.items()
        if presence.get(agent_id, Presence.OFFLINE) is Presence.OFFLINE
    ]
