"""Fixed customer-facing texts of the bot, Chinese first, English for customers who write English."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")

HUMAN_FOLLOW_UP = {
    "zh": "抱歉，这个问题我暂时无法准确回答。已为您转接人工客服，客服会尽快回复您，请稍候。",
    "en": "Sorry, I can't answer that reliably. A human agent will follow up with you shortly.",
}
ATTACHMENT_ONLY = {
    "zh": "已收到您发送的文件/图片，已转交人工客服查看，请稍候。",
    "en": "We received your file. A human agent will look at it and reply shortly.",
}


_LATIN = re.compile(r"[A-Za-z]")


def language_of(text: str, default: str = "zh") -> str:
    """'zh' when the text has a CJK ideograph, 'en' when it has Latin letters, else ``default``
    (an order number or "?" says nothing about the customer's language)."""
    if _CJK.search(text):
        return "zh"
    return "en" if _LATIN.search(text) else default
