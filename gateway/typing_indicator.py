"""The customer typing indicator: a live-only event for the agents who can see the conversation's ticket.

Nothing is stored and nothing goes on a stream: a lost "typing" costs nothing, so it is one pub/sub
message on the live events channel, at most one per conversation per ``THROTTLE_MS`` however often
the browser asks (a Redis SET NX PX shared by every process, so several gateways throttle together).

Who receives it: the event carries the open ticket's facts (``ticket_event_data``), so the agent
event stream's filter (``agent_api._wanted``) applies the same rule as every other ticket event —
supervisors and admins, the assignee, and agents whose queue holds the waiting ticket, i.e. exactly
who may open that ticket. A conversation without an open ticket is the bot's: no human is watching
it, so nothing is published (and supervisors' streams are not flooded with bot chats' keystrokes).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gateway.db.schema import tickets
from gateway.models import ConversationEvent, EventKind
from gateway.services import Services
from ticketing.live import publish
from ticketing.ticket_rows import ticket_event_data

THROTTLE_MS = 2000


async def open_ticket_facts(services: Services, conversation_id: str) -> dict[str, Any] | None:
    """The open ticket's filter facts, or None; one lookup on the unique ``open_key`` index."""
    query = select(tickets.c.id, tickets.c.assignee_id, tickets.c.skills, tickets.c.priority,
                   tickets.c.status).where(tickets.c.open_key == conversation_id)
    async with services.engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return ticket_event_data(dict(row._mapping)) if row is not None else None


async def customer_typing(services: Services, conversation_id: str) -> bool:
    """Publish a ``customer_typing`` event unless one went out in the last ``THROTTLE_MS``; True if
    published."""
    fresh = await services.redis.set(services.keys.typing_throttle(conversation_id), b"1", nx=True,
                                     px=THROTTLE_MS)
    if not fresh:
        return False
    facts = await open_ticket_facts(services, conversation_id)
    if facts is None:
        return False
    await publish(services.redis, services.keys, [ConversationEvent(
        kind=EventKind.CUSTOMER_TYPING, conversation_id=conversation_id, at=services.clock(), data=facts)])
    return True
