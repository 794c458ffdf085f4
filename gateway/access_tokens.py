"""Platform access tokens (WeChat, WeCom) cached in Redis and refreshed by one process at a time.

WeChat's plain ``/cgi-bin/token`` endpoint invalidates the previous token on every refresh, and both
platforms rate-limit token calls; a token cached per worker would have workers knocking each other's
tokens out. So there is one cache per account in Redis: every process reads it, and whoever finds it
missing or about to expire refreshes it under a Redis lock while the others wait for the new value.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from gateway.keys import Keys
from gateway.redis_conn import as_text
from gateway.redis_lock import TokenLocks

log = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[tuple[str, float]]]

# Delete the cached token only if it is still the one the caller found bad: a token another process
# has just refreshed must survive a late "this token failed" from a request that used the old one.
_INVALIDATE = """
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class AccessTokenError(RuntimeError):
    """No valid token could be obtained (the platform refused or was unreachable); retry later."""


class SharedAccessToken:
    """``get()`` a valid token for one platform account; ``invalidate(token)`` when the platform says
    it expired (40001/42001). ``fetch`` asks the platform for a new ``(token, expires_in_s)``."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, name: str, fetch: Fetch, *,
                 clock: Callable[[], float] = time.time, refresh_margin_s: float = 300.0,
                 lock_ttl_ms: int = 15_000, wait_s: float = 10.0) -> None:
        self.redis = redis
        self.name = name
        self._fetch = fetch
        self._clock = clock
        self._margin = refresh_margin_s
        self._lock_ttl_ms = lock_ttl_ms
        self._wait_s = wait_s
        self._key = keys.access_token(name)
        self._lock_key = keys.access_token_lock(name)
        self._locks = TokenLocks(redis)
        self._invalidate = redis.register_script(_INVALIDATE)

    async def _cached(self) -> tuple[str, float] | None:
        token, expires = await self.redis.hmget(self._key, ["token", "expires_at"])
        if not token or not expires:
            return None
        return as_text(token), float(expires)

    def _fresh(self, cached: tuple[str, float] | None) -> bool:
        return cached is not None and cached[1] - self._margin > self._clock()

    async def get(self) -> str:
        """A token valid for at least ``refresh_margin_s`` more (or still valid if a refresh failed)."""
        cached = await self._cached()
        if cached is not None and self._fresh(cached):
            return cached[0]
        return await self._refresh(cached)

    async def invalidate(self, token: str) -> None:
        """Forget ``token`` (if it is still the cached one) so the next ``get()`` refreshes."""
        await self._invalidate(keys=[self._key], args=[token])

    async def _refresh(self, seen: tuple[str, float] | None) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        while True:
            lock = await self._locks.acquire(self._lock_key, self._lock_ttl_ms)
            if lock is not None:
                try:
                    return await self._refresh_locked()
                finally:
                    await self._locks.release(self._lock_key, lock, quiet=True)
            # Someone else is refreshing: wait for their token rather than fetching a second one.
            await asyncio.sleep(0.05)
            cached = await self._cached()
            if cached is not None and cached != seen and self._fresh(cached):
                return cached[0]
            if loop.time() >= deadline:
                if cached is not None and cached[1] > self._clock():
                    return cached[0]  # old but still valid: better than failing the send
                raise AccessTokenError(f"{self.name}: timed out waiting for a token refresh")

    async def _refresh_locked(self) -> str:
        cached = await self._cached()
        if cached is not None and self._fresh(cached):
            return cached[0]  # refreshed by another process between our read and our lock
        try:
            token, expires_in = await self._fetch()
        except Exception as exc:
            if cached is not None and cached[1] > self._clock():
                log.warning("%s: token refresh failed (%s); using the current token until it expires",
                            self.name, exc)
                return cached[0]
            raise AccessTokenError(f"{self.name}: could not obtain an access token: {exc}") from exc
        if not token or expires_in <= 0:
            raise AccessTokenError(f"{self.name}: platform returned an unusable token")
        expires_at = self._clock() + expires_in
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key, mapping={"token": token, "expires_at": repr(expires_at)})
            pipe.expire(self._key, max(1, int(expires_in)))
            await pipe.execute()
        log.info("%s: access token refreshed (valid %.0f s)", self.name, expires_in)
        return token
