"""Per-channel outbound limits: which rates and reply window apply to one reply (pure, table-tested).

``limits_for(message, policy)`` is the whole table. The Redis side (``gateway.outbound_limiter``) only
enforces what it returns, and the delivery worker only asks it — so every rule lives here:

========================  =========================================================================
channel                   limits
========================  =========================================================================
telegram                  1 msg/s per chat (groups: 20 msg/min), 30 msg/s for the bot overall;
                          a long reply counts once per 4096-unit chunk (one ``sendMessage`` each)
wechat, wecom (kf)        reply window: at most 5 messages within 48 h of the customer's last message
                          (spec §1.5 / §2.2), a reply counting once per 2048-byte chunk; plus a
                          per-account rate of our own
email                     SMTP rate for the whole deployment (default 60/min)
webchat                   none (our own SSE outbox)
taobao, jd, pinduoduo,    a configurable per-channel rate (default 10/s)
webhook
========================  =========================================================================

Rates are GCRA parameters (an interval between sends and a burst); ``per_conversation`` marks the
rates that keep a conversation's replies in order, which the limiter treats specially (see there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from gateway.models import Channel, OutboundMessage

if TYPE_CHECKING:
    from gateway.config import Settings

TELEGRAM_CHUNK_UTF16 = 4096  # sendMessage's limit; a longer reply goes out as several messages
WECHAT_CHUNK_BYTES = 2048  # the WeChat OA and WeCom kf connectors split text at 2048 UTF-8 bytes
MAX_BACKOFF_S = 300.0  # transient failures without retry_after back off 2, 4, 8 ... up to 5 minutes


@dataclass(frozen=True, slots=True)
class Rate:
    """At most one send every ``interval_ms`` on ``scope``, with ``burst`` sends allowed back to back."""

    scope: str  # the key suffix shared by every sender counted together, e.g. "telegram:chat:42"
    interval_ms: int
    burst: int = 1
    per_conversation: bool = False

    @classmethod
    def per_second(cls, scope: str, n: int, *, per_conversation: bool = False) -> Rate:
        return cls(scope, math.ceil(1000 / n), 1, per_conversation)

    @classmethod
    def per_minute(cls, scope: str, n: int, *, per_conversation: bool = False) -> Rate:
        return cls(scope, math.ceil(60_000 / n), 1, per_conversation)


@dataclass(frozen=True, slots=True)
class ReplyWindow:
    """The platform answers a customer only ``max_replies`` times within ``seconds`` of their message."""

    seconds: int
    max_replies: int


@dataclass(frozen=True, slots=True)
class Limits:
    """Everything that limits one reply: rates to take ``cost`` units from, and a reply window."""

    rates: tuple[Rate, ...] = ()
    window: ReplyWindow | None = None
    cost: int = 1


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """The numbers behind the table, from ``Settings`` (``OUTBOUND_*`` variables)."""

    telegram_per_chat_per_s: int = 1
    telegram_group_per_min: int = 20
    telegram_global_per_s: int = 30
    wechat_per_s: int = 20
    reply_window_h: int = 48
    reply_window_max: int = 5
    smtp_per_min: int = 60
    default_per_s: int = 10
    max_inline_wait_ms: int = 2000
    max_attempts: int = 8
    max_age_s: int = 6 * 3600

    @classmethod
    def from_settings(cls, s: Settings) -> OutboundPolicy:
        return cls(
            telegram_per_chat_per_s=s.outbound_telegram_per_chat_per_s,
            telegram_group_per_min=s.outbound_telegram_group_per_min,
            telegram_global_per_s=s.outbound_telegram_global_per_s,
            wechat_per_s=s.outbound_wechat_per_s,
            reply_window_h=s.outbound_reply_window_h,
            reply_window_max=s.outbound_reply_window_max,
            smtp_per_min=s.outbound_smtp_per_min,
            default_per_s=s.outbound_default_per_s,
            max_inline_wait_ms=s.outbound_max_inline_wait_ms,
            max_attempts=s.outbound_max_attempts,
            max_age_s=s.outbound_max_age_s,
        )


def telegram_chunks(text: str) -> int:
    """How many ``sendMessage`` calls a text needs (the connector splits at 4096 UTF-16 units)."""
    units = len(text.encode("utf-16-le")) // 2
    return max(1, math.ceil(units / TELEGRAM_CHUNK_UTF16))


def wechat_chunks(msg: OutboundMessage) -> int:
    """About how many messages a WeChat/WeCom reply takes (each one counts against the quota of 5):
    the text plus quick replies rendered as numbered options, per 2048 bytes. The connectors prefer
    sentence breaks, so a long reply may need one more; the platform's 45047 then still catches it."""
    options = sum(len(f"\n{i}. {q.title}".encode()) for i, q in enumerate(msg.quick_replies, 1))
    size = len(msg.text.encode()) + (options + 1 if options else 0)
    return max(1, math.ceil(size / WECHAT_CHUNK_BYTES))


def limits_for(msg: OutboundMessage, policy: OutboundPolicy) -> Limits:
    """The limits that apply to sending ``msg`` (see the module table)."""
    channel = msg.channel
    if channel is Channel.WEBCHAT:
        return Limits()
    if channel is Channel.TELEGRAM:
        chat = Rate.per_second(f"telegram:chat:{msg.conversation_key}", policy.telegram_per_chat_per_s,
                               per_conversation=True)
        if msg.conversation_key.startswith("-"):  # negative chat ids are groups: 20/min per group
            group = Rate.per_minute(chat.scope, policy.telegram_group_per_min, per_conversation=True)
            chat = max(chat, group, key=lambda r: r.interval_ms)
        everyone = Rate.per_second("telegram:all", policy.telegram_global_per_s)
        return Limits((chat, everyone), cost=telegram_chunks(msg.text))
    if channel in (Channel.WECHAT, Channel.WECOM):
        window = ReplyWindow(policy.reply_window_h * 3600, policy.reply_window_max)
        return Limits((Rate.per_second(f"{channel.value}:all", policy.wechat_per_s),), window=window,
                      cost=wechat_chunks(msg))
    if channel is Channel.EMAIL:
        return Limits((Rate.per_minute("email:smtp", policy.smtp_per_min),))
    return Limits((Rate.per_second(f"{channel.value}:all", policy.default_per_s),))


def window_closed(last_customer_at: datetime | None, now: datetime, window: ReplyWindow) -> str | None:
    """Why a reply may not be sent in the window (None: it may). ``last_customer_at``: when the
    customer last wrote (None: never)."""
    if last_customer_at is None:
        return "the customer has not written in this conversation, so the platform allows no reply"
    if (now - last_customer_at).total_seconds() > window.seconds:
        hours = window.seconds / 3600
        return f"reply window closed: more than {hours:g} h since the customer's last message"
    return None


def retry_delay_s(failures: int, retry_after: float | None) -> float:
    """When to try again after the ``failures``-th transient failure: the channel's ``retry_after`` if
    it gave one, else exponential back-off from 2 s."""
    if retry_after is not None and retry_after >= 0:
        return float(retry_after)
    return min(MAX_BACKOFF_S, 2.0 ** max(1, failures))


def give_up_reason(failures: int, age_s: float, policy: OutboundPolicy) -> str | None:
    """Why a transiently failing reply is abandoned (and handed to an agent), or None to retry."""
    if failures >= policy.max_attempts:
        return f"gave up after {failures} attempts"
    if age_s > policy.max_age_s:
        return f"gave up: the reply is {age_s / 3600:.1f} h old (limit {policy.max_age_s / 3600:g} h)"
    return None
