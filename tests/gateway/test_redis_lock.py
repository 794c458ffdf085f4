"""TokenLocks against real Redis: only the holder extends or releases."""

from __future__ import annotations

import redis.asyncio as aioredis

from gateway.keys import Keys
from gateway.redis_lock import TokenLocks


async def test_extend_only_while_the_lock_is_ours(redis: aioredis.Redis, keys: Keys) -> None:
    locks, key = TokenLocks(redis), keys.routing_lock
    token = await locks.acquire(key, 1_000)
    assert token is not None and await locks.acquire(key, 1_000) is None
    assert await locks.extend(key, token, 60_000)
    assert 1_000 < await redis.pttl(key) <= 60_000
    assert not await locks.extend(key, "someone-else", 60_000)
    await locks.release(key, token)
    assert not await locks.extend(key, token, 60_000)  # expired or released: no resurrection
    assert not await redis.exists(key)
