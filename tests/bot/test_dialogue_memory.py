"""Numbered options map back to quick-reply payloads (channels without buttons); memory round-trips."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from bot.dialogue_memory import DialogueMemory, Memory
from gateway.keys import Keys
from gateway.models import QuickReply

OPTIONS = [QuickReply(title="怎么退货？", payload='/choose_article{"article_id":"return-how"}'),
           QuickReply(title="转人工", payload="/request_human")]


@pytest.mark.parametrize(("text", "expected"), [
    ("1", OPTIONS[0].payload), (" 2 ", "/request_human"), ("转人工", "/request_human"),
    ("3", "3"), ("0", "0"), ("退货", "退货"), ("12345", "12345"),
])
def test_resolve(text: str, expected: str) -> None:
    assert Memory(quick=OPTIONS).resolve(text) == expected


def test_nothing_offered_nothing_mapped() -> None:
    assert Memory().resolve("1") == "1"


async def test_round_trip_and_expiry(redis: aioredis.Redis, keys: Keys) -> None:
    store = DialogueMemory(redis, keys)
    assert await store.load("webchat:v1") == Memory()
    mem = Memory(last_answer={"article_id": "a"}, last_hits=[{"article_id": "b"}], quick=OPTIONS,
                 awaiting="order_number")
    await store.save("webchat:v1", mem)
    assert await store.load("webchat:v1") == mem
    assert 0 < await redis.ttl(keys.dialogue("webchat:v1")) <= 24 * 3600
