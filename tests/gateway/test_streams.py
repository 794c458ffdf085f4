"""Intake dedupe, consumer groups, reclaim of a dead consumer's entries, dead letters — on real Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import redis.asyncio as aioredis

from gateway.keys import Keys
from gateway.models import Channel, CustomerRef, InboundMessage
from gateway.streams import PoisonMessage, StreamBus, StreamConsumer


def msg(ext_id: str, text: str = "怎么退货", conv: str = "c1") -> InboundMessage:
    return InboundMessage.build(
        channel=Channel.TELEGRAM, external_message_id=ext_id, conversation_key=conv,
        customer=CustomerRef(channel=Channel.TELEGRAM, external_id="42"), text=text,
        sent_at=datetime(2026, 11, 11, tzinfo=UTC),
    )


async def test_redelivered_message_enters_stream_once(redis: aioredis.Redis, keys: Keys) -> None:
    bus = StreamBus(redis, keys, dedupe_ttl_s=60)
    first = await bus.ingest([msg("bot:1")])
    again = await bus.ingest([msg("bot:1"), msg("bot:2")])
    assert not first[0].duplicate
    assert again[0].duplicate and again[0].message_id == first[0].message_id
    assert not again[1].duplicate
    assert await redis.xlen(keys.inbound) == 2
    assert 0 < await redis.ttl(keys.dedupe("telegram", "bot:1")) <= 60


def consumer(redis: aioredis.Redis, keys: Keys, name: str, handler, **kw) -> StreamConsumer:  # type: ignore[no-untyped-def]
    return StreamConsumer(redis=redis, keys=keys, stream=keys.inbound, group="bot", name=name,
                          handler=handler, block_ms=50, **kw)


async def test_handled_entries_are_acked_and_removed(redis: aioredis.Redis, keys: Keys) -> None:
    bus = StreamBus(redis, keys, dedupe_ttl_s=60)
    seen: list[str] = []

    async def handler(_eid: str, fields: dict[bytes, bytes]) -> None:
        seen.append(InboundMessage.model_validate_json(fields[b"m"]).text)

    c = consumer(redis, keys, "a", handler)
    await c.ensure_group()
    await bus.ingest([msg(f"bot:{i}", text=f"m{i}") for i in range(5)])
    assert await c.read_new() == 5
    assert seen == [f"m{i}" for i in range(5)]  # one conversation: kept in order
    assert await redis.xlen(keys.inbound) == 0
    assert (await redis.xpending(keys.inbound, "bot"))["pending"] == 0


async def test_killed_consumer_entries_are_reclaimed_by_another(redis: aioredis.Redis, keys: Keys) -> None:
    bus = StreamBus(redis, keys, dedupe_ttl_s=60)
    started = asyncio.Event()

    async def hangs(_eid: str, _fields: dict[bytes, bytes]) -> None:
        started.set()
        await asyncio.sleep(3600)

    dying = consumer(redis, keys, "dying", hangs)
    await dying.ensure_group()
    await bus.ingest([msg("bot:1"), msg("bot:2", conv="c2")])
    task = asyncio.create_task(dying.read_new())
    await started.wait()
    task.cancel()  # the worker dies mid-message: nothing was acknowledged
    await asyncio.gather(task, return_exceptions=True)
    assert (await redis.xpending(keys.inbound, "bot"))["pending"] == 2

    answered: list[str] = []

    async def ok(_eid: str, fields: dict[bytes, bytes]) -> None:
        answered.append(InboundMessage.model_validate_json(fields[b"m"]).external_message_id)

    rescuer = consumer(redis, keys, "rescuer", ok, claim_idle_ms=100)
    assert await rescuer.reclaim() == 0  # not idle long enough yet: a slow worker keeps its entries
    await asyncio.sleep(0.15)
    assert await rescuer.reclaim() == 2
    assert sorted(answered) == ["bot:1", "bot:2"]
    assert (await redis.xpending(keys.inbound, "bot"))["pending"] == 0


async def test_failing_entry_goes_to_dead_letter_with_its_error(redis: aioredis.Redis, keys: Keys) -> None:
    bus = StreamBus(redis, keys, dedupe_ttl_s=60)
    attempts = 0

    async def broken(_eid: str, _fields: dict[bytes, bytes]) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("database is on fire")

    c = consumer(redis, keys, "a", broken, claim_idle_ms=10, max_attempts=3)
    await c.ensure_group()
    await bus.ingest([msg("bot:9")])
    await c.read_new()
    for _ in range(5):
        await asyncio.sleep(0.02)
        await c.reclaim()
    assert attempts == 3
    dead = await redis.xrange(keys.dead_letter(keys.inbound))
    assert len(dead) == 1
    fields = dead[0][1]
    assert b"database is on fire" in fields[b"error"]
    assert fields[b"attempts"] == b"4"
    assert InboundMessage.model_validate_json(fields[b"m"]).external_message_id == "bot:9"
    assert await redis.xlen(keys.inbound) == 0
    assert (await redis.xpending(keys.inbound, "bot"))["pending"] == 0


async def test_poison_entry_is_dead_lettered_at_once(redis: aioredis.Redis, keys: Keys) -> None:
    async def rejects(_eid: str, _fields: dict[bytes, bytes]) -> None:
        raise PoisonMessage("cannot parse")

    c = consumer(redis, keys, "a", rejects)
    await c.ensure_group()
    await redis.xadd(keys.inbound, {"m": b"not json", "c": b"x"})
    await c.read_new()
    dead = await redis.xrange(keys.dead_letter(keys.inbound))
    assert len(dead) == 1 and dead[0][1][b"error"] == b"poison: cannot parse"


async def test_run_loop_processes_until_stopped(redis: aioredis.Redis, keys: Keys) -> None:
    bus = StreamBus(redis, keys, dedupe_ttl_s=60)
    done = asyncio.Event()

    async def handler(_eid: str, _fields: dict[bytes, bytes]) -> None:
        done.set()

    stop = asyncio.Event()
    c = consumer(redis, keys, "a", handler)
    task = asyncio.create_task(c.run(stop))
    await bus.ingest([msg("bot:1")])
    await asyncio.wait_for(done.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert c.stats.handled == 1
