"""Ticket priority: a pure rule from what we know about a conversation to P0..P3, with readable reasons.

The rule (``decide_priority``), in the order a supervisor would explain it:

1. **Start**: ``policy.base`` (P2), or ``policy.info_request`` (P3) when the message is calm -- urgency,
   negativity and anger all below ``calm_below`` and no scorer flag at all. Most "when does my parcel
   ship?" questions land here, so they never crowd out upset customers.
2. **Raises**, one level each, grouped by the *kind* of evidence; each group counts at most once,
   because two signals of the same kind (anger *and* urgency; reopened *and* repeated bot failure)
   are usually one fact seen twice, and stacking them would flood P0:

   - emotion: anger >= ``anger_at`` (shouting in caps and sarcasm nudge the score, scorers underrate
     them), or the bot escalated *for* anger; urgency >= ``urgency_at``
   - customer: VIP tier (``vip_raise`` levels)
   - let down: the bot failed ``failed_attempts_at`` times (or escalated for repeated failure), the
     ticket was reopened, we breached an SLA for this customer before, or they contacted us
     ``frequent_contact_at`` times in 30 days
   - channel: a threat on a marketplace channel (Taobao/JD/Pinduoduo), where a 差评 or a platform
     complaint lowers the shop's rating and so costs sales, not just one customer

3. **Clamp** at P0 (raises never go past the most urgent level).
4. **Floors**: a threat (12315/投诉/差评/chargeback/legal/media) is at least P1; a safety issue
   (smoke, burns, skin reactions) is always P0. Floors come last so no policy tweak to the raises can
   ever push a safety report below P0.

Because raises are summed and floors are ``min``-ed, the result does not depend on the order the rules
are evaluated in; ``reasons`` lists every rule that fired, most decisive first, so the supervisor sees
*why* even when a rule did not change the level (a threat on an already-P0 VIP ticket is still worth
knowing). Reason ``codes`` are stable identifiers for reports and UI filters; ``reasons`` are the
matching plain-English texts, which may be reworded freely.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from gateway.models import Channel
from ticketing.escalation import EscalationReason

# Flags the sentiment scorer may set. Unknown flags are ignored so the scorer can grow new ones
# without breaking priority, but any flag still disqualifies a message from the calm P3 start.
FLAG_THREAT = "threat"
FLAG_SAFETY = "safety"
FLAG_CAPS = "caps"
FLAG_SARCASM = "sarcasm"


class Priority(IntEnum):
    """P0 is the most urgent. Integer values so queues can sort on them directly."""

    P0 = 0
    P1 = 1
    P2 = 2
    P3 = 3


class Tier(StrEnum):
    """Customer tier, as the shop's CRM knows it."""

    NORMAL = "normal"
    VIP = "vip"


class ReasonCode(StrEnum):
    """Stable identifiers of the priority rules (reports and filters key on these, not on texts)."""

    SAFETY = "safety"
    THREAT = "threat"
    CHANNEL_THREAT = "channel_threat"
    VIP = "vip"
    ANGER = "anger"
    URGENCY = "urgency"
    REPEATED_FAILURE = "repeated_failure"
    REOPENED = "reopened"
    PREVIOUS_BREACH = "previous_breach"
    FREQUENT_CONTACT = "frequent_contact"
    INFO_REQUEST = "info_request"
    STANDARD = "standard"


def _check_score(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be within 0..1, got {value!r}")


@dataclass(frozen=True, slots=True)
class Signals:
    """What the bot and the sentiment scorer know about the conversation at escalation time."""

    negative: float = 0.0
    anger: float = 0.0
    urgency: float = 0.0
    flags: frozenset[str] = frozenset()
    reason: EscalationReason | None = None  # why the bot escalated; None for tickets opened by hand
    failed_attempts: int = 0  # bot answers the customer rejected or ignored in this conversation

    def __post_init__(self) -> None:
        _check_score("negative", self.negative)
        _check_score("anger", self.anger)
        _check_score("urgency", self.urgency)
        if self.failed_attempts < 0:
            raise ValueError("failed_attempts must not be negative")


@dataclass(frozen=True, slots=True)
class History:
    """The customer's recent past with the shop."""

    tickets_last_30d: int = 0
    reopened: bool = False  # this ticket was resolved once and the customer came back
    previous_breaches: int = 0  # SLA breaches on this customer's earlier tickets

    def __post_init__(self) -> None:
        if self.tickets_last_30d < 0 or self.previous_breaches < 0:
            raise ValueError("history counts must not be negative")


_MARKETPLACES = frozenset({Channel.TAOBAO, Channel.JD, Channel.PINDUODUO})


@dataclass(frozen=True, slots=True)
class PriorityPolicy:
    """Tunable thresholds; the defaults suit a small marketplace seller."""

    base: Priority = Priority.P2
    info_request: Priority = Priority.P3
    calm_below: float = 0.3  # negative, anger and urgency all below this (and no flags) -> info request
    anger_at: float = 0.7
    urgency_at: float = 0.8
    flag_anger_boost: float = 0.1  # added to anger per caps/sarcasm flag
    vip_raise: int = 1
    failed_attempts_at: int = 2
    frequent_contact_at: int = 4  # tickets in the last 30 days, this one included
    previous_breaches_at: int = 1
    threat_floor: Priority = Priority.P1
    safety_priority: Priority = Priority.P0
    threat_raise_channels: frozenset[Channel] = _MARKETPLACES

    def __post_init__(self) -> None:
        for name in ("calm_below", "anger_at", "urgency_at", "flag_anger_boost"):
            _check_score(name, getattr(self, name))
        if self.vip_raise < 0:
            raise ValueError("vip_raise must not be negative")
        if min(self.failed_attempts_at, self.frequent_contact_at, self.previous_breaches_at) < 1:
            raise ValueError("count thresholds must be at least 1 (0 would fire on every ticket)")


@dataclass(frozen=True, slots=True)
class PriorityDecision:
    """The priority and why: ``codes[i]`` is the stable id of the rule explained by ``reasons[i]``."""

    priority: Priority
    reasons: tuple[str, ...]
    codes: tuple[ReasonCode, ...]

    def __post_init__(self) -> None:
        if len(self.reasons) != len(self.codes):
            raise ValueError("reasons and codes must pair up")

    def explain(self) -> str:
        """One line for the ticket header, e.g. ``P1: VIP customer; customer is angry (anger 0.82)``."""
        return f"{self.priority.name}: " + "; ".join(self.reasons)


def decide_priority(
    signals: Signals,
    tier: Tier,
    channel: Channel | None,
    history: History,
    policy: PriorityPolicy | None = None,
) -> PriorityDecision:
    """Decide a ticket's priority from plain data (see the module docstring for the rule order)."""
    policy = policy or PriorityPolicy()
    fired: list[tuple[ReasonCode, str]] = []  # in "most decisive first" order
    flags = signals.flags

    # Floors: listed first because they are the most decisive reasons a supervisor reads.
    safety = FLAG_SAFETY in flags
    threat = FLAG_THREAT in flags
    if safety:
        fired.append((ReasonCode.SAFETY, "safety issue reported (e.g. smoke, burns, skin reaction)"))
    if threat:
        fired.append(
            (ReasonCode.THREAT, "threatens a complaint, bad review, chargeback or legal action (12315/投诉/差评)")
        )

    # Raises, one group at a time; each group adds at most one level (VIP adds vip_raise).
    raises = 0

    if threat and channel is not None and channel in policy.threat_raise_channels:
        fired.append(
            (ReasonCode.CHANNEL_THREAT, f"threat made on {channel.value}, where a bad review hurts the shop rating")
        )
        raises += 1

    if tier is Tier.VIP and policy.vip_raise:
        fired.append((ReasonCode.VIP, "VIP customer"))
        raises += policy.vip_raise

    emotion: list[tuple[ReasonCode, str]] = []
    boosted = min(1.0, signals.anger + policy.flag_anger_boost * len(flags & {FLAG_CAPS, FLAG_SARCASM}))
    if boosted >= policy.anger_at:
        emotion.append((ReasonCode.ANGER, f"customer is angry (anger {boosted:.2f})"))
    elif signals.reason is EscalationReason.ANGER:
        emotion.append((ReasonCode.ANGER, "customer is angry (the bot handed over because of anger)"))
    if signals.urgency >= policy.urgency_at:
        emotion.append((ReasonCode.URGENCY, f"time-critical request (urgency {signals.urgency:.2f})"))
    fired.extend(emotion)
    raises += 1 if emotion else 0

    let_down: list[tuple[ReasonCode, str]] = []
    if signals.failed_attempts >= policy.failed_attempts_at:
        let_down.append((ReasonCode.REPEATED_FAILURE, f"the bot failed to help {signals.failed_attempts} times"))
    elif signals.reason is EscalationReason.REPEATED_FAILURE:
        let_down.append((ReasonCode.REPEATED_FAILURE, "the bot failed to help repeatedly"))
    if history.reopened:
        let_down.append((ReasonCode.REOPENED, "ticket reopened: the customer says the issue is not solved"))
    if history.previous_breaches >= policy.previous_breaches_at:
        let_down.append(
            (ReasonCode.PREVIOUS_BREACH, f"we missed our response time with this customer {history.previous_breaches}x")
        )
    if history.tickets_last_30d >= policy.frequent_contact_at:
        let_down.append(
            (ReasonCode.FREQUENT_CONTACT, f"contacted us {history.tickets_last_30d} times in the last 30 days")
        )
    fired.extend(let_down)
    raises += 1 if let_down else 0

    # Start level, listed last: it is the least interesting reason once anything else fired.
    calm = (
        not flags
        and signals.urgency < policy.calm_below
        and signals.negative < policy.calm_below
        and signals.anger < policy.calm_below
    )
    if calm:
        start = policy.info_request
        fired.append((ReasonCode.INFO_REQUEST, "calm, low-urgency question"))
    else:
        start = policy.base
        fired.append((ReasonCode.STANDARD, "standard request"))

    level = max(int(Priority.P0), int(start) - raises)  # clamp: raises never go past P0
    if threat:
        level = min(level, int(policy.threat_floor))
    if safety:
        level = min(level, int(policy.safety_priority))
    return PriorityDecision(
        priority=Priority(level),
        reasons=tuple(text for _, text in fired),
        codes=tuple(code for code, _ in fired),
    )
