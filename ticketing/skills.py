"""Which agent skills a ticket needs, derived from the conversation (pure; the map is configuration).

Sources, in the order they are consulted: the dialogue intent, the tags of the knowledge articles the
bot considered (its retrieval hits), the customer's language, the channel and the customer tier. The
result is deliberately small -- at most one *topic* skill, plus language/VIP/channel skills -- because
routing requires an agent holding *all* of a ticket's skills: every extra skill shrinks the pool.

The topic is the first of: the intent's skill, then the skill of the best hit whose tags map to one.
Chinese is the default language and needs no skill; any other language needs ``lang:<code>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway.models import Channel
from ticketing.priority import Tier

LOGISTICS = "logistics"
RETURNS = "returns"
INVOICES = "invoices"
APPLIANCES = "appliances"
BILLING = "billing"
VIP = "vip"

_TAG_SKILLS: dict[str, str] = {
    **dict.fromkeys(("shipping", "logistics", "物流", "快递", "发货", "courier", "tracking", "remote-area",
                     "shipping-fee", "运费", "address", "地址", "signed"), LOGISTICS),
    **dict.fromkeys(("refund", "退款", "return", "退货", "exchange", "换货", "after-sales", "damaged", "破损",
                     "missing", "少件", "wrong-item", "发错货", "cancel", "取消订单"), RETURNS),
    **dict.fromkeys(("invoice", "发票"), INVOICES),
    **dict.fromkeys(("warranty", "保修", "repair", "维修", "product", "specs", "规格"), APPLIANCES),
    **dict.fromkeys(("payment", "付款", "installment", "分期", "coupon", "优惠券", "price-protection", "价保",
                     "points", "积分", "membership"), BILLING),
}
_INTENT_SKILLS: dict[str, str] = {
    "order_status": LOGISTICS,
    "inform_order_number": LOGISTICS,
    "return_or_exchange": RETURNS,
}


@dataclass(frozen=True, slots=True)
class SkillMap:
    """Tag/intent -> skill tables and the fixed skill rules. Defaults match the demo knowledge base."""

    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(dict(_TAG_SKILLS)))
    intents: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(dict(_INTENT_SKILLS)))
    channels: Mapping[Channel, str] = field(default_factory=lambda: MappingProxyType({}))
    default_language: str = "zh"
    vip_skill: str | None = VIP
    safety_skill: str | None = APPLIANCES  # "the kettle is smoking" needs someone who knows the products

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", MappingProxyType({k.lower(): v for k, v in self.tags.items()}))
        object.__setattr__(self, "intents", MappingProxyType(dict(self.intents)))
        object.__setattr__(self, "channels", MappingProxyType(dict(self.channels)))


def topic_skill(intent: str | None, hit_tags: Sequence[Iterable[str]], skill_map: SkillMap) -> str | None:
    """The one topic skill: the intent's, else the first (best-scored) hit with a mapped tag."""
    if intent and (skill := skill_map.intents.get(intent)):
        return skill
    for tags in hit_tags:
        for tag in tags:
            if skill := skill_map.tags.get(tag.lower()):
                return skill
    return None


def required_skills(
    *,
    intent: str | None,
    hit_tags: Sequence[Iterable[str]],
    language: str,
    channel: Channel | None,
    tier: Tier,
    safety: bool = False,
    skill_map: SkillMap | None = None,
) -> frozenset[str]:
    """Skills a ticket needs (see the module docstring). ``hit_tags`` is best hit first."""
    m = skill_map or SkillMap()
    skills: set[str] = set()
    topic = m.safety_skill if safety and m.safety_skill else topic_skill(intent, hit_tags, m)
    if topic:
        skills.add(topic)
    lang = (language or m.default_language).lower()[:2]
    if lang != m.default_language:
        skills.add(f"lang:{lang}")
    if channel is not None and (channel_skill := m.channels.get(channel)):
        skills.add(channel_skill)
    if tier is Tier.VIP and m.vip_skill:
        skills.add(m.vip_skill)
    return frozenset(skills)


def routable_skills(required: frozenset[str], held_by_someone: frozenset[str]) -> frozenset[str]:
    """Drop skills that no registered agent holds at all (keeping language skills only if held).

    Without this a ticket needing a skill nobody on the team has would wait forever; with it the ticket
    goes to the best agent available and the original skills stay on the ticket for reporting.
    """
    return frozenset(s for s in required if s in held_by_someone)
