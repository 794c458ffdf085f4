"""Claiming a queued ticket by hand: the answer to each refusal, the daily cap's count, and which part
of the rule refused.

The rule itself is ``ticketing.routing.claim_allowed``; ``Dispatcher.claim`` runs it under the routing
lock. The daily cap resets at midnight China time and counts the agent's ``claim`` audit events.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.db.schema import ticket_events
from ticketing.routing import AgentView, Presence, TicketView
from ticketing.sla import CHINA_STANDARD_TIME

# How the HTTP layer answers each claim rejection.
CLAIM_HTTP_STATUS: Mapping[str, int] = {
    "not_found": 404, "taken": 409, "no_capacity": 409, "offline": 403, "missing_skills": 403, "cap_reached": 403,
}


class ClaimRejected(Exception):
    """An agent may not claim the ticket; ``reason`` (alias ``code``) is one of ``CLAIM_HTTP_STATUS``'s keys."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    @property
    def code(self) -> str:
        return self.reason


def claim_day_start(now: datetime) -> datetime:
    """Midnight China time (UTC+8) of ``now``'s China date, in UTC: when the daily claim cap resets."""
    local = now.astimezone(timezone(CHINA_STANDARD_TIME))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


async def claimed_today(conn: AsyncConnection, agent_id: str, now: datetime) -> int:
    """Tickets ``agent_id`` claimed since ``claim_day_start(now)`` (what counts against the daily cap)."""
    return await conn.scalar(select(func.count()).select_from(ticket_events).where(
        ticket_events.c.kind == "claim", ticket_events.c.actor == agent_id,
        ticket_events.c.at >= claim_day_start(now))) or 0


def refusal(agent: AgentView, ticket: TicketView, cap: int) -> ClaimRejected:
    """Which part of ``claim_allowed`` failed, most actionable first (call only when it said no)."""
    if agent.presence is not Presence.ONLINE:
        return ClaimRejected("offline", "请先切换为在线 / set yourself online to claim tickets")
    if agent.load >= agent.max_concurrent:
        return ClaimRejected("no_capacity", f"已达最大并发 {agent.max_concurrent} / you are at your limit of "
                                            f"{agent.max_concurrent} open tickets")
    missing = sorted(ticket.required_skills - agent.skills)
    if missing:
        names = ", ".join(missing)
        return ClaimRejected("missing_skills", f"缺少技能 {names} / missing skills: {names}")
    return ClaimRejected("cap_reached", f"今日认领已达上限 {cap} / daily claim limit of {cap} reached "
                                        "(resets at midnight China time)")
