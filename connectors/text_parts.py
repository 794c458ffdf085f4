"""Fitting a reply into a channel's message limit, and quick replies for channels without buttons.

Channels count their limits in different units — Telegram in UTF-16 code units, WeChat and WeCom in
UTF-8 bytes — so the splitter takes the per-character cost. Chunks join back to the exact text, break
at the nicest place in the second half of a window (paragraph, line, sentence, clause, space), and a
hard cut never tears an emoji sequence or an accented letter in two. Not a connector: a pure helper
the connectors share (like ``wechat_crypto``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Final

from gateway.models import OutboundMessage

# Break preferences, best first; each separator stays at the end of the earlier chunk (lossless split).
BREAKS: Final = (("\n\n",), ("\n",), ("。", "！", "？", "…", "；", ". ", "! ", "? "), ("，", ", ", " "))


def utf16_units(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def utf8_bytes(ch: str) -> int:
    code = ord(ch)
    return 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4


def split_text(text: str, limit: int, cost: Callable[[str], int]) -> list[str]:
    """Chunks of at most ``limit`` (summing ``cost`` per character); ``"".join(chunks) == text``."""
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end, used = start, 0
        while end < len(text) and used + cost(text[end]) <= limit:
            used += cost(text[end])
            end += 1
        if end == len(text):
            chunks.append(text[start:])
            break
        cut = _break_at(text, start, end)
        chunks.append(text[start:cut])
        start = cut
    return chunks


def _break_at(text: str, start: int, end: int) -> int:
    window = text[start:end]
    # A "nicer" break that leaves a tiny chunk costs an extra message (of WeChat's 5, say).
    floor = len(window) // 2
    for group in BREAKS:
        pos = max(window.rfind(sep) + len(sep) if sep in window else -1 for sep in group)
        if pos > floor:
            return start + pos
    cut = end
    while cut - 1 > start and _continues(text[cut - 1], text[cut]):
        cut -= 1
    return cut


def _continues(before: str, ch: str) -> bool:
    """Does ``ch`` belong to the same glyph as ``before`` (ZWJ sequences, skin tones, variation
    selectors, combining accents)?"""
    return (before == "\u200d" or ch in "\u200d\ufe0e\ufe0f" or "\U0001f3fb" <= ch <= "\U0001f3ff"
            or unicodedata.combining(ch) != 0)


def with_numbered_options(message: OutboundMessage) -> str:
    """The reply text with its quick replies as numbered options — what every channel without buttons
    shows; the dialogue memory maps a typed number back to the option."""
    if not message.quick_replies:
        return message.text
    options = "\n".join(f"{i}. {r.title}" for i, r in enumerate(message.quick_replies, 1))
    return f"{message.text}\n\n{options}"
