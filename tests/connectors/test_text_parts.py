"""The shared splitter and quick-reply rendering: lossless, within the limit in each channel's unit."""

from __future__ import annotations

import pytest

from connectors.text_parts import split_text, utf8_bytes, utf16_units, with_numbered_options
from gateway.models import Channel, CustomerRef, OutboundMessage, QuickReply


@pytest.mark.parametrize("cost", [utf8_bytes, utf16_units])
@pytest.mark.parametrize("text", ["", "短", "第一段。" * 300 + "\n\n" + "第二段，" * 300, "😀" * 700,
                                  "👨‍👩‍👧‍👦" * 200, "e\u0301" * 900, "a b " * 600])
def test_split_is_lossless_within_the_limit_and_keeps_glyphs(cost: object, text: str) -> None:
    chunks = split_text(text, 1000, cost)  # type: ignore[arg-type]
    assert "".join(chunks) == text
    assert all(0 < sum(cost(ch) for ch in c) <= 1000 for c in chunks)  # type: ignore[operator]
    assert all(c[0] not in "\u200d\u0301\ufe0f" for c in chunks[1:])


@pytest.mark.parametrize(("text", "expected"), [
    ("a" * 60 + "\n\n" + "b" * 30 + "\n" + "c" * 20, ["a" * 60 + "\n\n", "b" * 30 + "\n" + "c" * 20]),
    ("好" * 60 + "。" + "b" * 50, ["好" * 60 + "。", "b" * 50]),
    ("好" * 60 + "，" + "b" * 50, ["好" * 60 + "，", "b" * 50]),
    ("x" * 150, ["x" * 100, "x" * 50]),  # no break anywhere: a hard cut
])
def test_split_prefers_the_nicest_break_in_the_second_half(text: str, expected: list[str]) -> None:
    assert split_text(text, 100, utf16_units) == expected


def test_units() -> None:
    assert [utf8_bytes(c) for c in "a¢中😀"] == [1, 2, 3, 4]
    assert [utf16_units(c) for c in "a中😀"] == [1, 1, 2]


def test_numbered_options() -> None:
    msg = OutboundMessage(channel=Channel.WECHAT, conversation_key="o1",
                          recipient=CustomerRef(channel=Channel.WECHAT, external_id="o1"), text="请选择",
                          quick_replies=(QuickReply(title="退货", payload="/returns"),
                                         QuickReply(title="换货", payload="/exchange")))
    assert with_numbered_options(msg) == "请选择\n\n1. 退货\n2. 换货"
    assert with_numbered_options(msg.model_copy(update={"quick_replies": ()})) == "请选择"
