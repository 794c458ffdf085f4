"""Taobao/Tmall TOP adapter: request signing (official vector), error classification, TMC parsing, and
the HTTP round trip against a local TOP fake that checks signatures itself."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fakes.taobao_top import FakeTop, top_signature

from connectors.base import PayloadError
from connectors.feed import FeedError
from connectors.marketplace_common import cst_timestamp
from connectors.taobao import CONSUME, TaobaoAdapter, classify_top_error, response_key, tmc_messages
from gateway.models import Channel, CustomerRef, OutboundMessage, QuickReply

TOPIC = "test_wangwang_ChatMessage"
NOON_CST = datetime(2016, 1, 1, 4, 0, 0, tzinfo=UTC)  # 2016-01-01 12:00:00 GMT+8


def adapter(**kw: Any) -> TaobaoAdapter:
    args: dict[str, Any] = {"app_key": "12345678", "app_secret": "helloworld", "session": "test",
                            "chat_topics": (TOPIC,), "clock": lambda: NOON_CST, **kw}
    return TaobaoAdapter(**args)


def tmc(content: dict[str, Any] | str, *, topic: str = TOPIC, msg_id: int = 2160000000000000123) -> dict[str, Any]:
    body = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return {"id": msg_id, "topic": topic, "content": body, "user_id": 2200000001, "user_nick": "旗舰店",
            "pub_time": "2024-05-01 10:00:00", "pub_app_key": "12497914"}


# ---- request building --------------------------------------------------------------------------------

def test_request_params_reproduce_the_official_vector() -> None:
    """TOP doc 101617: the same params must give the published sign, timestamp rendered in GMT+8."""
    params = adapter().request_params(
        "taobao.item.seller.get", {"fields": "num_iid,title,nick,price,num", "num_iid": "11223344"}, NOON_CST)
    assert params["timestamp"] == "2016-01-01 12:00:00"
    assert params["sign"] == "66987CB115214E59E6EC978214934FB8"
    assert {k: params[k] for k in ("format", "v", "sign_method", "session")} == {
        "format": "json", "v": "2.0", "sign_method": "md5", "session": "test"}


@pytest.mark.parametrize("method", ["md5", "hmac", "hmac-sha256"])
def test_request_params_sign_with_each_method(method: Any) -> None:
    params = adapter(sign_method=method).request_params(CONSUME, {"quantity": 100}, NOON_CST)
    assert params["sign_method"] == method
    assert params["sign"] == top_signature(params, "helloworld", method)  # the fake's own implementation


@pytest.mark.parametrize(("now", "text"), [
    (datetime(2024, 12, 31, 16, 30, 5, tzinfo=UTC), "2025-01-01 00:30:05"),
    (datetime(2024, 6, 1, 0, 0, 0, tzinfo=UTC), "2024-06-01 08:00:00"),
])
def test_timestamp_is_china_time(now: datetime, text: str) -> None:
    assert cst_timestamp(now) == text


def test_response_key() -> None:
    assert response_key("taobao.tmc.messages.consume") == "tmc_messages_consume_response"
    assert response_key("alibaba.some.method") == "alibaba_some_method_response"


# ---- error classification ----------------------------------------------------------------------------

@pytest.mark.parametrize(("err", "retry_after"), [
    ({"code": 27, "msg": "Invalid session", "sub_code": "invalid-sessionkey"}, None),
    ({"code": 25, "msg": "Invalid signature"}, None),
    ({"code": 11, "msg": "Insufficient isv permissions", "sub_code": "isv.permission-api-package-empty"}, None),
    ({"code": 15, "msg": "Remote service error", "sub_code": "isv.invalid-parameter"}, None),
    ({"code": 41, "msg": "Invalid Arguments"}, None),
    ({"code": 15, "msg": "Remote service error", "sub_code": "isp.top-remote-connection-timeout"}, 5.0),
    ({"code": 15, "msg": "Remote service error"}, 5.0),
    ({"code": 10, "msg": "Service currently unavailable"}, 5.0),
    ({"code": 520, "msg": "System busy"}, 5.0),
    ({"code": 7, "msg": "App Call Limited", "sub_code": "accesscontrol.limited-by-app-access-count",
      "sub_msg": "This ban will last for 17 more seconds"}, 17.0),
    ({"code": 7, "msg": "App Call Limited"}, 60.0),
    ({"code": "8", "msg": "App Call Exceeds Limited Frequency"}, 60.0),
    ({}, None),
])
def test_classify_top_error(err: dict[str, Any], retry_after: float | None) -> None:
    error = classify_top_error("m", err)
    assert error.retry_after == retry_after
    assert error.permanent is (retry_after is None)
    result = error.delivery()
    assert not result.ok and result.permanent is error.permanent and result.retry_after == retry_after
    assert str(err.get("code", "?")) in (result.error or "")


def test_tmc_message_list_shapes() -> None:
    assert tmc_messages({"messages": {"tmc_message": [{"id": 1}]}}) == [{"id": 1}]
    assert tmc_messages({"messages": [{"id": 2}]}) == [{"id": 2}]
    assert tmc_messages({"request_id": "x"}) == []
    with pytest.raises(FeedError):
        tmc_messages({"messages": "nope"})


# ---- parsing -----------------------------------------------------------------------------------------

def test_chat_message_with_open_uid() -> None:
    [msg] = adapter().parse_feed(tmc({"buyer_open_uid": "AAEb1uyer", "buyer_nick": "t**1", "content": "怎么退货",
                                      "send_time": 1714528800000}))
    assert msg.channel is Channel.TAOBAO
    assert msg.external_message_id == "tmc:2160000000000000123"
    assert msg.conversation_key == "2200000001:AAEb1uyer"
    assert msg.customer.external_id == "AAEb1uyer" and msg.customer.display_name == "t**1"
    assert msg.text == "怎么退货"
    assert msg.sent_at == datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
    assert msg.raw["content"].startswith("{")  # the platform payload is kept whole


def test_security_uid_and_nick_fallback_and_pub_time() -> None:
    [by_suid] = adapter().parse_feed(tmc({"security_uid": "S-1", "text": "在吗"}))
    assert by_suid.customer.external_id == "S-1"
    assert by_suid.sent_at == datetime(2024, 5, 1, 2, 0, tzinfo=UTC)  # TMC pub_time, GMT+8
    [by_nick] = adapter().parse_feed(tmc({"from_nick": "老顾客", "content": "hello"}))
    assert by_nick.customer.external_id == "nick:老顾客"


def test_image_message_becomes_attachment() -> None:
    [msg] = adapter().parse_feed(tmc({"open_uid": "U1", "msg_type": "image", "pic_url": "https://img.example/1.jpg"}))
    assert msg.text == "" and msg.attachments[0].kind == "image"


@pytest.mark.parametrize("content", [
    {"open_uid": "U1", "content": "我们的回复", "from_role": "seller"},
    {"open_uid": "U1", "content": "echo", "direction": "seller_to_buyer"},
    {"open_uid": "U1", "content": "echo", "from_seller": True},
    {"open_uid": "U1", "msg_type": "typing"},
])
def test_shop_side_and_empty_lines_are_ignored(content: dict[str, Any]) -> None:
    assert adapter().parse_feed(tmc(content)) == []


def test_other_topics_are_ignored() -> None:
    assert adapter().parse_feed(tmc({"tid": 1}, topic="taobao_trade_TradeCreate")) == []


@pytest.mark.parametrize("item", [
    "not an object",
    {"topic": TOPIC, "content": "{}"},  # no id
    tmc("{not json"),
    tmc("[1, 2]"),
    tmc({"content": "no buyer"}),
    tmc({"open_uid": "U1", "content": "x", "send_time": "yesterday"}),
    tmc({"open_uid": "U" * 300, "content": "id too long"}),
    {**tmc({"open_uid": "U1", "content": "x"}), "user_id": None, "user_nick": None},
])
def test_junk_raises_payload_error(item: Any) -> None:
    with pytest.raises(PayloadError):
        adapter().parse_feed(item)


# ---- replies -----------------------------------------------------------------------------------------

def outbound(external_id: str, text: str = "您好", **kw: Any) -> OutboundMessage:
    return OutboundMessage(channel=Channel.TAOBAO, conversation_key=f"2200000001:{external_id}",
                           recipient=CustomerRef(channel=Channel.TAOBAO, external_id=external_id), text=text, **kw)


def test_send_params() -> None:
    out = outbound("AAE1", quick_replies=(QuickReply(title="退货", payload="r"), QuickReply(title="换货", payload="e")))
    params = adapter().send_params(out)
    assert params["buyer_open_uid"] == "AAE1" and params["client_msg_id"] == out.message_id
    assert params["content"] == "您好\n\n1. 退货\n2. 换货"
    assert adapter().send_params(outbound("nick:老顾客"))["buyer_nick"] == "老顾客"


async def test_send_without_method_is_permanent() -> None:
    result = await adapter().send(outbound("AAE1"))
    assert not result.ok and result.permanent and "TAOBAO_SEND_METHOD" in (result.error or "")


# ---- over HTTP against the fake ----------------------------------------------------------------------

@pytest.fixture
async def fake() -> AsyncIterator[FakeTop]:
    top = FakeTop(app_key="12345678", app_secret="s3cret", session="sess-1", send_method="test.chat.send",
                  groups=frozenset({"huiliu"}), visibility_timeout_s=0.3)
    await top.start()
    yield top
    await top.stop()


def live_adapter(fake: FakeTop, **kw: Any) -> TaobaoAdapter:
    args: dict[str, Any] = {"app_key": "12345678", "app_secret": "s3cret", "session": "sess-1",
                            "chat_topics": (TOPIC,), "api_base": fake.url, "tmc_group": "huiliu",
                            "send_method": "test.chat.send", "idle_wait_s": 0.01, **kw}
    return TaobaoAdapter(**args)


async def test_consume_and_confirm_round_trip(fake: FakeTop) -> None:
    chat = fake.publish(TOPIC, {"buyer_open_uid": "AAE1", "content": "在吗"})
    order = fake.publish("taobao_trade_TradeCreate", {"tid": 42})
    junk = fake.publish(TOPIC, "{oops")
    top = live_adapter(fake, sign_method="hmac-sha256")
    try:
        batch = await top.pull(None)
        assert [m.text for m in batch.messages] == ["在吗"]
        assert batch.messages[0].external_message_id == f"tmc:{chat}"  # 64-bit id kept exactly
        assert batch.ignored == 1 and [f.item_id for f in batch.failures] == [f"tmc:{junk}"]
        assert sorted(batch.receipts) == sorted(str(i) for i in (chat, order, junk))
        await top.confirm(batch)
        assert sorted(fake.confirmed) == sorted([chat, order, junk])
        assert (await top.pull(None)).empty
    finally:
        await top.aclose()


async def test_unconfirmed_messages_come_back(fake: FakeTop) -> None:
    chat = fake.publish(TOPIC, {"open_uid": "AAE1", "content": "在吗"})
    top = live_adapter(fake)
    try:
        first = await top.pull(None)
        assert (await top.pull(None)).empty  # hidden while it is being processed
        fake.queue[chat].visible_at = 0  # the visibility timeout ran out
        again = await top.pull(None)
        assert [m.message_id for m in again.messages] == [m.message_id for m in first.messages]
        assert fake.deliveries(chat) == 2
    finally:
        await top.aclose()


@pytest.mark.parametrize(("kw", "needle"), [
    ({"app_secret": "wrong"}, "Invalid signature"),
    ({"session": "expired"}, "Invalid session"),
    ({"app_key": "99999999"}, "Invalid app Key"),
    ({"tmc_group": "nope"}, "isv.invalid-parameter"),
])
async def test_refusals_are_permanent_feed_errors(fake: FakeTop, kw: dict[str, Any], needle: str) -> None:
    top = live_adapter(fake, **kw)
    try:
        with pytest.raises(FeedError) as info:
            await top.pull(None)
        assert info.value.permanent and needle in str(info.value)
    finally:
        await top.aclose()


async def test_send_round_trip_and_errors(fake: FakeTop) -> None:
    top = live_adapter(fake)
    try:
        ok = await top.send(outbound("AAE1", "亲，在的"))
        assert ok.ok and ok.external_ids == ("sent-1",)
        sent = fake.sent[0]
        assert sent["buyer_open_uid"] == "AAE1" and sent["content"] == "亲，在的"
        assert sent["sign"] == top_signature(sent, "s3cret", "md5")
        fake.fail_next("test.chat.send", 15, "Remote service error", "isp.service-unavailable")
        busy = await top.send(outbound("AAE1"))
        assert not busy.ok and not busy.permanent and busy.retry_after == 5.0
        fake.fail_next("test.chat.send", 27, "Invalid session", "invalid-sessionkey")
        gone = await top.send(outbound("AAE1"))
        assert gone.permanent and "Invalid session" in (gone.error or "")
    finally:
        await top.aclose()


async def test_unreachable_gateway_is_transient() -> None:
    top = TaobaoAdapter(app_key="k", app_secret="s", session="x", chat_topics=(TOPIC,), send_method="m",
                        api_base="http://127.0.0.1:9/router/rest", timeout_s=2)
    try:
        result = await top.send(outbound("AAE1"))
        assert not result.ok and not result.permanent and result.retry_after == 5.0
    finally:
        await top.aclose()
