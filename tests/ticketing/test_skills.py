"""Which skills a ticket needs: table-driven."""

from __future__ import annotations

import pytest

from gateway.models import Channel
from ticketing.priority import Tier
from ticketing.skills import SkillMap, required_skills, routable_skills, topic_skill

CASES = [
    # (intent, hit tags best first, language, channel, tier, safety, expected)
    ("order_status", [["payment"]], "zh", Channel.WEBCHAT, Tier.NORMAL, False, {"logistics"}),
    (None, [["物流", "快递"]], "zh", Channel.WEBCHAT, Tier.NORMAL, False, {"logistics"}),
    (None, [["handoff"], ["退款"]], "zh", Channel.TELEGRAM, Tier.NORMAL, False, {"returns"}),
    (None, [["invoice"]], "en", Channel.WEBCHAT, Tier.NORMAL, False, {"invoices", "lang:en"}),
    (None, [], "zh", Channel.WEBCHAT, Tier.VIP, False, {"vip"}),
    (None, [], "zh", Channel.WEBCHAT, Tier.NORMAL, False, set()),
    ("return_or_exchange", [["invoice"]], "en", Channel.WEBCHAT, Tier.VIP, False, {"returns", "lang:en", "vip"}),
    (None, [["invoice"]], "zh", Channel.WEBCHAT, Tier.NORMAL, True, {"appliances"}),  # safety wins
    ("greet", [["Shipping"]], "zh-CN", Channel.WEBCHAT, Tier.NORMAL, False, {"logistics"}),  # case, zh-CN
]


@pytest.mark.parametrize(("intent", "tags", "lang", "channel", "tier", "safety", "expected"), CASES)
def test_required_skills(intent: str | None, tags: list[list[str]], lang: str, channel: Channel, tier: Tier,
                         safety: bool, expected: set[str]) -> None:
    got = required_skills(intent=intent, hit_tags=tags, language=lang, channel=channel, tier=tier, safety=safety)
    assert got == frozenset(expected)


def test_channel_skill_and_custom_map() -> None:
    m = SkillMap(tags={"Kettle": "appliances"}, channels={Channel.TELEGRAM: "telegram"}, vip_skill=None)
    got = required_skills(intent=None, hit_tags=[["kettle"]], language="zh", channel=Channel.TELEGRAM,
                          tier=Tier.VIP, skill_map=m)
    assert got == {"appliances", "telegram"}
    assert topic_skill("unknown", [["nothing"]], m) is None


@pytest.mark.parametrize(("required", "held", "expected"), [
    ({"logistics", "vip"}, {"logistics", "returns"}, {"logistics"}),
    ({"lang:ja"}, {"lang:en"}, set()),
    (set(), {"x"}, set()),
    ({"a", "b"}, {"a", "b"}, {"a", "b"}),
])
def test_routable_skills_drop_what_nobody_holds(required: set[str], held: set[str], expected: set[str]) -> None:
    assert routable_skills(frozenset(required), frozenset(held)) == frozenset(expected)
