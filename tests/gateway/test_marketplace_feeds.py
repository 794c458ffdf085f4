"""Marketplace feeds end to end: the whole product (real Redis, SQLite, bot and delivery workers) against
local fakes of Taobao TOP/TMC, JD JOS and the Pinduoduo message service speaking their wire formats.

Each marketplace: a buyer's chat -> one conversation message -> the bot's reply through the platform's
send call (signature checked by the fake); the platform's confirm/ack happens only after the message
is persisted; a loop killed between ingest and confirm -> the platform redelivers -> still one message
and one reply; bad credentials surface as an error status and log line, with nothing stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes.jd_jos import CHATLOG, FakeJos
from fakes.pdd_pop import FakePdd
from fakes.taobao_top import FakeTop
from tests_helpers import eventually, serve_live

from connectors.pinduoduo import PinduoduoAdapter
from gateway.config import Settings
from gateway.marketplace_feed import run_feed
from gateway.models import Channel
from gateway.runtime import Runtime
from knowledge_index.embedder import Embedder

TOPIC = "test_wangwang_ChatMessage"  # test names: the real chat topic/type names are not public
PDD_CHAT = "test_pdd_ChatMessage"
QUESTION = "怎么退货"


def return_answer(rt: Runtime) -> str:
    article = rt.services.kb.article("return-how")
    assert article is not None
    return article.answer


async def transcript(rt: Runtime, conversation_id: str) -> list[str]:
    return [line.direction for line in await rt.services.conversations.transcript(conversation_id)]


async def feed_status(rt: Runtime, feed: str) -> dict[str, str]:
    raw: Any = await rt.services.redis.hgetall(rt.services.keys.feed_status(feed))
    return {k.decode(): v.decode() for k, v in raw.items()}


def feed_task(rt: Runtime, name: str) -> asyncio.Task[Any]:
    return next(t for t in rt.tasks if t.get_name() == name)


async def kill(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def restart_feed(rt: Runtime, channel: Channel, **tuning: Any) -> None:
    """A new process's loop for the same account (stop_workers cancels it at teardown)."""
    coro = run_feed(rt.services, rt.services.connectors.get(channel), rt.stop, **tuning)
    rt.tasks.append(asyncio.create_task(coro, name=f"{channel.value}-feed-restarted"))


# ---- Taobao ------------------------------------------------------------------------------------------

@pytest.fixture
async def top() -> AsyncIterator[FakeTop]:
    fake = FakeTop(app_key="12345678", app_secret="top-s3cret", session="seller-session",
                   send_method="test.wangwang.send", groups=frozenset({"huiliu"}), visibility_timeout_s=0.5)
    await fake.start()
    yield fake
    await fake.stop()


def taobao_settings(settings: Settings, top: FakeTop, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "taobao_app_key": "12345678", "taobao_app_secret": "top-s3cret", "taobao_session": "seller-session",
        "taobao_api_base": top.url, "taobao_sign_method": "hmac-sha256", "taobao_tmc_group": "huiliu",
        "taobao_chat_topics": (TOPIC,), "taobao_send_method": "test.wangwang.send", "taobao_poll_idle_s": 0.05,
        **kw}
    return settings.with_(**values)


async def test_taobao_chat_is_answered_and_confirmed_only_after_persisting(
    settings: Settings, embedder: Embedder, redis: Any, top: FakeTop
) -> None:
    async with serve_live(taobao_settings(settings, top), embedder) as (rt, _client):
        keys = rt.services.keys
        seen_at_confirm: list[tuple[int, bool]] = []

        async def check(ids: list[int]) -> None:
            for msg_id in ids:
                seen_at_confirm.append((msg_id, bool(await redis.exists(keys.dedupe("taobao", f"tmc:{msg_id}")))))

        top.on_confirm = check
        chat = top.publish(TOPIC, {"buyer_open_uid": "AAEbuyer1", "buyer_nick": "t**1", "content": QUESTION})
        order = top.publish("taobao_trade_TradeCreate", {"tid": 42})
        junk = top.publish(TOPIC, "{not json")

        await eventually(lambda: top.sent)
        await eventually(lambda: {chat, order, junk} <= set(top.confirmed))
        await asyncio.sleep(0.3)  # room for a duplicate to show up
        [sent] = top.sent
        assert sent["buyer_open_uid"] == "AAEbuyer1" and sent["content"].startswith(return_answer(rt))
        assert (chat, True) in seen_at_confirm  # on our stream before TMC forgot it
        assert await transcript(rt, "taobao:2200000001:AAEbuyer1") == ["in", "out"]
        [dead] = await redis.xrange(keys.dead_letter(keys.inbound))
        assert dead[1][b"source_id"] == f"taobao:tmc:{junk}".encode()
        assert (await feed_status(rt, "taobao:12345678:huiliu"))["state"] == "ok"


async def test_taobao_loop_killed_before_confirm_gets_a_redelivery_and_answers_once(
    settings: Settings, embedder: Embedder, redis: Any, top: FakeTop
) -> None:
    async with serve_live(taobao_settings(settings, top), embedder) as (rt, _client):
        top.hold_confirms()  # the confirm call is in flight when the process dies
        chat = top.publish(TOPIC, {"buyer_open_uid": "AAEbuyer2", "content": QUESTION})
        await eventually(lambda: top.held_confirms == 1)
        await kill(feed_task(rt, "taobao-feed"))
        top.drop_held_confirms()  # it never reached TMC
        assert chat not in top.confirmed
        restart_feed(rt, Channel.TAOBAO)
        await eventually(lambda: chat in top.confirmed)
        await eventually(lambda: top.sent)
        await asyncio.sleep(0.5)
        assert top.deliveries(chat) >= 2  # TMC really handed it out again
        assert len(top.sent) == 1
        assert await transcript(rt, "taobao:2200000001:AAEbuyer2") == ["in", "out"]


async def test_taobao_bad_secret_surfaces_and_stores_nothing(
    settings: Settings, embedder: Embedder, redis: Any, top: FakeTop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="gateway.marketplace_feed")
    chat = top.publish(TOPIC, {"buyer_open_uid": "AAEbuyer3", "content": QUESTION})
    async with serve_live(taobao_settings(settings, top, taobao_app_secret="wrong"), embedder) as (rt, _client):
        status = await eventually(lambda: _error_status(rt, "taobao:12345678:huiliu"))
        assert status["permanent"] == "1" and "Invalid signature" in status["error"]
        assert any("Invalid signature" in r.getMessage() for r in caplog.records)
        assert top.calls and all(c.error == 25 for c in top.calls)
        assert await redis.xlen(rt.services.keys.inbound) == 0
        assert top.deliveries(chat) == 0 and not top.confirmed


async def _error_status(rt: Runtime, feed: str) -> dict[str, str] | None:
    status = await feed_status(rt, feed)
    return status if status.get("state") == "error" else None


# ---- JD ----------------------------------------------------------------------------------------------

@pytest.fixture
async def jos() -> AsyncIterator[FakeJos]:
    fake = FakeJos(app_key="jd-app", app_secret="jd-s3cret", access_token="jd-token")
    await fake.start()
    yield fake
    await fake.stop()


def jd_settings(settings: Settings, jos: FakeJos, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "jd_app_key": "jd-app", "jd_app_secret": "jd-s3cret", "jd_access_token": "jd-token", "jd_api_base": jos.url,
        "jd_waiter": jos.waiter, "jd_push_param1": {"aspid": "asp", "accessid": "acc"}, "jd_poll_interval_s": 0.1,
        **kw}
    return settings.with_(**values)


async def test_jd_chat_is_answered_by_push_and_the_cursor_survives_a_crash(
    settings: Settings, embedder: Embedder, redis: Any, jos: FakeJos
) -> None:
    async with serve_live(jd_settings(settings, jos), embedder) as (rt, _client):
        cursor_key = rt.services.keys.feed_cursor("jd:jd-app:huiliu_waiter")
        jos.say("jd_buyer_1", QUESTION)
        await eventually(lambda: jos.pushes)
        [push] = jos.pushes
        assert push["param2"]["toPin"] == "jd_buyer_1" and push["param2"]["fromPin"] == jos.waiter
        assert push["param2"]["body"]["content"].startswith(return_answer(rt))
        assert push["param1"] == {"aspid": "asp", "accessid": "acc", "accessToken": "jd-token"}
        assert await eventually(lambda: redis.get(cursor_key))  # the window end, stored in Redis
        assert await transcript(rt, "jd:jd_buyer_1") == ["in", "out"]

        # Crash after ingest but before the cursor was stored: the next process re-reads the window.
        await kill(feed_task(rt, "jd-feed"))
        await redis.delete(cursor_key)
        polls = len(jos.calls_of(CHATLOG))
        restart_feed(rt, Channel.JD)
        await eventually(lambda: len(jos.calls_of(CHATLOG)) >= polls + 3)
        await asyncio.sleep(0.3)
        assert len(jos.pushes) == 1
        assert await transcript(rt, "jd:jd_buyer_1") == ["in", "out"]


async def test_jd_expired_token_surfaces(settings: Settings, embedder: Embedder, redis: Any, jos: FakeJos) -> None:
    jos.say("jd_buyer_2", QUESTION)
    async with serve_live(jd_settings(settings, jos, jd_access_token="expired"), embedder) as (rt, _client):
        status = await eventually(lambda: _error_status(rt, "jd:jd-app:huiliu_waiter"))
        assert status["permanent"] == "1" and "Invalid access_token" in status["error"]
        assert await redis.xlen(rt.services.keys.inbound) == 0
        assert not await redis.exists(rt.services.keys.feed_cursor("jd:jd-app:huiliu_waiter"))


# ---- Pinduoduo ---------------------------------------------------------------------------------------

@pytest.fixture
async def pdd() -> AsyncIterator[FakePdd]:
    fake = FakePdd(client_id="pdd-client", client_secret="pdd-s3cret", access_token="pdd-token",
                   send_type="test.chat.send")
    await fake.start()
    yield fake
    await fake.stop()


def pdd_settings(settings: Settings, pdd: FakePdd, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "pdd_client_id": "pdd-client", "pdd_client_secret": "pdd-s3cret", "pdd_access_token": "pdd-token",
        "pdd_api_base": pdd.http_url, "pdd_ws_base": pdd.ws_url, "pdd_chat_types": (PDD_CHAT,),
        "pdd_send_type": "test.chat.send", **kw}
    return settings.with_(**values)


async def test_pinduoduo_chat_is_answered_and_acked_only_after_persisting(
    settings: Settings, embedder: Embedder, redis: Any, pdd: FakePdd
) -> None:
    async with serve_live(pdd_settings(settings, pdd), embedder) as (rt, _client):
        keys = rt.services.keys
        persisted_at_ack: list[bool] = []

        async def check(ack: dict[str, Any]) -> None:
            persisted_at_ack.append(bool(await redis.exists(keys.dedupe("pinduoduo", str(ack["id"])))))

        pdd.on_ack = check
        await eventually(lambda: pdd.open_connections == 1)
        msg_id = await pdd.publish(PDD_CHAT, 100, {"buyer_id": "pdd_buyer_1", "content": QUESTION})
        await eventually(lambda: pdd.sent)
        await eventually(lambda: pdd.acks)
        [sent] = pdd.sent
        assert sent["buyer_id"] == "pdd_buyer_1" and sent["content"].startswith(return_answer(rt))
        assert [a["id"] for a in pdd.acks] == [msg_id] and persisted_at_ack == [True]
        assert pdd.rejected == [] and pdd.heartbeats >= 1
        assert await transcript(rt, "pinduoduo:100:pdd_buyer_1") == ["in", "out"]


async def test_pinduoduo_loop_killed_before_ack_gets_a_redelivery_and_answers_once(
    settings: Settings, embedder: Embedder, redis: Any, pdd: FakePdd
) -> None:
    async with serve_live(pdd_settings(settings, pdd), embedder) as (rt, _client):
        await eventually(lambda: pdd.open_connections == 1)
        pdd.ignore_acks = True  # the process dies before its ack reaches the platform
        msg_id = await pdd.publish(PDD_CHAT, 100, {"buyer_id": "pdd_buyer_2", "content": QUESTION})
        await eventually(lambda: pdd.sent)
        await kill(feed_task(rt, "pinduoduo-feed"))
        await eventually(lambda: pdd.open_connections == 0)
        pdd.ignore_acks = False
        restart_feed(rt, Channel.PINDUODUO)
        await eventually(lambda: pdd.acks)
        await asyncio.sleep(0.5)
        assert pdd.messages[msg_id].deliveries == 2 and len(pdd.connections) == 2
        assert len(pdd.sent) == 1
        assert await transcript(rt, "pinduoduo:100:pdd_buyer_2") == ["in", "out"]


async def test_pinduoduo_runs_one_connection_per_deployment(
    settings: Settings, embedder: Embedder, redis: Any, pdd: FakePdd
) -> None:
    async with serve_live(pdd_settings(settings, pdd), embedder) as (rt, _client):
        await eventually(lambda: pdd.open_connections == 1)
        # A second process for the same app stands by on the Redis lock instead of connecting.
        other = PinduoduoAdapter(client_id="pdd-client", client_secret="pdd-s3cret", access_token="pdd-token",
                                 chat_types=(PDD_CHAT,), ws_base=pdd.ws_url, api_base=pdd.http_url)
        second = asyncio.create_task(run_feed(rt.services, other, rt.stop, lock_ttl_ms=900))
        try:
            await asyncio.sleep(1.0)
            assert len(pdd.connections) == 1
            await kill(feed_task(rt, "pinduoduo-feed"))  # the first process goes away...
            await eventually(lambda: len(pdd.connections) == 2 and pdd.open_connections == 1)  # ...it takes over
            msg_id = await pdd.publish(PDD_CHAT, 100, {"buyer_id": "pdd_buyer_3", "content": QUESTION})
            await eventually(lambda: [a["id"] for a in pdd.acks] == [msg_id])
            await eventually(lambda: pdd.sent)
        finally:
            await kill(second)
            await other.aclose()


async def test_pinduoduo_bad_secret_is_refused_and_surfaces(
    settings: Settings, embedder: Embedder, redis: Any, pdd: FakePdd
) -> None:
    await pdd.publish(PDD_CHAT, 100, {"buyer_id": "pdd_buyer_4", "content": QUESTION})
    async with serve_live(pdd_settings(settings, pdd, pdd_client_secret="wrong"), embedder) as (rt, _client):
        status = await eventually(lambda: _error_status(rt, "pinduoduo:pdd-client"))
        assert status["permanent"] == "1" and "HTTP 401" in status["error"] and "PDD_CLIENT_SECRET" in status["error"]
        assert pdd.rejected and pdd.connections == []
        assert await redis.xlen(rt.services.keys.inbound) == 0
