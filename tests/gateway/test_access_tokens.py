"""SharedAccessToken against real Redis: one refresh for many workers, safe invalidation."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from gateway.access_tokens import AccessTokenError, SharedAccessToken
from gateway.keys import Keys
from gateway.redis_conn import connect


class Platform:
    """Stands in for the platform's token endpoint: numbered tokens, optional failure, slow answers."""

    def __init__(self, expires_in: float = 7200.0, delay: float = 0.0) -> None:
        self.calls = 0
        self.expires_in = expires_in
        self.delay = delay
        self.fail: Exception | None = None

    async def fetch(self) -> tuple[str, float]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return f"token-{self.calls}", self.expires_in


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_many_workers_share_one_refresh(redis_url: str, redis: aioredis.Redis, keys: Keys) -> None:
    platform = Platform(delay=0.2)
    clients = [connect(redis_url) for _ in range(5)]
    try:
        workers = [SharedAccessToken(c, keys, "wechat:app", platform.fetch) for c in clients]
        tokens = await asyncio.gather(*(w.get() for w in workers for _ in range(4)))
    finally:
        for c in clients:
            await c.aclose()
    assert set(tokens) == {"token-1"}
    assert platform.calls == 1


async def test_refreshes_before_expiry_and_after_invalidate(redis: aioredis.Redis, keys: Keys) -> None:
    platform, clock = Platform(expires_in=7200), Clock()
    tokens = SharedAccessToken(redis, keys, "wecom:corp", platform.fetch, clock=clock, refresh_margin_s=300)
    assert await tokens.get() == "token-1"
    clock.now += 6000
    assert await tokens.get() == "token-1"  # still 1200 s left
    clock.now += 1000  # 200 s left: inside the margin
    assert await tokens.get() == "token-2"
    await tokens.invalidate("token-2")
    assert await tokens.get() == "token-3"
    assert platform.calls == 3


async def test_late_invalidate_of_an_old_token_keeps_the_new_one(redis: aioredis.Redis, keys: Keys) -> None:
    platform = Platform()
    tokens = SharedAccessToken(redis, keys, "wechat:app", platform.fetch)
    old = await tokens.get()
    await tokens.invalidate(old)
    new = await tokens.get()
    await tokens.invalidate(old)  # a request that used the old token reports its 40001 late
    assert await tokens.get() == new
    assert platform.calls == 2


@pytest.mark.parametrize("cached_left_s, expect", [(100.0, "token-1"), (None, AccessTokenError)])
async def test_failed_refresh(redis: aioredis.Redis, keys: Keys, cached_left_s: float | None,
                              expect: object) -> None:
    platform, clock = Platform(expires_in=7200), Clock()
    tokens = SharedAccessToken(redis, keys, "wechat:app", platform.fetch, clock=clock)
    if cached_left_s is not None:
        await tokens.get()
        clock.now += 7200 - cached_left_s  # inside the margin but not yet expired
    platform.fail = ConnectionError("platform unreachable")
    if expect is AccessTokenError:
        with pytest.raises(AccessTokenError, match="could not obtain"):
            await tokens.get()
    else:
        assert await tokens.get() == expect
