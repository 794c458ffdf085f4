"""What a new ticket looks like: priority, skills, SLA due times and the wait notice (pure).

``plan_ticket`` turns plain facts about an escalating conversation into a ``TicketPlan``; the
escalation code stores it. Keeping this a pure function of (facts, policies, now) is what lets every
rule be tested with tables and an injected clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.models import Channel
from ticketing.escalation import EscalationReason
from ticketing.priority import History, Priority, PriorityDecision, PriorityPolicy, Signals, Tier, decide_priority
from ticketing.sentiment import SentimentScore
from ticketing.skills import SkillMap, required_skills
from ticketing.sla import Deadlines, SlaPolicy, effective_warn_before, sla_deadlines


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """Everything known about the conversation when it escalates."""

    channel: Channel
    reason: EscalationReason
    scores: Sequence[SentimentScore] = ()  # the customer's recent messages, oldest first
    tier: Tier = Tier.NORMAL
    history: History = field(default_factory=History)
    intent: str | None = None
    hit_tags: Sequence[Sequence[str]] = ()  # tags of the bot's retrieval hits, best first
    language: str = "zh"
    failed_attempts: int = 0


@dataclass(frozen=True, slots=True)
class TicketPlan:
    priority: PriorityDecision
    skills: frozenset[str]
    deadlines: Deadlines
    sla_next_check_at: datetime
    wait_notice: str  # bilingual expected-wait text for the customer

    def columns(self) -> dict[str, Any]:
        """Ticket column values for this plan."""
        return {
            "priority": int(self.priority.priority),
            "priority_reasons": [{"code": c.value, "text": t}
                                 for c, t in zip(self.priority.codes, self.priority.reasons, strict=True)],
            "skills": sorted(self.skills),
            "first_response_due": self.deadlines.first_response_due,
            "resolution_due": self.deadlines.resolution_due,
            "sla_next_check_at": self.sla_next_check_at,
        }


def combine_scores(scores: Iterable[SentimentScore]) -> Signals:
    """The customer's mood over their recent messages: the strongest of each score (one furious
    message is not cancelled by a polite follow-up) and every flag any message raised."""
    scores = list(scores)
    if not scores:
        return Signals()
    flags: frozenset[str] = frozenset().union(*(s.flags for s in scores))
    return Signals(
        negative=max(s.negative for s in scores),
        anger=max(s.anger for s in scores),
        urgency=max(s.urgency for s in scores),
        flags=flags,
    )


def plan_ticket(
    facts: TicketFacts,
    *,
    now: datetime,
    sla: SlaPolicy,
    priority_policy: PriorityPolicy | None = None,
    skill_map: SkillMap | None = None,
) -> TicketPlan:
    mood = combine_scores(facts.scores)
    signals = Signals(negative=mood.negative, anger=mood.anger, urgency=mood.urgency, flags=mood.flags,
                      reason=facts.reason, failed_attempts=facts.failed_attempts)
    decision = decide_priority(signals, facts.tier, facts.channel, facts.history, priority_policy)
    skills = required_skills(
        intent=facts.intent, hit_tags=facts.hit_tags, language=facts.language, channel=facts.channel,
        tier=facts.tier, safety="safety" in mood.flags, skill_map=skill_map,
    )
    deadlines = sla_deadlines(now, decision.priority, facts.tier, facts.channel, sla)
    first_warn = deadlines.first_response_due - effective_warn_before(sla.warn_before,
                                                                        deadlines.first_response_target)
    return TicketPlan(
        priority=decision,
        skills=skills,
        deadlines=deadlines,
        sla_next_check_at=first_warn,
        wait_notice=sla.expected_wait_text(decision.priority, facts.tier, facts.channel),
    )


def raised(priority: int, levels: int = 1) -> Priority:
    """``priority`` made more urgent by ``levels`` (never past P0): the SLA breach action."""
    return Priority(max(int(Priority.P0), priority - levels))
