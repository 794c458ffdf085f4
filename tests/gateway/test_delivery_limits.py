"""Outbound limits, retries and permanent failures, end to end through the real delivery worker.

Real Redis, real databases, the real ``DeliveryWorker`` on the outbound stream with its mover, and the
real Telegram/WeChat connectors talking over HTTP to local fakes of those APIs. Spacing and back-off are
asserted on the times the *fake* received the requests, never on how fast our code runs.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from fakes.telegram_api import FakeTelegram
from fakes.wechat_api import FakeWeChatApi
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from tests_helpers import eventually, serve_live

from connectors.registry import Connectors
from connectors.telegram import TelegramConnector
from connectors.wechat import WeChatConnector
from gateway.access_tokens import SharedAccessToken
from gateway.config import Settings
from gateway.db.conversations import ConversationStore
from gateway.db.engine import make_engine
from gateway.db.migrate import upgrade
from gateway.db.schema import ticket_events
from gateway.delivery import DeliveryWorker, RetryLater
from gateway.keys import Keys
from gateway.models import Channel, CustomerRef, DeliveryResult, InboundMessage, OutboundMessage, utcnow
from gateway.outbound_limits import OutboundPolicy
from gateway.streams import StreamBus, StreamConsumer
from knowledge_index.embedder import Embedder
from ticketing.escalation import TicketStore

TOKEN = "123456789:AAE-test_token"
# Send times are taken by the fake with time.monotonic(), our schedule by the Redis server's clock:
# two clocks of one machine, which can disagree by a few ms over seconds.
CLOCK_SLACK_S = 0.005


@pytest.fixture
async def fake_tg() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(token=TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'delivery.db'}")
    await upgrade(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
async def telegram(fake_tg: FakeTelegram) -> AsyncIterator[TelegramConnector]:
    # max_retry_wait=0: every 429 comes back to the worker (the connector would otherwise wait it out).
    conn = TelegramConnector(TOKEN, api_base=fake_tg.base_url, max_retry_wait=0)
    yield conn
    await conn.aclose()


def reply(channel: Channel, key: str, text: str) -> OutboundMessage:
    return OutboundMessage(channel=channel, conversation_key=key, text=text,
                           recipient=CustomerRef(channel=channel, external_id=key))


async def customer_wrote(engine: AsyncEngine, channel: Channel, key: str, ago: timedelta, n: int = 1) -> None:
    await ConversationStore(engine).record_inbound(InboundMessage.build(
        channel=channel, external_message_id=f"{key}:{n}", conversation_key=key,
        customer=CustomerRef(channel=channel, external_id=key), text="在吗", sent_at=utcnow() - ago))


def worker_for(redis: aioredis.Redis, keys: Keys, engine: AsyncEngine, connector: Any,
               **kw: Any) -> DeliveryWorker:
    policy = kw.pop("policy", OutboundPolicy(max_inline_wait_ms=1500))
    return DeliveryWorker(redis=redis, keys=keys, connectors=Connectors({connector.channel: connector}),
                          tickets=TicketStore(engine), clock=utcnow, policy=policy, **kw)


@asynccontextmanager
async def running(redis: aioredis.Redis, keys: Keys, worker: DeliveryWorker) -> AsyncIterator[StreamBus]:
    """The outbound consumer and the delayed-retry mover, as start_workers runs them."""
    stop = asyncio.Event()
    consumer = StreamConsumer(redis=redis, keys=keys, stream=keys.outbound, group="delivery", name="w1",
                              handler=worker.handle, claim_idle_ms=60_000, block_ms=100)
    await consumer.ensure_group()
    tasks = [asyncio.create_task(consumer.run(stop)), asyncio.create_task(worker.outbox.run_mover(stop))]
    try:
        yield StreamBus(redis, keys, dedupe_ttl_s=600)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def drained(redis: aioredis.Redis, keys: Keys) -> bool:
    pending: Any = await redis.xpending(keys.outbound, "delivery")
    return bool(pending["pending"] == 0 and await redis.zcard(keys.outbound_delayed) == 0)


def sends(fake: FakeTelegram, chat: int) -> list[Any]:
    return [c for c in fake.calls("sendMessage") if c.params.get("chat_id") == chat]


async def test_per_chat_spacing_and_order_hold(
    redis: aioredis.Redis, keys: Keys, sqlite_engine: AsyncEngine, fake_tg: FakeTelegram,
    telegram: TelegramConnector,
) -> None:
    worker = worker_for(redis, keys, sqlite_engine, telegram)
    async with running(redis, keys, worker) as bus:
        await bus.send(reply(Channel.TELEGRAM, "7", "warm-up"))  # opens the HTTP connection first
        await eventually(lambda: fake_tg.sent_messages(7))
        texts = [f"第{i}条 / part {i}" for i in range(1, 5)]
        for text in texts:  # 4 replies to one chat at once: 0 s, 1 s (slept), 2 s and 3 s (scheduled)
            await bus.send(reply(Channel.TELEGRAM, "42", text))
        await bus.send(reply(Channel.TELEGRAM, "43", "另一位客户 / another chat"))
        await eventually(lambda: len(fake_tg.sent_messages(42)) == 4, timeout=15)
        await eventually(lambda: drained(redis, keys))
    calls = sends(fake_tg, 42)
    assert [c.params["text"] for c in calls] == texts  # in order, each exactly once
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
    assert all(gap >= 1.0 - 0.05 for gap in gaps), gaps  # 50 ms: HTTP latency differs between sends
    # The other chat is limited on its own: it did not queue behind chat 42's 4 replies.
    [other] = sends(fake_tg, 43)
    assert other.at < calls[1].at


async def test_429_retry_after_is_honoured_and_keeps_order(
    redis: aioredis.Redis, keys: Keys, sqlite_engine: AsyncEngine, fake_tg: FakeTelegram,
    telegram: TelegramConnector,
) -> None:
    worker = worker_for(redis, keys, sqlite_engine, telegram)
    fake_tg.fail_next("sendMessage", 429, retry_after=2)
    first, second = reply(Channel.TELEGRAM, "42", "first"), reply(Channel.TELEGRAM, "42", "second")
    async with running(redis, keys, worker) as bus:
        await bus.send(first)
        await bus.send(second)
        await eventually(lambda: len(fake_tg.sent_messages(42)) == 2, timeout=15)
        await eventually(lambda: drained(redis, keys))
    calls = sends(fake_tg, 42)
    assert [c.params["text"] for c in calls] == ["first", "first", "second"]
    assert calls[1].at - calls[0].at >= 2 - CLOCK_SLACK_S  # not before retry_after
    assert calls[2].at - calls[1].at >= 1 - 0.05  # and the chat's 1/s still holds after it
    assert [m["text"] for m in fake_tg.sent_messages(42)] == ["first", "second"]
    assert await redis.exists(keys.delivered(first.message_id), keys.delivered(second.message_id)) == 2
    assert await TicketStore(sqlite_engine).list_open() == []


async def test_retries_give_up_and_reach_a_human(
    redis: aioredis.Redis, keys: Keys, engine: AsyncEngine, fake_tg: FakeTelegram, telegram: TelegramConnector,
) -> None:
    await customer_wrote(engine, Channel.TELEGRAM, "42", timedelta(seconds=1))
    worker = worker_for(redis, keys, engine, telegram, policy=OutboundPolicy(max_attempts=2))
    for _ in range(3):
        fake_tg.fail_next("sendMessage", 429, retry_after=1)
    out = reply(Channel.TELEGRAM, "42", "您的订单已发货")
    async with running(redis, keys, worker) as bus:
        await bus.send(out)
        [ticket] = await eventually(lambda: TicketStore(engine).list_open(), timeout=15)
        await eventually(lambda: drained(redis, keys))
    assert len(sends(fake_tg, 42)) == 2 and fake_tg.sent_messages() == []  # exactly max_attempts tries
    assert ticket.conversation_id == "telegram:42" and ticket.reason == "channel_failure"
    async with engine.connect() as conn:
        audit = (await conn.execute(select(ticket_events.c.kind, ticket_events.c.data)
                                    .where(ticket_events.c.ticket_id == ticket.id))).all()
    failed = [data for kind, data in audit if kind == "delivery_failed"]
    assert failed and failed[0]["message_id"] == out.message_id and "2 attempts" in failed[0]["error"]
    alerts: Any = await redis.xrange(keys.supervisor_alerts)
    assert [(f[b"kind"], f[b"message_id"].decode()) for _id, f in alerts] == [(b"delivery_failed", out.message_id)]
    assert await redis.exists(keys.outbound_failed(out.message_id))


async def test_a_reply_being_sent_elsewhere_is_not_sent_twice(
    redis: aioredis.Redis, keys: Keys, sqlite_engine: AsyncEngine, fake_tg: FakeTelegram,
    telegram: TelegramConnector,
) -> None:
    worker = worker_for(redis, keys, sqlite_engine, telegram, in_flight_recheck_s=0.3)
    out = reply(Channel.TELEGRAM, "42", "只发一次 / once")
    other_sender = await redis.set(keys.outbound_sending(out.message_id), "other-worker", px=60_000)
    assert other_sender
    async with running(redis, keys, worker) as bus:
        await bus.send(out)
        await eventually(lambda: redis.zcard(keys.outbound_delayed))  # stepped aside, entry kept for later
        await asyncio.sleep(0.6)
        assert fake_tg.calls("sendMessage") == []  # never while the other sender holds it
        await redis.delete(keys.outbound_sending(out.message_id))  # the other sender died without sending
        await eventually(lambda: fake_tg.sent_messages(42), timeout=10)
        await bus.send(out)  # and a stray second copy of the same id is dropped
        await eventually(lambda: drained(redis, keys))
    assert len(sends(fake_tg, 42)) == 1


@pytest.fixture
async def fake_wx() -> AsyncIterator[FakeWeChatApi]:
    fake = FakeWeChatApi(app_id="wx0123456789abcdef", app_secret="app-secret")
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def wechat(redis: aioredis.Redis, keys: Keys, fake_wx: FakeWeChatApi) -> AsyncIterator[WeChatConnector]:
    conn = WeChatConnector(fake_wx.app_id, fake_wx.app_secret, "callback-token", api_base=fake_wx.base_url)
    conn.tokens = SharedAccessToken(redis, keys, "wechat:test", conn.fetch_access_token)
    yield conn
    await conn.aclose()


async def test_closed_wechat_window_never_calls_the_api(
    redis: aioredis.Redis, keys: Keys, engine: AsyncEngine, fake_wx: FakeWeChatApi, wechat: WeChatConnector,
) -> None:
    await customer_wrote(engine, Channel.WECHAT, "o_late", timedelta(hours=48, minutes=1))
    worker = worker_for(redis, keys, engine, wechat)
    out = reply(Channel.WECHAT, "o_late", "抱歉久等了")
    result = await worker.deliver(out)
    assert result is not None and result.permanent and "window closed" in (result.error or "")
    assert fake_wx.send_calls == [] and fake_wx.token_calls == 0  # decided before any request
    [ticket] = await TicketStore(engine).list_open()
    assert ticket.conversation_id == "wechat:o_late" and ticket.reason == "channel_failure"
    alerts: Any = await redis.xrange(keys.supervisor_alerts)
    assert alerts[0][1][b"message_id"].decode() == out.message_id
    assert await worker.deliver(out) is None  # settled: a redelivered copy does nothing


async def test_wechat_quota_of_five_per_customer_message(
    redis: aioredis.Redis, keys: Keys, engine: AsyncEngine, fake_wx: FakeWeChatApi, wechat: WeChatConnector,
) -> None:
    await customer_wrote(engine, Channel.WECHAT, "o_1", timedelta(minutes=1))
    worker = worker_for(redis, keys, engine, wechat)
    results: list[DeliveryResult | None] = []
    for i in range(6):
        results.append(await worker.deliver(reply(Channel.WECHAT, "o_1", f"回复{i}")))
    assert [bool(r and r.ok) for r in results] == [True] * 5 + [False]
    assert results[5] is not None and results[5].permanent and "quota" in (results[5].error or "")
    assert len(fake_wx.send_calls) == 5  # the 6th was refused here, not by WeChat's 45047
    # A failed send does not use up the quota: WeChat's -1 (busy) is retried later, the unit given back.
    await customer_wrote(engine, Channel.WECHAT, "o_1", timedelta(seconds=0), n=2)  # the customer writes again
    fake_wx.fail_next_send(-1)
    with pytest.raises(RetryLater):
        await worker.deliver(reply(Channel.WECHAT, "o_1", "系统繁忙"))
    for i in range(5):
        r = await worker.deliver(reply(Channel.WECHAT, "o_1", f"新回复{i}"))
        assert r is not None and r.ok
    assert len(fake_wx.sent("o_1")) == 10


async def test_permanent_failure_shows_in_supervisor_alerts_and_ticket(
    settings: Settings, embedder: Embedder, redis: aioredis.Redis, fake_tg: FakeTelegram,
) -> None:
    admin = {"Authorization": "Bearer test-admin-token"}
    s = settings.with_(telegram_mode="webhook", telegram_bot_token=TOKEN, telegram_webhook_secret="hook_secret",
                       telegram_api_base=fake_tg.base_url)
    fake_tg.fail_next("sendMessage", 403)  # Forbidden: bot was blocked by the user
    async with serve_live(s, embedder) as (_rt, client):
        update = {"update_id": 5005, "message": {
            "message_id": 1, "date": 1_700_000_000, "chat": {"id": 4242, "type": "private"},
            "from": {"id": 4242, "is_bot": False, "first_name": "王"}, "text": "怎么退货"}}
        resp = await client.post("/webhooks/telegram", json=update,
                                 headers={"X-Telegram-Bot-Api-Secret-Token": "hook_secret"})
        assert resp.status == 200

        async def alerts() -> list[dict[str, Any]]:
            body = await (await client.get("/api/supervisor/alerts", headers=admin)).json()
            return [a for a in body["alerts"] if a["kind"] == "delivery_failed"]

        [alert] = await eventually(alerts, timeout=15)
        assert alert["conversation_id"] == "telegram:4242" and "blocked" in alert["error"]
        ticket = await (await client.get(f"/api/tickets/{alert['ticket_id']}", headers=admin)).json()
        kinds = [e["kind"] for e in ticket["events"]]
        assert ticket["reason"] == "channel_failure" and "delivery_failed" in kinds
    assert len(fake_tg.calls("sendMessage")) == 1  # a blocked bot is not retried
