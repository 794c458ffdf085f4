"""The dispatcher: applies routing decisions to the database, one at a time across every replica.

Every assignment the router makes -- the planner's, an agent's claim from the pool, moving tickets off
an offline agent -- runs under one Redis lock (``keys.routing_lock``), and reads its snapshot (agents,
presence, loads, the queue) *after* taking it. So a plan always sees the previous plan's result and
capacity is never overshot by two replicas planning at once. The database write itself is a
compare-and-set (``assign_in(only_if_unassigned=True)``), so even a lock that expired under a stalled
holder can cost at worst one extra ticket for an agent, never a ticket assigned twice.

The decisions are the pure functions in ``ticketing.routing``; this module only loads snapshots,
calls them and stores the result. ``run`` plans on every router kick (new ticket, agent online,
ticket freed) and on a timer, which also catches agents whose heartbeats expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db.schema import tickets
from gateway.keys import Keys
from gateway.models import ConversationEvent, EventKind
from ticketing import routing
from ticketing.agents import AgentRecord, load_agent, load_agents
from ticketing.claims import CLAIM_HTTP_STATUS as CLAIM_HTTP_STATUS  # re-exported for the HTTP layer
from ticketing.claims import ClaimRejected as ClaimRejected
from ticketing.claims import claimed_today, refusal
from ticketing.lifecycle import ACTIVE, InvalidTransition, TicketStatus
from ticketing.live import publish
from ticketing.presence import PresenceBoard
from ticketing.routing import AgentView, Presence, TicketView
from ticketing.routing_lock import RoutingBusy as RoutingBusy  # re-exported: locked()/claim() raise it
from ticketing.routing_lock import RoutingLock
from ticketing.skills import routable_skills
from ticketing.ticket_rows import TicketNotFound, assign_in, ticket_event_data, unassign_in

log = logging.getLogger(__name__)

_ACTIVE = sorted(s.value for s in ACTIVE)
_WORKED = sorted(s.value for s in ACTIVE if s is not TicketStatus.NEW)  # an agent holds these
_KICK_POLL_S = 0.5  # how often the idle loop looks at ``stop``
_MIN_BACKOFF_S, _MAX_BACKOFF_S = 0.5, 10.0

def _assigned_event(row: dict[str, Any], now: datetime) -> ConversationEvent:
    return ConversationEvent(kind=EventKind.TICKET_ASSIGNED, conversation_id=row["conversation_id"], at=now,
                             data=ticket_event_data(row))


class Dispatcher:
    def __init__(self, engine: AsyncEngine, redis: aioredis.Redis, keys: Keys, presence: PresenceBoard,
                 clock: Callable[[], datetime], *, claim_cap_per_day: int = 20, interval_s: float = 2.0,
                 lock_wait_s: float = 5.0, lock_ttl_s: float = 30.0, reassign_warmup_s: float | None = None,
                 auto_assign: bool = True) -> None:
        self.engine = engine
        self.redis = redis
        self.keys = keys
        self.presence = presence
        self.clock = clock
        self.claim_cap_per_day = claim_cap_per_day
        self.interval_s = interval_s
        # False: "claim" mode (抢单): agents take tickets from their skills' queues themselves and the
        # router only frees the tickets of agents who went offline. Shops that want agents to choose
        # (or that route by hand) run this way.
        self.auto_assign = auto_assign
        self.routing_lock = RoutingLock(redis, keys, lock_wait_s, lock_ttl_s)
        # After a restart (or a Redis without persistence coming back empty), presence keys return only as
        # consoles send their next heartbeat; ``run`` waits one presence TTL before it moves anyone's
        # tickets, so a restart does not unassign every open ticket.
        self.reassign_warmup_s = presence.ttl_s if reassign_warmup_s is None else reassign_warmup_s

    # --- the lock ----------------------------------------------------------------------------------
    def locked(self) -> contextlib.AbstractAsyncContextManager[float]:
        """Hold the routing lock (``RoutingLock.hold``): yields the loop time by which the work should be
        done; raises ``RoutingBusy`` after ``lock_wait_s``.

        Other code that assigns tickets (a supervisor's explicit assignment) can take it too, so its
        snapshot of agent loads is not raced by a plan."""
        return self.routing_lock.hold()

    # --- snapshots ---------------------------------------------------------------------------------
    async def _agent_views(self, conn: AsyncConnection,
                           records: list[AgentRecord]) -> list[AgentView]:
        if not records:
            return []
        presence = await self.presence.snapshot(r.id for r in records)
        active = case((tickets.c.status.in_(_ACTIVE), 1), else_=0)
        stats = {
            agent_id: (int(load or 0), last)
            for agent_id, load, last in await conn.execute(
                select(tickets.c.assignee_id, func.sum(active), func.max(tickets.c.assigned_at))
                .where(tickets.c.assignee_id.is_not(None)).group_by(tickets.c.assignee_id))
        }
        return [AgentView(id=r.id, skills=r.skills, max_concurrent=r.max_concurrent, presence=presence[r.id],
                          load=stats.get(r.id, (0, None))[0], last_assigned_at=stats.get(r.id, (0, None))[1])
                for r in records]

    @staticmethod
    def _ticket_view(m: Any, held: frozenset[str]) -> TicketView:
        return TicketView(id=str(m["id"]), required_skills=routable_skills(frozenset(m["skills"] or ()), held),
                          priority=m["priority"], sla_due_at=m["first_response_due"], created_at=m["created_at"])

    # --- planning ----------------------------------------------------------------------------------
    async def plan_and_assign(self) -> list[tuple[int, str]]:
        """Give queued tickets to the best online agents with spare capacity; returns what was applied.

        Each assignment commits on its own, so one ticket resolved meanwhile does not undo the others.
        """
        applied: list[tuple[int, str]] = []
        events: list[ConversationEvent] = []
        try:
            async with self.locked() as finish_by:
                now = self.clock()
                async with self.engine.connect() as conn:
                    records = await load_agents(conn)
                    views = await self._agent_views(conn, records)
                    if not any(routing.has_capacity(v) for v in views):
                        return []  # nobody free: at peak, every ticket's kick would reload the whole queue
                    queued = [r._mapping for r in await conn.execute(
                        select(tickets.c.id, tickets.c.skills, tickets.c.priority, tickets.c.first_response_due,
                               tickets.c.created_at)
                        .where(tickets.c.status == TicketStatus.NEW.value, tickets.c.assignee_id.is_(None),
                               tickets.c.open_key.is_not(None)))]
                    if not queued:
                        return []
                held = frozenset(s for r in records for s in r.skills)
                plan = routing.assign([self._ticket_view(m, held) for m in queued], views, now)
                loop = asyncio.get_running_loop()
                for ticket_id, agent_id in plan:
                    if loop.time() > finish_by:
                        break  # the rest waits for the next tick rather than outliving the lock
                    row = await self._assign(int(ticket_id), agent_id, now)
                    if row is not None:
                        applied.append((row["id"], agent_id))
                        events.append(_assigned_event(row, now))
        finally:
            await publish(self.redis, self.keys, events)  # after the commits, even if a later one failed
        return applied

    async def _assign(self, ticket_id: int, agent_id: str, now: datetime) -> dict[str, Any] | None:
        try:
            async with self.engine.begin() as conn:
                return await assign_in(conn, ticket_id, agent_id, actor="router", now=now, only_if_unassigned=True)
        except (TicketNotFound, InvalidTransition):
            return None  # resolved or gone since the snapshot: nothing to assign

    # --- claiming ----------------------------------------------------------------------------------
    async def claim(self, agent_id: str, ticket_id: int) -> dict[str, Any]:
        """The agent takes a queued ticket by hand; returns the updated ticket row.

        Raises ``ClaimRejected`` (see ``CLAIM_HTTP_STATUS``) or ``RoutingBusy``.
        """
        async with self.locked():
            now = self.clock()
            async with self.engine.begin() as conn:
                await self._check_claim(conn, agent_id, ticket_id, now)
                try:
                    row = await assign_in(conn, ticket_id, agent_id, actor=agent_id, now=now,
                                          only_if_unassigned=True, kind="claim")
                except InvalidTransition:
                    row = None
                if row is None:
                    raise ClaimRejected("taken", "工单刚被处理 / the ticket was just taken or closed")
        row["updated_at"] = now
        await publish(self.redis, self.keys, [_assigned_event(row, now)])
        return row

    async def _check_claim(self, conn: AsyncConnection, agent_id: str, ticket_id: int, now: datetime) -> None:
        agent = await load_agent(conn, agent_id)
        if agent is None:
            raise ClaimRejected("not_found", f"没有客服 {agent_id} / no agent {agent_id!r}")
        found = (await conn.execute(select(tickets).where(tickets.c.id == ticket_id))).first()
        if found is None:
            raise ClaimRejected("not_found", f"没有工单 {ticket_id} / no ticket {ticket_id}")
        ticket = found._mapping
        if ticket["status"] != TicketStatus.NEW.value or ticket["assignee_id"] is not None or not ticket["open_key"]:
            raise ClaimRejected("taken", f"工单已不在排队中（{ticket['status']}）/ the ticket is no longer waiting "
                                         f"(status {ticket['status']}, assignee {ticket['assignee_id']})")
        if not agent.active:
            raise ClaimRejected("offline", "账号已停用 / this agent account is deactivated")
        held = frozenset(s for r in await load_agents(conn) for s in r.skills)
        load = await conn.scalar(select(func.count()).select_from(tickets).where(
            tickets.c.assignee_id == agent_id, tickets.c.status.in_(_ACTIVE))) or 0
        view = AgentView(id=agent.id, skills=agent.skills, max_concurrent=agent.max_concurrent,
                         presence=await self.presence.get(agent_id), load=load)
        wanted = self._ticket_view(ticket, held)
        if not routing.claim_allowed(view, wanted, await claimed_today(conn, agent_id, now), self.claim_cap_per_day):
            raise refusal(view, wanted, self.claim_cap_per_day)

    # --- offline agents ----------------------------------------------------------------------------
    async def reassign_offline(self) -> list[int]:
        """Put tickets of offline (or deactivated) agents back in the queue; returns their ids.

        ``away`` agents keep theirs. The freed tickets are assigned by the next ``plan_and_assign``.
        """
        freed: list[int] = []
        events: list[ConversationEvent] = []
        try:
            async with self.locked():
                now = self.clock()
                async with self.engine.connect() as conn:
                    records = await load_agents(conn)
                    presence = await self.presence.snapshot(r.id for r in records)
                    present = sorted(a for a, p in presence.items() if p is not Presence.OFFLINE)
                    query = (select(tickets.c.id, tickets.c.assignee_id)
                             .where(tickets.c.status.in_(_WORKED), tickets.c.assignee_id.is_not(None))
                             .order_by(tickets.c.priority, tickets.c.id))
                    if present:  # only candidates: a busy day has many held tickets, few orphaned ones
                        query = query.where(tickets.c.assignee_id.not_in(present))
                    holders = {str(tid): assignee for tid, assignee in await conn.execute(query)}
                views = [AgentView(id=r.id, skills=r.skills, max_concurrent=r.max_concurrent,
                                   presence=presence[r.id], load=0) for r in records]
                for ticket_id in routing.reassign_on_offline(views, holders):
                    row = await self._unassign(int(ticket_id), holders[ticket_id], now)
                    if row is not None:
                        freed.append(row["id"])
                        events.append(ConversationEvent(
                            kind=EventKind.TICKET_UPDATED, conversation_id=row["conversation_id"], at=now,
                            data={**ticket_event_data(row), "previous_agent_id": holders[ticket_id],
                                  "why": "agent_offline"}))
        finally:
            await publish(self.redis, self.keys, events)
        return freed

    async def _unassign(self, ticket_id: int, holder: str, now: datetime) -> dict[str, Any] | None:
        async with self.engine.begin() as conn:
            current = await conn.scalar(select(tickets.c.assignee_id).where(tickets.c.id == ticket_id))
            if current != holder:
                return None  # a supervisor moved it meanwhile (that path does not take the lock)
            return await unassign_in(conn, ticket_id, actor="router", now=now, why="agent_offline")

    # --- the loop ----------------------------------------------------------------------------------
    async def tick(self, *, reassign: bool = True) -> list[tuple[int, str]]:
        """One round: free offline agents' tickets (unless ``reassign`` is False), then plan (unless in
        claim mode). Returns the assignments made."""
        if reassign:
            await self.reassign_offline()
        return await self.plan_and_assign() if self.auto_assign else []

    async def run(self, stop: asyncio.Event) -> None:
        """Plan on every router kick and every ``interval_s`` until ``stop`` is set.

        Kicks arriving while a round runs are coalesced into one more round. Redis and database errors
        are logged and retried after a growing pause: routing must outlive a database restart. Tickets
        of offline agents are moved only after ``reassign_warmup_s`` (see ``__init__``).
        """
        pubsub: PubSub | None = None
        backoff = _MIN_BACKOFF_S
        loop = asyncio.get_running_loop()
        reassign_from = loop.time() + self.reassign_warmup_s
        try:
            while not stop.is_set():
                try:
                    if pubsub is None:
                        pubsub = self.redis.pubsub()
                        await pubsub.subscribe(self.keys.routing_kick)
                    await self.tick(reassign=loop.time() >= reassign_from)
                    backoff = _MIN_BACKOFF_S
                    await self._wait_for_kick(pubsub, stop)
                except RoutingBusy:
                    log.info("routing lock busy for %.1fs; another replica is routing", self.routing_lock.wait_s)
                except (aioredis.RedisError, SQLAlchemyError, OSError) as exc:
                    log.warning("dispatcher round failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, backoff)
                    await _close(pubsub)
                    pubsub = None  # resubscribe: the connection may be what failed
                    await _pause(stop, backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
                except Exception:
                    # A bug must not stop routing for everyone; the traceback goes to the log.
                    log.exception("dispatcher round failed; retrying in %.1fs", backoff)
                    await _pause(stop, backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
        finally:
            await _close(pubsub)

    async def _wait_for_kick(self, pubsub: PubSub, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.interval_s
        while not stop.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            kick = await pubsub.get_message(ignore_subscribe_messages=True, timeout=min(remaining, _KICK_POLL_S))
            if kick is not None:
                # Coalesce: kicks already buffered are covered by the round about to start.
                while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.0) is not None:
                    pass
                return


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _close(pubsub: PubSub | None) -> None:
    if pubsub is not None:
        with contextlib.suppress(aioredis.RedisError, OSError):
            await pubsub.aclose()  # type: ignore[no-untyped-call]
