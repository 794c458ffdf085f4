"""Reading tickets the way people work them: my tickets, my skills' queues, everything (supervisors).

``visible_to`` is the one rule for what an agent may see or act on: tickets assigned to them, and
waiting tickets whose (routable) skills they hold -- the same set routing would offer them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.schema import agents, conversations, tickets
from ticketing.lifecycle import ACTIVE, TicketStatus
from ticketing.skills import routable_skills

VIEWS = ("mine", "queue", "active", "all")


@dataclass(frozen=True, slots=True)
class Viewer:
    id: str
    skills: frozenset[str]
    sees_all: bool  # supervisors and admins


def in_queue_of(row: dict[str, Any], skills: frozenset[str], held: frozenset[str]) -> bool:
    """A waiting ticket belongs to the queues of an agent holding its routable skills."""
    waiting = row["status"] == TicketStatus.NEW.value and row["assignee_id"] is None
    return waiting and routable_skills(frozenset(row["skills"] or ()), held) <= skills


def visible_to(viewer: Viewer, row: dict[str, Any], held: frozenset[str]) -> bool:
    return viewer.sees_all or row["assignee_id"] == viewer.id or in_queue_of(row, viewer.skills, held)


def sort_key(row: dict[str, Any]) -> tuple[int, bool, str, int]:
    """Priority, then the SLA due soonest (none last), then the oldest: how a queue is worked."""
    due = row.get("first_response_due")
    return row["priority"], due is None, due.isoformat() if due else "", row["id"]


async def held_skills(engine: AsyncEngine) -> frozenset[str]:
    """Every skill some active agent holds (routing relaxes skills nobody has)."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(agents.c.skills).where(agents.c.active.is_(True)))).scalars().all()
    return frozenset(s for skills in rows for s in (skills or ()))


async def list_tickets(engine: AsyncEngine, viewer: Viewer, *, view: str = "active", statuses: Iterable[str] = (),
                       priority: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Tickets of ``view`` that ``viewer`` may see, in working order, with the customer's name."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}")
    wanted = set(statuses)
    query = (select(tickets, conversations.c.customer_name, conversations.c.customer_external_id)
             .join(conversations, conversations.c.id == tickets.c.conversation_id))
    if view == "mine":
        query = query.where(tickets.c.assignee_id == viewer.id)
    elif view == "queue":
        query = query.where(tickets.c.status == TicketStatus.NEW.value, tickets.c.assignee_id.is_(None))
    if view != "all" and not wanted:
        query = query.where(tickets.c.status.in_([s.value for s in ACTIVE]))
    if wanted:
        query = query.where(tickets.c.status.in_(sorted(wanted)))
    if priority is not None:
        query = query.where(tickets.c.priority == priority)
    async with engine.connect() as conn:
        rows = [dict(r._mapping) for r in await conn.execute(query.order_by(tickets.c.id.desc()).limit(5000))]
    held = await held_skills(engine)
    visible = [r for r in rows if visible_to(viewer, r, held)]
    return sorted(visible, key=sort_key)[:limit]
