"""A reply that cannot be delivered goes to a human: recorded on the ticket, announced to agents and supervisors.

``record_delivery_failure`` does, in this order:

1. in one transaction: open a ticket for the conversation (reason ``channel_failure``) unless one is
   already open — an agent who owns the conversation keeps it, and its state is not touched — and
   append ``delivery_failed`` (message id, channel, author, error) to that ticket's audit log: the
   durable record, shown with the ticket;
2. a ``delivery_failed`` entry on the supervisor alert stream (``GET /api/supervisor/alerts``);
3. a ``DELIVERY_FAILED`` live event for agent consoles, and a router kick for a new ticket.

Steps 2 and 3 are hints after the commit (like the SLA scheduler's alerts): a Redis hiccup there loses
a notification, never the record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.db.schema import ticket_events, tickets
from gateway.keys import Keys
from gateway.models import ConversationEvent, EventKind, OutboundMessage
from ticketing.escalation import EscalationReason, escalate_in
from ticketing.live import kick_router, publish

log = logging.getLogger(__name__)

ALERT_KIND = "delivery_failed"


@dataclass(frozen=True, slots=True)
class FailureRecord:
    ticket_id: int
    new_ticket: bool


async def record_delivery_failure(
    engine: AsyncEngine, redis: aioredis.Redis, keys: Keys, msg: OutboundMessage, error: str, *,
    now: datetime, alerts_maxlen: int = 100_000,
) -> FailureRecord:
    """Hand a permanently failed reply to a human (see the module docstring)."""
    error = error[:1000]
    facts: dict[str, str] = {"message_id": msg.message_id, "channel": msg.channel.value, "author": msg.author,
                             "error": error}
    async with engine.begin() as conn:
        row = (await conn.execute(select(tickets).where(tickets.c.open_key == msg.conversation_id))).first()
        if row is None:
            esc = await escalate_in(
                conn, msg.conversation_id, EscalationReason.CHANNEL_FAILURE,
                summary=f"回复发送失败 / reply could not be delivered: {error}", now=now, details=facts)
            ticket: dict[str, Any] = {"id": esc.ticket.id, "assignee_id": None, "status": esc.ticket.status}
            created = esc.created
        else:
            ticket = dict(row._mapping)
            created = False
        await conn.execute(ticket_events.insert().values(
            ticket_id=ticket["id"], at=now, actor="system", kind=ALERT_KIND, data=facts))
    record = FailureRecord(int(ticket["id"]), created)
    try:
        alert: dict[Any, Any] = {
            "kind": ALERT_KIND, "ticket_id": str(record.ticket_id), "conversation_id": msg.conversation_id,
            "assignee_id": ticket.get("assignee_id") or "", "at": now.isoformat(), **facts,
        }
        await redis.xadd(keys.supervisor_alerts, alert, maxlen=alerts_maxlen, approximate=True)
    except aioredis.RedisError:
        log.warning("could not queue the delivery failure of %s for supervisors", msg.message_id)
    await publish(redis, keys, [ConversationEvent(
        kind=EventKind.DELIVERY_FAILED, conversation_id=msg.conversation_id, at=now, message_id=msg.message_id,
        data={"ticket_id": record.ticket_id, "assignee_id": ticket.get("assignee_id"),
              "status": ticket.get("status"), "new_ticket": created, **facts})])
    if created:
        await kick_router(redis, keys)
    return record
