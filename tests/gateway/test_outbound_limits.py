"""The per-channel outbound limit table and the retry rules (pure, table-driven)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.config import ConfigError, Settings
from gateway.models import Channel, CustomerRef, OutboundMessage, QuickReply
from gateway.outbound_limits import (
    Limits,
    OutboundPolicy,
    Rate,
    ReplyWindow,
    give_up_reason,
    limits_for,
    retry_delay_s,
    telegram_chunks,
    wechat_chunks,
    window_closed,
)

POLICY = OutboundPolicy()
NOW = datetime(2024, 11, 11, 12, 0, tzinfo=UTC)


def out(channel: Channel, key: str = "c1", text: str = "好的") -> OutboundMessage:
    return OutboundMessage(channel=channel, conversation_key=key, text=text,
                           recipient=CustomerRef(channel=channel, external_id="u1"))


@pytest.mark.parametrize(("channel", "key", "text", "expected"), [
    (Channel.WEBCHAT, "v_abc", "hi", Limits()),
    (Channel.TELEGRAM, "42", "hi", Limits((Rate("telegram:chat:42", 1000, 1, True), Rate("telegram:all", 34)))),
    # groups (negative chat ids): 20 per minute is stricter than 1 per second
    (Channel.TELEGRAM, "-1001", "hi", Limits((Rate("telegram:chat:-1001", 3000, 1, True), Rate("telegram:all", 34)))),
    # a reply longer than 4096 UTF-16 units goes out as several sendMessage calls
    (Channel.TELEGRAM, "42", "x" * 4097, Limits((Rate("telegram:chat:42", 1000, 1, True), Rate("telegram:all", 34)),
                                                cost=2)),
    (Channel.WECHAT, "o_openid", "hi", Limits((Rate("wechat:all", 50),), window=ReplyWindow(48 * 3600, 5))),
    (Channel.WECOM, "wk1:wm2", "hi", Limits((Rate("wecom:all", 50),), window=ReplyWindow(48 * 3600, 5))),
    # each 2048 UTF-8 bytes is one more message of the customer's quota of 5
    (Channel.WECHAT, "o_openid", "好" * 683, Limits((Rate("wechat:all", 50),), window=ReplyWindow(48 * 3600, 5),
                                                    cost=2)),
    (Channel.EMAIL, "t1", "hi", Limits((Rate("email:smtp", 1000),))),
    (Channel.TAOBAO, "b1", "hi", Limits((Rate("taobao:all", 100),))),
    (Channel.JD, "b1", "hi", Limits((Rate("jd:all", 100),))),
    (Channel.PINDUODUO, "b1", "hi", Limits((Rate("pinduoduo:all", 100),))),
    (Channel.WEBHOOK, "taobao:b1", "hi", Limits((Rate("webhook:all", 100),))),
])
def test_limit_table(channel: Channel, key: str, text: str, expected: Limits) -> None:
    assert limits_for(out(channel, key, text), POLICY) == expected


def test_every_channel_has_a_row() -> None:
    for channel in Channel:
        limits = limits_for(out(channel), POLICY)
        assert channel is Channel.WEBCHAT or limits.rates, channel


@pytest.mark.parametrize(("env", "channel", "expected"), [
    ({"OUTBOUND_SMTP_PER_MIN": "30"}, Channel.EMAIL, Limits((Rate("email:smtp", 2000),))),
    ({"OUTBOUND_TELEGRAM_PER_CHAT_PER_S": "2", "OUTBOUND_TELEGRAM_GLOBAL_PER_S": "10"}, Channel.TELEGRAM,
     Limits((Rate("telegram:chat:c1", 500, 1, True), Rate("telegram:all", 100)))),
    ({"OUTBOUND_REPLY_WINDOW_H": "24", "OUTBOUND_REPLY_WINDOW_MAX": "3", "OUTBOUND_WECHAT_PER_S": "5"},
     Channel.WECHAT, Limits((Rate("wechat:all", 200),), window=ReplyWindow(24 * 3600, 3))),
    ({"OUTBOUND_DEFAULT_PER_S": "1"}, Channel.JD, Limits((Rate("jd:all", 1000),))),
])
def test_limits_follow_settings(env: dict[str, str], channel: Channel, expected: Limits) -> None:
    settings = Settings.from_env({"HUILIU_ADMIN_TOKEN": "t", "WEBCHAT_SECRET": "s" * 20, **env})
    assert limits_for(out(channel), OutboundPolicy.from_settings(settings)) == expected


@pytest.mark.parametrize(("name", "value"), [
    ("OUTBOUND_SMTP_PER_MIN", "0"), ("OUTBOUND_TELEGRAM_PER_CHAT_PER_S", "fast"), ("OUTBOUND_MAX_ATTEMPTS", "0"),
    ("OUTBOUND_MAX_INLINE_WAIT_MS", "-1"), ("OUTBOUND_MAX_AGE_S", "10"),
])
def test_bad_limit_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({"HUILIU_ADMIN_TOKEN": "t", "WEBCHAT_SECRET": "s" * 20, name: value})


@pytest.mark.parametrize(("text", "options", "chunks"), [
    ("好" * 682, (), 1), ("好" * 683, (), 2), ("a" * 2040, (), 1), ("a" * 2040, ("退货", "换货"), 2),
])
def test_wechat_chunks_count_bytes_with_options(text: str, options: tuple[str, ...], chunks: int) -> None:
    msg = OutboundMessage(channel=Channel.WECHAT, conversation_key="o1", text=text,
                          recipient=CustomerRef(channel=Channel.WECHAT, external_id="o1"),
                          quick_replies=tuple(QuickReply(title=t, payload=t) for t in options))
    assert wechat_chunks(msg) == chunks


@pytest.mark.parametrize(("text", "chunks"), [
    ("a", 1), ("a" * 4096, 1), ("a" * 4097, 2), ("😀" * 2048, 1), ("😀" * 2049, 2), ("a" * 3 * 4096, 3),
])
def test_telegram_chunks_count_utf16_units(text: str, chunks: int) -> None:
    assert telegram_chunks(text) == chunks


WINDOW = ReplyWindow(48 * 3600, 5)


@pytest.mark.parametrize(("last_in", "closed"), [
    (None, True),  # the customer never wrote: WeChat allows no customer-service message at all
    (NOW - timedelta(hours=47, minutes=59), False),
    (NOW - timedelta(hours=48), False),
    (NOW - timedelta(hours=48, seconds=1), True),
    (NOW - timedelta(seconds=5), False),
])
def test_reply_window(last_in: datetime | None, closed: bool) -> None:
    assert (window_closed(last_in, NOW, WINDOW) is not None) is closed


@pytest.mark.parametrize(("failures", "retry_after", "delay"), [
    (1, 7.0, 7.0), (5, 0.5, 0.5), (1, 0.0, 0.0),  # the channel's word wins
    (1, None, 2.0), (2, None, 4.0), (3, None, 8.0), (20, None, 300.0),  # else back off, capped
])
def test_retry_delay(failures: int, retry_after: float | None, delay: float) -> None:
    assert retry_delay_s(failures, retry_after) == delay


@pytest.mark.parametrize(("failures", "age_s", "gives_up"), [
    (1, 0, False), (7, 6 * 3600, False), (8, 0, True), (1, 6 * 3600 + 1, True),
])
def test_give_up(failures: int, age_s: float, gives_up: bool) -> None:
    assert (give_up_reason(failures, age_s, POLICY) is not None) is gives_up
