"""Opening a ticket with everything routing and SLA need: gathers the facts, plans, stores.

The bot worker calls ``Escalator.escalate`` inside its transaction when the bot gives up; the facts
(recent sentiment scores, tier, history, intent, the tags of the articles the bot considered) are read
in that same transaction and handed to the pure ``plan_ticket``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.db.schema import messages, ticket_events, tickets
from gateway.models import Channel
from ticketing.customers import Identity, history_of, tier_of
from ticketing.escalation import Escalation, EscalationReason, escalate_in
from ticketing.intake import TicketFacts, TicketPlan, plan_ticket
from ticketing.policy import PolicyStore
from ticketing.sentiment import SentimentScore

RECENT_MESSAGES = 5  # the customer's mood is read from their last few messages, not the whole history


def score_json(score: SentimentScore) -> dict[str, Any]:
    """How a score is stored on the message row (and shown to agents)."""
    return {"negative": round(score.negative, 4), "anger": round(score.anger, 4),
            "urgency": round(score.urgency, 4), "reasons": list(score.reasons), "flags": sorted(score.flags)}


def score_from_json(data: Mapping[str, Any]) -> SentimentScore:
    return SentimentScore(negative=float(data.get("negative", 0.0)), anger=float(data.get("anger", 0.0)),
                          urgency=float(data.get("urgency", 0.0)), reasons=tuple(data.get("reasons") or ()),
                          flags=frozenset(data.get("flags") or ()))


def _hit_ids(details: Mapping[str, Any]) -> list[str]:
    hits = details.get("hits")
    if not isinstance(hits, list):
        return []
    return [str(h["article_id"]) for h in hits if isinstance(h, dict) and h.get("article_id")]


class Escalator:
    def __init__(self, policies: PolicyStore, article_tags: Callable[[str], Sequence[str]] | None = None) -> None:
        self.policies = policies
        self.article_tags = article_tags or (lambda _id: ())

    async def recent_scores(self, conn: AsyncConnection, conversation_id: str) -> list[SentimentScore]:
        rows = (await conn.execute(
            select(messages.c.sentiment).where(messages.c.conversation_id == conversation_id,
                                               messages.c.direction == "in", messages.c.sentiment.is_not(None))
            .order_by(messages.c.created_at.desc(), messages.c.id.desc()).limit(RECENT_MESSAGES)
        )).scalars().all()
        return [score_from_json(r) for r in reversed(rows) if isinstance(r, dict)]

    async def escalate(
        self,
        conn: AsyncConnection,
        *,
        conversation_id: str,
        channel: Channel,
        customer_external_id: str,
        reason: EscalationReason,
        summary: str,
        now: datetime,
        language: str,
        details: Mapping[str, Any],
    ) -> tuple[Escalation, TicketPlan | None]:
        """Open (or find) the conversation's ticket; the plan is returned only for a new ticket."""
        identity = Identity(channel.value, customer_external_id)
        intent = details.get("intent")
        facts = TicketFacts(
            channel=channel,
            reason=reason,
            scores=await self.recent_scores(conn, conversation_id),
            tier=await tier_of(conn, identity),
            history=await history_of(conn, identity, now),
            intent=str(intent) if isinstance(intent, str) else None,
            hit_tags=[tuple(self.article_tags(a)) for a in _hit_ids(details)],
            language=language,
            failed_attempts=int(details.get("failed_attempts") or 0),
        )
        plan = plan_ticket(facts, now=now, sla=await self.policies.current_sla(conn),
                           priority_policy=self.policies.policy.priority, skill_map=self.policies.policy.skills)
        esc = await escalate_in(conn, conversation_id, reason, summary=summary, now=now, details=dict(details))
        if not esc.created:
            return esc, None
        await conn.execute(update(tickets).where(tickets.c.id == esc.ticket.id).values(
            **plan.columns(), tier=facts.tier.value, channel=channel.value, language=language,
            intent=facts.intent, last_customer_message_at=now))
        await conn.execute(ticket_events.insert().values(
            ticket_id=esc.ticket.id, at=now, actor="system", kind="triaged",
            data={"priority": plan.priority.priority.name, "why": plan.priority.explain(),
                  "skills": sorted(plan.skills), "tier": facts.tier.value,
                  "first_response_due": plan.deadlines.first_response_due.isoformat(),
                  "resolution_due": plan.deadlines.resolution_due.isoformat()}))
        return esc, plan
