"""The ticket plan at escalation: priority with reasons, skills, SLA due times and the wait notice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.models import Channel
from ticketing.escalation import EscalationReason
from ticketing.intake import TicketFacts, combine_scores, plan_ticket, raised
from ticketing.priority import History, Priority, Tier
from ticketing.sentiment import SentimentScore
from ticketing.sla import SlaPolicy

NOW = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)


def score(neg: float = 0.0, anger: float = 0.0, urgency: float = 0.0, *flags: str) -> SentimentScore:
    return SentimentScore(negative=neg, anger=anger, urgency=urgency, reasons=(), flags=frozenset(flags))


CASES = [
    # (facts, expected priority, expected skills, first response minutes)
    (TicketFacts(Channel.WEBCHAT, EscalationReason.OUT_OF_SCOPE, scores=[score(0.1)]), Priority.P3, set(), 480),
    (TicketFacts(Channel.WEBCHAT, EscalationReason.OUT_OF_SCOPE, scores=[score(0.6)],
                 hit_tags=[["物流"]]), Priority.P2, {"logistics"}, 120),
    (TicketFacts(Channel.TAOBAO, EscalationReason.ANGER, scores=[score(0.9, 0.8, 0.2, "threat")]),
     Priority.P0, set(), 10),
    (TicketFacts(Channel.WEBCHAT, EscalationReason.ASKED_FOR_HUMAN, scores=[score(0.5)], tier=Tier.VIP,
                 language="en"), Priority.P1, {"vip", "lang:en"}, 15),
    (TicketFacts(Channel.WEBCHAT, EscalationReason.LOW_CONFIDENCE, scores=[score(0.3, 0.1, 0.1, "safety")]),
     Priority.P0, {"appliances"}, 10),
    (TicketFacts(Channel.WEBCHAT, EscalationReason.REPEATED_FAILURE, scores=[score(0.5)],
                 history=History(tickets_last_30d=5)), Priority.P1, set(), 30),
]


@pytest.mark.parametrize(("facts", "priority", "skills", "first_min"), CASES)
def test_plan(facts: TicketFacts, priority: Priority, skills: set[str], first_min: int) -> None:
    plan = plan_ticket(facts, now=NOW, sla=SlaPolicy.standard())
    assert plan.priority.priority == priority, plan.priority.explain()
    assert plan.skills == frozenset(skills)
    assert plan.deadlines.first_response_due == NOW + timedelta(minutes=first_min)
    # The scheduler's first look is the warning instant: 30 min before, at most half the target.
    assert plan.sla_next_check_at == NOW + timedelta(minutes=first_min) - min(
        timedelta(minutes=30), timedelta(minutes=first_min) / 2)
    cols = plan.columns()
    assert cols["priority"] == int(priority) and cols["priority_reasons"][0]["text"]
    assert "预计等待" in plan.wait_notice and "Expected wait" in plan.wait_notice


def test_peak_profile_relaxes_targets_and_tells_the_customer() -> None:
    facts = TicketFacts(Channel.WEBCHAT, EscalationReason.OUT_OF_SCOPE, scores=[score(0.6)])
    plan = plan_ticket(facts, now=NOW, sla=SlaPolicy.standard().peak(2.0))
    assert plan.deadlines.first_response_due == NOW + timedelta(minutes=240)
    assert plan.wait_notice.startswith("当前咨询量较大") and "High volume" in plan.wait_notice


def test_mood_is_the_strongest_recent_message_and_all_flags() -> None:
    mood = combine_scores([score(0.9, 0.2, 0.1, "caps"), score(0.1, 0.7, 0.0, "threat"), score(0.0)])
    assert (mood.negative, mood.anger, mood.urgency) == (0.9, 0.7, 0.1)
    assert mood.flags == {"caps", "threat"}
    assert combine_scores([]).negative == 0.0


@pytest.mark.parametrize(("given", "levels", "expected"), [(3, 1, 2), (1, 1, 0), (0, 1, 0), (3, 5, 0)])
def test_raised_never_past_p0(given: int, levels: int, expected: int) -> None:
    assert raised(given, levels) == Priority(expected)
