"""Pinduoduo adapter: message-service URL signing, frames and acks, chat parsing, POP request signing
(official vector), error classification, and the WebSocket/HTTP round trip against a local fake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fakes.pdd_pop import FakePdd, router_signature
from tests_helpers import eventually

from connectors.base import PayloadError
from connectors.feed import FeedError
from connectors.pinduoduo import (
    AckReceipt,
    PinduoduoAdapter,
    classify_pdd_error,
    heartbeat_frame,
    sign_body,
    ws_sign,
    ws_url,
)
from gateway.models import Channel, CustomerRef, OutboundMessage

CHAT = "pdd_chat_BuyerMessage"  # a test name: the real chat types are not public


def adapter(**kw: Any) -> PinduoduoAdapter:
    args: dict[str, Any] = {"client_id": "app", "client_secret": "secret", "access_token": "tok",
                            "chat_types": (CHAT,), **kw}
    return PinduoduoAdapter(**args)


def frame(content: dict[str, Any] | str, *, msg_type: str = CHAT, msg_id: Any = 9007199254740993,
          mall: int = 100) -> dict[str, Any]:
    body = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return {"id": msg_id, "commandType": "Common", "time": 1700000000123, "sendTime": 1700000000123,
            "message": {"type": msg_type, "mallID": mall, "content": body}}


# ---- signing and frames ------------------------------------------------------------------------------

def test_ws_sign_matches_the_community_reference() -> None:
    """The PHP port's test vector: base64 of the lowercase hex MD5 of app + 1700000000000 + secret."""
    assert ws_sign("app", 1700000000000, "secret") == "OTgxODMwNDI2NWZiN2NiNzA2NzIxOTI0ZjJlMDMxMjE="
    assert ws_sign("app", 1700000000000, "secret", "raw") == "mBgwQmX7fLcGchkk8uAxIQ=="


def test_ws_url_quotes_the_sign() -> None:
    sign = ws_sign("app", 1700000000000, "secret")
    assert ws_url("wss://message-api.pinduoduo.com/", "app", 1700000000000, sign) == (
        "wss://message-api.pinduoduo.com/message/app/1700000000000/OTgxODMwNDI2NWZiN2NiNzA2NzIxOTI0ZjJlMDMxMjE%3D")
    assert "%2F" in ws_url("wss://h", "a", 1, "ab/c+d=")


def test_pop_sign_reproduces_the_official_vector() -> None:
    params = {"type": "pdd.order.number.list.get", "client_id": "1", "page": "1", "page_size": "10",
              "data_type": "XML", "timestamp": "1480411125", "order_status": "1",
              "access_token": "asd78172s8ds9a921j9qqwda12312w1w21211"}
    assert sign_body(params, "testSecret")["sign"] == "E4DE3ED21002510DED352819E7AE6775"


def test_request_body() -> None:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    body = adapter().request_body("x.send", {"content": "好的"}, now)
    assert body["timestamp"] == str(int(now.timestamp()))  # seconds, not ms
    assert {k: body[k] for k in ("type", "client_id", "access_token", "data_type", "version")} == {
        "type": "x.send", "client_id": "app", "access_token": "tok", "data_type": "JSON", "version": "V1"}
    assert body["sign"] == router_signature(body, "secret")  # the fake's own implementation


def test_heartbeat_and_ack_frames() -> None:
    assert json.loads(heartbeat_frame(1700000000000)) == {"commandType": "HeartBeat", "time": 1700000000000}
    ack = json.loads(AckReceipt(9223372036854775807, 1700000000123, CHAT, 100).frame(1700000000999))
    assert ack == {"id": 9223372036854775807, "commandType": "Ack", "time": 1700000000999,
                   "sendTime": 1700000000123, "type": CHAT, "mallID": 100}


# ---- parsing -----------------------------------------------------------------------------------------

def test_chat_frame_becomes_message() -> None:
    [msg] = adapter().parse_feed(frame({"buyer_id": "b-1", "content": "什么时候发货", "send_time": 1700000000}))
    assert msg.channel is Channel.PINDUODUO and msg.external_message_id == "9007199254740993"
    assert msg.conversation_key == "100:b-1" and msg.customer.external_id == "b-1"
    assert msg.text == "什么时候发货" and msg.sent_at == datetime.fromtimestamp(1700000000, UTC)
    [by_frame_time] = adapter().parse_feed(frame({"open_uid": "o-1", "text": "在吗"}, msg_id="12"))
    assert by_frame_time.sent_at == datetime.fromtimestamp(1700000000.123, UTC)
    assert by_frame_time.external_message_id == "12"


@pytest.mark.parametrize("item", [
    frame({"tid": "1"}, msg_type="pdd_trade_TradeConfirmed"),
    frame({"buyer_id": "b", "content": "我们的回复", "from_role": "mall"}),
    frame({"buyer_id": "b", "content": ""}),
    {"commandType": "HeartBeat", "time": 1},
])
def test_non_chat_frames_are_ignored(item: dict[str, Any]) -> None:
    assert adapter().parse_feed(item) == []


@pytest.mark.parametrize("item", [
    "text",
    frame({"buyer_id": "b", "content": "x"}, msg_id=None),
    frame({"buyer_id": "b", "content": "x"}, msg_id=True),
    {**frame({}), "message": "nope"}, frame("{not json"), frame({"content": "no buyer"}),
    frame({"buyer_id": "b", "content": "x", "send_time": "soon"}),
])
def test_junk_raises_payload_error(item: Any) -> None:
    with pytest.raises(PayloadError):
        adapter().parse_feed(item)


@pytest.mark.parametrize(("err", "retry_after"), [
    ({"error_code": 10019, "error_msg": "access_token已过期", "sub_code": "access_token_invalid"}, None),
    ({"error_code": 10003, "error_msg": "签名校验失败"}, None),
    ({"error_code": 70031, "error_msg": "调用过于频繁，请调整调用频率"}, 60.0),
    ({"error_code": 52101, "error_msg": "服务繁忙"}, 5.0),
    ({"error_code": 50000, "error_msg": "system error", "sub_msg": "timeout"}, 5.0),
])
def test_classify_pdd_error(err: dict[str, Any], retry_after: float | None) -> None:
    assert classify_pdd_error("t", err).retry_after == retry_after


def outbound(text: str = "今天发货") -> OutboundMessage:
    return OutboundMessage(channel=Channel.PINDUODUO, conversation_key="100:b-1",
                           recipient=CustomerRef(channel=Channel.PINDUODUO, external_id="b-1"), text=text)


def test_send_params_and_unconfigured_send() -> None:
    out = outbound()
    assert adapter().send_params(out) == {"mall_id": "100", "buyer_id": "b-1", "content": "今天发货",
                                          "msg_type": "text", "request_id": out.message_id}


async def test_send_without_type_is_permanent() -> None:
    result = await adapter().send(outbound())
    assert not result.ok and result.permanent and "PDD_SEND_TYPE" in (result.error or "")


# ---- over WebSocket/HTTP against the fake ------------------------------------------------------------

@pytest.fixture
async def fake() -> AsyncIterator[FakePdd]:
    pdd = FakePdd(client_id="cid", client_secret="csecret", access_token="tok", send_type="test.chat.send")
    await pdd.start()
    yield pdd
    await pdd.stop()


def live_adapter(fake: FakePdd, **kw: Any) -> PinduoduoAdapter:
    args: dict[str, Any] = {"client_id": "cid", "client_secret": "csecret", "access_token": "tok",
                            "chat_types": (CHAT,), "ws_base": fake.ws_url, "api_base": fake.http_url,
                            "send_type": "test.chat.send", "heartbeat_s": 0.05, "receive_wait_s": 0.2, **kw}
    return PinduoduoAdapter(**args)


async def test_receive_ack_and_redeliver(fake: FakePdd) -> None:
    chat = await fake.publish(CHAT, 100, {"buyer_id": "b-1", "content": "在吗"})
    order = await fake.publish("pdd_trade_TradeConfirmed", 100, {"tid": "240501-1"})
    pdd = live_adapter(fake)
    try:
        batch = await pdd.pull(None)
        assert [m.text for m in batch.messages] == ["在吗"] and batch.ignored == 1
        assert [r.id for r in batch.receipts] == [chat, order]
        await eventually(lambda: fake.heartbeats >= 2)  # the heartbeat task runs on its own
        await pdd.suspend()  # dropped before acking: both come back on the next connection
        again = await pdd.pull(None)
        assert [m.message_id for m in again.messages] == [m.message_id for m in batch.messages]
        await pdd.confirm(again)
        await eventually(lambda: len(fake.acks) == 2)
        assert [a["id"] for a in fake.acks] == [chat, order] and len(fake.connections) == 2
        await pdd.suspend()
        assert (await pdd.pull(None)).messages == ()  # acked: not redelivered
    finally:
        await pdd.aclose()


async def test_server_close_raises_and_next_pull_reconnects(fake: FakePdd) -> None:
    pdd = live_adapter(fake)
    try:
        assert (await pdd.pull(None)).empty
        await fake.drop_connections()
        with pytest.raises(ConnectionError):
            for _ in range(20):
                await pdd.pull(None)
        await fake.publish(CHAT, 100, {"buyer_id": "b-2", "content": "hi"})
        assert [m.text for m in (await pdd.pull(None)).messages] == ["hi"]
    finally:
        await pdd.aclose()


@pytest.mark.parametrize("kw", [{"client_secret": "wrong"}, {"client_id": "other"}, {"ws_sign_digest": "raw"}])
async def test_bad_credentials_are_refused_permanently(fake: FakePdd, kw: dict[str, Any]) -> None:
    pdd = live_adapter(fake, **kw)
    try:
        with pytest.raises(FeedError) as info:
            await pdd.pull(None)
        assert info.value.permanent and "HTTP 401" in str(info.value) and fake.connections == []
    finally:
        await pdd.aclose()


async def test_send_round_trip_and_errors(fake: FakePdd) -> None:
    pdd = live_adapter(fake)
    try:
        assert (await pdd.send(outbound())).ok
        [sent] = fake.sent
        assert sent["buyer_id"] == "b-1" and sent["content"] == "今天发货" and sent["mall_id"] == "100"
        assert sent["sign"] == router_signature(sent, "csecret")
        for kw, needle in (({"access_token": "old"}, "10019"), ({"client_secret": "nope"}, "签名")):
            other = live_adapter(fake, **kw)
            refused = await other.send(outbound())
            await other.aclose()
            assert refused.permanent and needle in (refused.error or "")
    finally:
        await pdd.aclose()
