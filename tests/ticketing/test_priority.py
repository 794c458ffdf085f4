"""Table-driven tests of the priority rule (ticketing.priority)."""

from __future__ import annotations

import random

import pytest

from gateway.models import Channel
from ticketing.escalation import EscalationReason
from ticketing.priority import (
    History,
    Priority,
    PriorityDecision,
    PriorityPolicy,
    ReasonCode,
    Signals,
    Tier,
    decide_priority,
)

R = ReasonCode
NORMAL, VIP = Tier.NORMAL, Tier.VIP
CALM = Signals(negative=0.1, anger=0.0, urgency=0.1)
PLAIN = Signals(negative=0.5, anger=0.3, urgency=0.5)  # not calm, nothing alarming: the P2 base
ANGRY = Signals(negative=0.8, anger=0.75, urgency=0.4)
THREAT = Signals(negative=0.6, anger=0.4, urgency=0.5, flags=frozenset({"threat"}))
ANGRY_THREAT = Signals(negative=0.9, anger=0.8, urgency=0.5, flags=frozenset({"threat"}))
SAFETY = Signals(negative=0.2, anger=0.0, urgency=0.1, flags=frozenset({"safety"}))


def flags(*names: str) -> frozenset[str]:
    return frozenset(names)


ROWS = [
    # id, signals, tier, channel, history, expected priority, codes that must be present
    ("calm question is P3", CALM, NORMAL, Channel.WEBCHAT, History(), Priority.P3, {R.INFO_REQUEST}),
    ("plain request is P2", PLAIN, NORMAL, Channel.WEBCHAT, History(), Priority.P2, {R.STANDARD}),
    ("anger at threshold raises", ANGRY, NORMAL, Channel.WEBCHAT, History(), Priority.P1, {R.ANGER}),
    (
        "anger below threshold",
        Signals(negative=0.6, anger=0.69),
        NORMAL,
        Channel.WEBCHAT,
        History(),
        Priority.P2,
        set(),
    ),
    (
        "caps and sarcasm push anger over",
        Signals(negative=0.6, anger=0.55, flags=flags("caps", "sarcasm")),
        NORMAL,
        Channel.WECHAT,
        History(),
        Priority.P1,
        {R.ANGER},
    ),
    (
        "bot escalated for anger",
        Signals(negative=0.4, anger=0.2, reason=EscalationReason.ANGER),
        NORMAL,
        Channel.WEBCHAT,
        History(),
        Priority.P1,
        {R.ANGER},
    ),
    (
        "high urgency raises",
        Signals(negative=0.3, urgency=0.9),
        NORMAL,
        Channel.EMAIL,
        History(),
        Priority.P1,
        {R.URGENCY},
    ),
    (
        "anger and urgency count once",
        Signals(negative=0.8, anger=0.8, urgency=0.9),
        NORMAL,
        Channel.WEBCHAT,
        History(),
        Priority.P1,
        {R.ANGER, R.URGENCY},
    ),
    ("VIP calm question is P2", CALM, VIP, Channel.WEBCHAT, History(), Priority.P2, {R.VIP, R.INFO_REQUEST}),
    ("VIP bump", PLAIN, VIP, Channel.WEBCHAT, History(), Priority.P1, {R.VIP}),
    ("angry VIP is P0", ANGRY, VIP, Channel.WEBCHAT, History(), Priority.P0, {R.VIP, R.ANGER}),
    ("cap at P0", ANGRY, VIP, Channel.TAOBAO, History(reopened=True), Priority.P0, {R.VIP, R.ANGER, R.REOPENED}),
    ("safety is P0", SAFETY, NORMAL, Channel.WEBCHAT, History(), Priority.P0, {R.SAFETY}),
    ("safety VIP is P0", SAFETY, VIP, Channel.JD, History(), Priority.P0, {R.SAFETY, R.VIP}),
    ("threat is at least P1", THREAT, NORMAL, Channel.WEBCHAT, History(), Priority.P1, {R.THREAT}),
    ("threat on manual ticket", THREAT, NORMAL, None, History(), Priority.P1, {R.THREAT}),
    ("threat on Taobao", THREAT, NORMAL, Channel.TAOBAO, History(), Priority.P1, {R.THREAT, R.CHANNEL_THREAT}),
    ("angry threat on webchat", ANGRY_THREAT, NORMAL, Channel.WEBCHAT, History(), Priority.P1, {R.THREAT}),
    ("angry threat on Taobao", ANGRY_THREAT, NORMAL, Channel.TAOBAO, History(), Priority.P0, {R.CHANNEL_THREAT}),
    ("angry threat on Pinduoduo", ANGRY_THREAT, NORMAL, Channel.PINDUODUO, History(), Priority.P0, {R.CHANNEL_THREAT}),
    ("VIP threat on email", THREAT, VIP, Channel.EMAIL, History(), Priority.P1, {R.THREAT, R.VIP}),
    ("VIP threat on JD", THREAT, VIP, Channel.JD, History(), Priority.P0, {R.CHANNEL_THREAT, R.VIP}),
    ("reopened raises", PLAIN, NORMAL, Channel.WEBCHAT, History(reopened=True), Priority.P1, {R.REOPENED}),
    ("reopened calm question", CALM, NORMAL, Channel.WEBCHAT, History(reopened=True), Priority.P2, {R.REOPENED}),
    (
        "bot failed twice",
        Signals(negative=0.4, failed_attempts=2),
        NORMAL,
        Channel.WEBCHAT,
        History(),
        Priority.P1,
        {R.REPEATED_FAILURE},
    ),
    (
        "bot failed once",
        Signals(negative=0.4, failed_attempts=1),
        NORMAL,
        Channel.WEBCHAT,
        History(),
        Priority.P2,
        set(),
    ),
    (
        "bot escalated for repeated failure",
        Signals(negative=0.4, reason=EscalationReason.REPEATED_FAILURE),
        NORMAL,
        Channel.WEBCHAT,
        History(),
        Priority.P1,
        {R.REPEATED_FAILURE},
    ),
    (
        "let-down signals count once",
        Signals(negative=0.4, failed_attempts=3),
        NORMAL,
        Channel.WEBCHAT,
        History(tickets_last_30d=6, reopened=True, previous_breaches=2),
        Priority.P1,
        {R.REPEATED_FAILURE, R.REOPENED, R.PREVIOUS_BREACH, R.FREQUENT_CONTACT},
    ),
    ("previous breach", PLAIN, NORMAL, Channel.WEBCHAT, History(previous_breaches=1), Priority.P1, {R.PREVIOUS_BREACH}),
    (
        "frequent contact",
        PLAIN,
        NORMAL,
        Channel.WEBCHAT,
        History(tickets_last_30d=4),
        Priority.P1,
        {R.FREQUENT_CONTACT},
    ),
    ("not yet frequent", PLAIN, NORMAL, Channel.WEBCHAT, History(tickets_last_30d=3), Priority.P2, set()),
    (
        "unknown flag is not calm",
        Signals(flags=flags("emoji_spam")),
        NORMAL,
        Channel.WEBCHAT,
        History(),
        Priority.P2,
        set(),
    ),
]


@pytest.mark.parametrize(
    ("signals", "tier", "channel", "history", "expected", "codes"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_decide_priority(
    signals: Signals,
    tier: Tier,
    channel: Channel | None,
    history: History,
    expected: Priority,
    codes: set[ReasonCode],
) -> None:
    decision = decide_priority(signals, tier, channel, history, PriorityPolicy())
    assert decision.priority is expected, decision.explain()
    assert codes <= set(decision.codes), decision.explain()
    assert len(decision.reasons) == len(decision.codes)
    assert all(text.strip() for text in decision.reasons)


@pytest.mark.parametrize(
    ("policy", "signals", "tier", "channel", "expected"),
    [
        pytest.param(PriorityPolicy(vip_raise=0), PLAIN, VIP, Channel.WEBCHAT, Priority.P2, id="no VIP bump"),
        pytest.param(PriorityPolicy(vip_raise=2), PLAIN, VIP, Channel.WEBCHAT, Priority.P0, id="double VIP bump"),
        pytest.param(
            PriorityPolicy(threat_raise_channels=frozenset()),
            ANGRY_THREAT,
            NORMAL,
            Channel.TAOBAO,
            Priority.P1,
            id="no channel adjustment",
        ),
        pytest.param(
            PriorityPolicy(threat_raise_channels=frozenset({Channel.WECHAT})),
            ANGRY_THREAT,
            NORMAL,
            Channel.WECHAT,
            Priority.P0,
            id="custom channel adjustment",
        ),
        pytest.param(
            PriorityPolicy(threat_floor=Priority.P0), THREAT, NORMAL, Channel.EMAIL, Priority.P0, id="P0 floor"
        ),
        pytest.param(PriorityPolicy(anger_at=0.9), ANGRY, NORMAL, Channel.WEBCHAT, Priority.P2, id="stricter anger"),
        pytest.param(PriorityPolicy(base=Priority.P1), PLAIN, NORMAL, Channel.WEBCHAT, Priority.P1, id="P1 base"),
        pytest.param(PriorityPolicy(info_request=Priority.P2), CALM, NORMAL, Channel.WEBCHAT, Priority.P2, id="no P3"),
        pytest.param(
            PriorityPolicy(flag_anger_boost=0.0),
            Signals(anger=0.65, flags=flags("caps")),
            NORMAL,
            Channel.WEBCHAT,
            Priority.P2,
            id="no caps boost",
        ),
    ],
)
def test_policy_knobs(
    policy: PriorityPolicy, signals: Signals, tier: Tier, channel: Channel, expected: Priority
) -> None:
    assert decide_priority(signals, tier, channel, History(), policy).priority is expected


def test_reasons_are_readable_and_most_decisive_first() -> None:
    signals = Signals(negative=0.9, anger=0.82, flags=flags("safety", "threat"))
    decision = decide_priority(signals, VIP, Channel.TAOBAO, History(reopened=True), PriorityPolicy())
    assert decision.codes == (
        R.SAFETY,
        R.THREAT,
        R.CHANNEL_THREAT,
        R.VIP,
        R.ANGER,
        R.REOPENED,
        R.STANDARD,
    )
    assert decision.reasons[0].startswith("safety issue reported")
    assert "12315" in decision.reasons[1]
    assert "VIP customer" in decision.reasons
    assert "anger 0.82" in decision.reasons[4]
    assert decision.explain().startswith("P0: safety issue reported")


def test_default_policy_is_used_when_omitted() -> None:
    assert decide_priority(ANGRY, NORMAL, Channel.WEBCHAT, History()) == decide_priority(
        ANGRY, NORMAL, Channel.WEBCHAT, History(), PriorityPolicy()
    )


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Signals(anger=1.5), id="anger > 1"),
        pytest.param(lambda: Signals(negative=-0.1), id="negative < 0"),
        pytest.param(lambda: Signals(failed_attempts=-1), id="negative attempts"),
        pytest.param(lambda: History(tickets_last_30d=-1), id="negative history"),
        pytest.param(lambda: PriorityPolicy(anger_at=2.0), id="threshold > 1"),
        pytest.param(lambda: PriorityPolicy(failed_attempts_at=0), id="zero count threshold"),
        pytest.param(lambda: PriorityPolicy(vip_raise=-1), id="negative VIP raise"),
        pytest.param(lambda: PriorityDecision(Priority.P1, ("a",), ()), id="unpaired reasons"),
    ],
)
def test_invalid_inputs_are_rejected(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def _random_signals(rng: random.Random) -> Signals:
    return Signals(
        negative=rng.random(),
        anger=rng.random(),
        urgency=rng.random(),
        flags=frozenset(f for f in ("threat", "safety", "caps", "sarcasm") if rng.random() < 0.2),
        reason=rng.choice([None, *EscalationReason]),
        failed_attempts=rng.randrange(4),
    )


def test_properties_on_random_inputs() -> None:
    """Safety is always P0, threats never below P1, VIP and reopening never make a ticket less urgent."""
    rng = random.Random(20241111)
    policy = PriorityPolicy()
    for _ in range(2000):
        signals = _random_signals(rng)
        channel = rng.choice([None, *Channel])
        history = History(rng.randrange(8), rng.random() < 0.3, rng.randrange(3))
        normal = decide_priority(signals, NORMAL, channel, history, policy)
        vip = decide_priority(signals, VIP, channel, history, policy)
        reopened = decide_priority(signals, NORMAL, channel, History(history.tickets_last_30d, True, 0), policy)
        assert vip.priority <= normal.priority
        assert reopened.priority <= decide_priority(signals, NORMAL, channel, History(), policy).priority
        if "safety" in signals.flags:
            assert normal.priority is Priority.P0
        if "threat" in signals.flags:
            assert normal.priority <= Priority.P1
        assert Priority.P0 <= normal.priority <= Priority.P3
