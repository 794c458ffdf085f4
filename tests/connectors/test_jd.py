"""JD JOS adapter: request signing (official vector), the time-window cursor, chat-log parsing, error
classification and the HTTP round trip against a local JOS fake that checks signatures itself."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakes.jd_jos import PUSH, FakeJos, jd_signature

from connectors.base import PayloadError
from connectors.feed import FeedError
from connectors.jd import CHATLOG, JdAdapter, chatlog_external_id, classify_jd_error, response_key
from connectors.marketplace_sign import jd_param_json
from gateway.models import Channel, CustomerRef, OutboundMessage

NOW = datetime(2024, 5, 1, 2, 0, 0, tzinfo=UTC)  # 10:00:00 GMT+8
NOW_S = int(NOW.timestamp())


def adapter(**kw: Any) -> JdAdapter:
    args: dict[str, Any] = {"app_key": "yourappkey", "app_secret": "yourappSecret", "access_token": "yourtoken",
                            "clock": lambda: NOW, **kw}
    return JdAdapter(**args)


def line(**kw: Any) -> dict[str, Any]:
    return {"content": "开票在哪开", "sid": "14a75177c5464636435c63b3da4efcd9", "waiterSend": False,
            "time": 1642735203000, "skuId": 10026084786191, "customer": "turtle081025", "waiter": "果麦洁洁",
            "channel": 11, **kw}


# ---- request building --------------------------------------------------------------------------------

def test_signed_params_reproduce_the_official_vector() -> None:
    """open.jd.com dev guide example (spec §5.4): our param JSON and sign match it byte for byte."""
    param_json = jd_param_json({"end_date": None, "optional_fields": None, "order_state": "WAIT_SELLER_STOCK_OUT",
                                "page": "1", "page_size": "200", "start_date": None})
    assert param_json == ('{"end_date":null,"optional_fields":null,"order_state":"WAIT_SELLER_STOCK_OUT",'
                          '"page":"1","page_size":"200","start_date":null}')
    params = adapter().signed_params("jingdong.pop.order.search", param_json, "2021-05-07 09:20:39.683+0800")
    assert params["sign"] == "D70825340F4084360B9362B60DFD7930"


def test_request_params_use_china_time_and_sign_what_is_sent() -> None:
    params = adapter().request_params(CHATLOG, {"page": 1, "customer": "张三"}, NOW)
    assert params["timestamp"] == "2024-05-01 10:00:00" and params["v"] == "2.0"
    assert params["360buy_param_json"] == '{"customer":"张三","page":1}'
    assert params["sign"] == jd_signature(params, "yourappSecret")


def test_response_key_uses_jds_spelling() -> None:
    assert response_key(CHATLOG) == "jingdong_im_pop_chatlog_get_responce"


# ---- the time window ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("cursor", "window"), [
    (None, (NOW_S - 600 - 120, NOW_S)),  # first start: look back, minus the overlap
    (str(NOW_S - 30), (NOW_S - 30 - 120, NOW_S)),  # normal round: overlap before the stored end
    (str(NOW_S - 86400), (NOW_S - 86400 - 120, NOW_S - 86400 + 3600)),  # catching up after an outage
    (str(NOW_S + 50), (NOW_S - 120, NOW_S)),  # cursor ahead of our clock: never an inverted window
    ("garbage", (NOW_S - 600 - 120, NOW_S)),
])
def test_window(cursor: str | None, window: tuple[int, int]) -> None:
    assert adapter().window(cursor, NOW) == window


def test_chatlog_query() -> None:
    query = adapter(waiter="果麦洁洁", page_size=50).chatlog_query(NOW_S - 60, NOW_S, 2)
    assert query == {"startTime": "2024-05-01 09:59:00", "endTime": "2024-05-01 10:00:00", "page": 2,
                     "pageSize": 50, "waiter": "果麦洁洁"}
    assert "waiter" not in adapter().chatlog_query(0, 1, 1)


# ---- parsing -----------------------------------------------------------------------------------------

def test_buyer_line_becomes_message() -> None:
    [msg] = adapter().parse_feed(line())
    assert msg.channel is Channel.JD and msg.conversation_key == "turtle081025"
    assert msg.customer.external_id == "turtle081025" and msg.text == "开票在哪开"
    assert msg.sent_at == datetime(2022, 1, 21, 3, 20, 3, tzinfo=UTC)
    assert msg.external_message_id == chatlog_external_id(line())
    assert msg.raw["skuId"] == 10026084786191


def test_external_id_is_stable_and_distinguishes_lines() -> None:
    assert chatlog_external_id(line()) == chatlog_external_id(dict(line()))
    assert chatlog_external_id(line()) != chatlog_external_id(line(content="电子票嘛"))
    assert chatlog_external_id(line()) != chatlog_external_id(line(time=1642735204000))


@pytest.mark.parametrize("item", [line(waiterSend=True, content="您好"), line(content="   ")])
def test_shop_lines_and_empty_lines_are_ignored(item: dict[str, Any]) -> None:
    assert adapter().parse_feed(item) == []


@pytest.mark.parametrize("item", [
    ["not", "an", "object"], line(customer=None), line(customer=""), line(content=None),
    line(time="later"), line(customer="x" * 300),
])
def test_junk_raises_payload_error(item: Any) -> None:
    with pytest.raises(PayloadError):
        adapter().parse_feed(item)


# ---- errors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("err", "retry_after"), [
    ({"code": "12", "zh_desc": "无效签名", "en_desc": "Invalid Signature"}, None),
    ({"code": "19", "zh_desc": "token已过期或者不存在，请重新授权访问", "en_desc": "Invalid access_token"}, None),
    ({"code": "8", "zh_desc": "非法的时间戳参数", "en_desc": "Invalid Timestamp"}, None),
    ({"code": "2", "zh_desc": "限制时间内调用失败次数", "en_desc": "App Call Limited"}, 60.0),
    ({"code": "70", "zh_desc": "调用频率超限"}, 60.0),
    ({"code": "66", "zh_desc": "服务繁忙，请稍后再试"}, 5.0),
    ({"code": "67", "en_desc": "Remote service timeout"}, 5.0),
    ({}, None),
])
def test_classify_jd_error(err: dict[str, Any], retry_after: float | None) -> None:
    error = classify_jd_error("m", err)
    assert error.retry_after == retry_after and error.permanent is (retry_after is None)


# ---- replies -----------------------------------------------------------------------------------------

def outbound(pin: str = "turtle081025", text: str = "亲，电子发票已开") -> OutboundMessage:
    return OutboundMessage(channel=Channel.JD, conversation_key=pin,
                           recipient=CustomerRef(channel=Channel.JD, external_id=pin), text=text)


def test_push_params() -> None:
    out = outbound()
    params = adapter(waiter="果麦洁洁", push_param1={"aspid": "a1", "accessid": "x1"}).push_params(out)
    assert params == {
        "param1": {"aspid": "a1", "accessid": "x1", "accessToken": "yourtoken"},
        "param2": {"upid": out.message_id, "toPin": "turtle081025", "fromPin": "果麦洁洁",
                   "body": {"type": "text", "content": "亲，电子发票已开"}},
    }


# ---- over HTTP against the fake ----------------------------------------------------------------------

@pytest.fixture
async def fake() -> AsyncIterator[FakeJos]:
    jos = FakeJos(app_key="ak", app_secret="sk", access_token="tok")
    await jos.start()
    yield jos
    await jos.stop()


def live_adapter(fake: FakeJos, **kw: Any) -> JdAdapter:
    args: dict[str, Any] = {"app_key": "ak", "app_secret": "sk", "access_token": "tok", "api_base": fake.url,
                            "waiter": fake.waiter, "poll_interval_s": 0, **kw}
    return JdAdapter(**args)


async def test_pull_reads_every_page_and_moves_the_cursor(fake: FakeJos) -> None:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    for n in range(5):
        fake.say(f"buyer{n}", f"问题{n}", at_ms=now_ms - 60_000 + n)
    fake.log.append({**line(), "time": now_ms - 30_000, "waiterSend": True, "waiter": fake.waiter})
    jd = live_adapter(fake, page_size=2)
    try:
        batch = await jd.pull(None)
        assert sorted(m.text for m in batch.messages) == [f"问题{n}" for n in range(5)]
        assert batch.ignored == 1 and batch.receipts == ()
        assert batch.cursor is not None and abs(int(batch.cursor) - now_ms // 1000) <= 2
        assert len(fake.calls_of(CHATLOG)) == 3  # 6 lines, 2 per page
        again = await jd.pull(batch.cursor)  # the overlap re-reads them: dedupe's job, same ids
        assert sorted(m.message_id for m in again.messages) == sorted(m.message_id for m in batch.messages)
    finally:
        await jd.aclose()


async def test_old_lines_outside_the_window_are_not_read(fake: FakeJos) -> None:
    fake.say("old", "上周的问题", at_ms=int((datetime.now(UTC) - timedelta(days=7)).timestamp() * 1000))
    jd = live_adapter(fake)
    try:
        assert (await jd.pull(None)).messages == ()
    finally:
        await jd.aclose()


@pytest.mark.parametrize(("kw", "needle"), [
    ({"app_secret": "wrong"}, "Invalid Signature"),
    ({"access_token": "expired"}, "Invalid access_token"),
])
async def test_refusals_are_permanent(fake: FakeJos, kw: dict[str, Any], needle: str) -> None:
    jd = live_adapter(fake, **kw)
    try:
        with pytest.raises(FeedError) as info:
            await jd.pull(None)
        assert info.value.permanent and needle in str(info.value)
        result = await jd.send(outbound())
        assert not result.ok and result.permanent and needle in (result.error or "")
    finally:
        await jd.aclose()


async def test_push_round_trip(fake: FakeJos) -> None:
    jd = live_adapter(fake, push_param1={"aspid": "asp", "accessid": "acc", "source": "huiliu"})
    try:
        out = outbound()
        result = await jd.send(out)
        assert result.ok and result.external_ids == (out.message_id,)
        [call] = fake.calls_of(PUSH)
        assert call.params["sign"] == jd_signature(call.params, "sk")
        assert json.loads(call.params["360buy_param_json"]) == jd.push_params(out)
        assert fake.pushes[0]["param2"]["body"]["content"] == "亲，电子发票已开"
    finally:
        await jd.aclose()
