"""Row-level ticket operations shared by the service, the router and the SLA scheduler. Each runs
inside the caller's transaction and appends to the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.db.conversations import set_state
from gateway.db.schema import ticket_events, tickets
from ticketing.lifecycle import ACTIVE, TicketEvent, TicketStatus, conversation_state, transition


class TicketNotFound(LookupError):
    pass


class TicketConflict(Exception):
    """The ticket changed under the caller (answered 409)."""


def ticket_event_data(row: Mapping[str, Any]) -> dict[str, Any]:
    """The ticket facts live views filter on, without a database round trip."""
    return {"ticket_id": row["id"], "assignee_id": row.get("assignee_id"), "skills": list(row.get("skills") or []),
            "priority": row.get("priority"), "status": row.get("status")}


async def assign_in(conn: AsyncConnection, ticket_id: int, agent_id: str, *, actor: str, now: datetime,
                    only_if_unassigned: bool = False, kind: str = "assign") -> dict[str, Any] | None:
    """Give the ticket to ``agent_id`` inside the caller's transaction; returns the updated row.

    With ``only_if_unassigned`` the update is a compare-and-set on (status new, no assignee): a ticket
    that someone else took meanwhile is left alone and None is returned, so a plan made from a stale
    snapshot can never assign a ticket twice.
    """
    row = await _row(conn, ticket_id)
    result = transition(TicketStatus(row["status"]), TicketEvent.ASSIGN, now=now)
    stmt = update(tickets).where(tickets.c.id == ticket_id)
    if only_if_unassigned:
        stmt = stmt.where(tickets.c.status == TicketStatus.NEW.value, tickets.c.assignee_id.is_(None))
    else:
        stmt = stmt.where(tickets.c.status == row["status"])
    done = await conn.execute(stmt.values(status=result.status.value, assignee_id=agent_id, assigned_at=now,
                                          updated_at=now))
    if (done.rowcount or 0) == 0:
        return None
    await set_state(conn, row["conversation_id"], conversation_state(result.status))
    await _audit(conn, ticket_id, now, actor, kind,
                 {"from": row["status"], "to": result.status.value, "agent_id": agent_id,
                  "previous_agent_id": row["assignee_id"]})
    return {**row, "status": result.status.value, "assignee_id": agent_id, "assigned_at": now}


async def unassign_in(conn: AsyncConnection, ticket_id: int, *, actor: str, now: datetime, why: str,
                      skills: list[str] | None = None) -> dict[str, Any] | None:
    """Put the ticket back in the queue (agent offline, transfer to a skill); None if not active."""
    row = await _row(conn, ticket_id)
    if TicketStatus(row["status"]) not in ACTIVE:
        return None
    status = TicketStatus.NEW if row["status"] == TicketStatus.NEW.value else transition(
        TicketStatus(row["status"]), TicketEvent.UNASSIGN, now=now).status
    values: dict[str, Any] = {"status": status.value, "assignee_id": None, "assigned_at": None, "updated_at": now}
    if skills is not None:
        values["skills"] = sorted(set(skills))
    done = await conn.execute(update(tickets).where(tickets.c.id == ticket_id,
                                                    tickets.c.status == row["status"]).values(**values))
    if (done.rowcount or 0) == 0:
        return None
    await set_state(conn, row["conversation_id"], conversation_state(status))
    await _audit(conn, ticket_id, now, actor, "unassign",
                 {"from": row["status"], "to": status.value, "previous_agent_id": row["assignee_id"], "why": why,
                  **({"skills": values["skills"]} if skills is not None else {})})
    return {**row, **values}


async def _row(conn: AsyncConnection, ticket_id: int) -> dict[str, Any]:
    row = (await conn.execute(select(tickets).where(tickets.c.id == ticket_id))).first()
    if row is None:
        raise TicketNotFound(f"no ticket {ticket_id}")
    return dict(row._mapping)


async def _audit(conn: AsyncConnection, ticket_id: int, at: datetime, actor: str, kind: str,
                 data: dict[str, Any]) -> None:
    await conn.execute(ticket_events.insert().values(ticket_id=ticket_id, at=at, actor=actor, kind=kind, data=data))
