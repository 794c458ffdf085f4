"""Embedded Redis, Telegram long polling, knowledge sync across processes, delivery failures."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from fakes.telegram_api import FakeTelegram
from tests_helpers import eventually

from bot.retrieval_bot import RetrievalBot
from bot.worker import BotWorker
from gateway.db.articles import ArticleStore
from gateway.delivery import DeliveryWorker, RetryLater
from gateway.keys import Keys
from gateway.knowledge import KnowledgeService
from gateway.models import Channel, CustomerRef, OutboundMessage, utcnow
from gateway.redis_conn import EmbeddedRedis, connect, free_port
from gateway.runtime import Runtime, open_services, start_workers
from gateway.streams import StreamConsumer
from knowledge_index.article import Article, ArticleStatus
from knowledge_index.embedder import Embedder

TOKEN = "123456789:AAE-test_token"


async def test_embedded_redis_is_a_real_server_with_streams(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    url = await server.start()
    client = connect(url)
    try:
        await client.xadd("s", {"a": "1"})
        await client.xgroup_create("s", "g", id="0")
        got = await client.xreadgroup("g", "c", {"s": ">"}, count=1)
        assert got[0][1][0][1] == {b"a": b"1"}
        assert (await client.info("persistence"))["aof_enabled"] == 1  # survives a restart
    finally:
        await client.aclose()
        server.stop()


async def test_telegram_polling_persists_then_answers(
    settings: Any, embedder: Embedder, redis: aioredis.Redis
) -> None:
    fake = FakeTelegram(token=TOKEN)
    await fake.start()
    try:
        s = settings.with_(telegram_mode="polling", telegram_bot_token=TOKEN, telegram_api_base=fake.base_url)
        async with open_services(s, embedder=embedder) as rt:
            start_workers(rt)
            fake.queue_update({"update_id": 500, "message": {
                "message_id": 1, "from": {"id": 9, "first_name": "A", "is_bot": False},
                "chat": {"id": 9, "type": "private"}, "date": 1763000000, "text": "发票怎么开"}})
            await eventually(lambda: fake.sent_messages(9))
            assert fake.sent_messages(9)[0]["text"] == rt.services.kb.article("invoice").answer  # type: ignore[union-attr]
            offset = await rt.services.redis.get(rt.services.keys.telegram_offset("123456789"))
            assert offset == b"501"
    finally:
        await fake.stop()


async def test_killed_bot_worker_messages_answered_by_another(runtime: Runtime) -> None:
    s = runtime.services
    real = BotWorker(redis=s.redis, keys=s.keys, bus=s.bus, conversations=s.conversations,
                     tickets=s.tickets, bot=RetrievalBot(s.kb), clock=utcnow)
    started = asyncio.Event()

    async def dies(_eid: str, _fields: dict[bytes, bytes]) -> None:
        started.set()
        await asyncio.sleep(3600)

    def consumer(name: str, handler: Any) -> StreamConsumer:
        return StreamConsumer(redis=s.redis, keys=s.keys, stream=s.keys.inbound, group="bot", name=name,
                              handler=handler, claim_idle_ms=100, block_ms=50)

    from connectors.webchat import WebchatConnector

    chat: WebchatConnector = s.connectors.get(Channel.WEBCHAT)
    visitor, token = chat.new_session()
    body = f'{{"visitor_id": "{visitor}", "token": "{token}", "client_message_id": "abcdefgh12", "text": "怎么退货"}}'
    await s.bus.ingest(chat.parse(body.encode()))
    first = consumer("first", dies)
    await first.ensure_group()
    task = asyncio.create_task(first.read_new())
    await started.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0.15)
    assert await consumer("second", real.handle).reclaim() == 1
    [(_, fields)] = await s.redis.xrange(s.keys.outbound)
    assert OutboundMessage.model_validate_json(fields[b"m"]).text == s.kb.article("return-how").answer  # type: ignore[union-attr]


async def test_kb_change_reaches_another_process_within_a_second(runtime: Runtime, embedder: Embedder) -> None:
    s = runtime.services
    other = KnowledgeService(ArticleStore(s.engine), s.redis, s.keys, embedder,
                             s.settings.data_dir / "index-other")
    await other.start()
    stop = asyncio.Event()
    follower = asyncio.create_task(other.follow(stop, block_ms=200))
    try:
        await s.kb.save_article(Article(id="gift-wrap", title="可以礼品包装吗？", questions=("能包装成礼物吗",),
                                        answer="可以", tags=(), language="zh", status=ArticleStatus.PUBLISHED,
                                        updated_at=utcnow()))

        async def visible() -> bool:
            hits = await other.search("能包装成礼物吗", 1)
            return bool(hits) and hits[0].article_id == "gift-wrap"

        await eventually(visible, timeout=1.0)
        await s.kb.set_status("gift-wrap", ArticleStatus.DRAFT)
        await eventually(lambda: _not(other.article("gift-wrap")), timeout=1.0)
    finally:
        stop.set()
        follower.cancel()


async def _not(value: Any) -> bool:
    return value is None


class _Failing:
    def __init__(self, result: Any) -> None:
        self.result = result
        self.calls = 0

    async def send(self, _msg: OutboundMessage) -> Any:
        self.calls += 1
        return self.result

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("permanent", [True, False])
async def test_delivery_failures_are_never_dropped(runtime: Runtime, permanent: bool) -> None:
    from connectors.registry import Connectors
    from gateway.models import DeliveryResult, InboundMessage

    s = runtime.services
    msg = InboundMessage.build(channel=Channel.TELEGRAM, external_message_id="b:1", conversation_key="55",
                               customer=CustomerRef(channel=Channel.TELEGRAM, external_id="55"),
                               text="hi", sent_at=utcnow())
    await s.conversations.record_inbound(msg)
    result = (DeliveryResult(ok=False, permanent=True, error="Forbidden: bot was blocked by the user")
              if permanent else DeliveryResult(ok=False, retry_after=60, error="Too Many Requests"))
    transport = _Failing(result)
    worker = DeliveryWorker(redis=s.redis, keys=s.keys, connectors=Connectors({Channel.TELEGRAM: transport}),
                            tickets=s.tickets, clock=utcnow)
    out = OutboundMessage(channel=Channel.TELEGRAM, conversation_key="55", recipient=msg.customer, text="答复")
    if permanent:
        await worker.deliver(out)
        [ticket] = await s.tickets.list_open()
        assert ticket.reason == "channel_failure" and "blocked" in ticket.summary
    else:
        with pytest.raises(RetryLater):  # handle() turns this into a delayed retry after retry_after
            await worker.deliver(out)
        assert await s.tickets.list_open() == []
    assert not await s.redis.exists(Keys(s.keys.prefix).delivered(out.message_id))
