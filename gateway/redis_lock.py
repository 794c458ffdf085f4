"""Token locks on Redis: ``SET key token NX PX ttl``, released by a compare-and-delete script, so a
holder whose lock already expired can never delete its successor's. One implementation for every
lock Huiliu takes (per-conversation ordering, the routing lock, the SLA scan lock, the pollers' and
feeds' single-consumer locks).

The TTL only bounds a crashed holder; callers that must stay correct under an expired lock pair it
with a compare-and-set in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import AsyncIterator, Callable

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_EXTEND = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"


class TokenLocks:
    """Acquire and release token locks on any key of one Redis connection."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._release = redis.register_script(_RELEASE)
        self._extend = redis.register_script(_EXTEND)

    async def acquire(self, key: str, ttl_ms: int, *, wait_s: float = 0.0, max_delay_s: float = 0.1) -> str | None:
        """The token when the lock is ours, or None after ``wait_s`` (0: one attempt). Retries back off
        from 5 ms to ``max_delay_s`` with jitter, so waiters do not retry in lockstep."""
        loop = asyncio.get_running_loop()
        token = secrets.token_hex(16)
        deadline = loop.time() + wait_s
        delay = 0.005
        while not await self.redis.set(key, token, nx=True, px=ttl_ms):
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(min(delay * random.uniform(1.0, 2.0), max_delay_s))
            delay = min(delay * 2, max_delay_s)
        return token

    async def extend(self, key: str, token: str, ttl_ms: int) -> bool:
        """Renew the lock's TTL if it is still ours; False when it expired or passed to someone else
        (a long-running holder -- a poller, a feed -- must then stop acting as the owner)."""
        return bool(await self._extend(keys=[key], args=[token, ttl_ms]))

    async def release(self, key: str, token: str, *, quiet: bool = False) -> None:
        """Delete the lock if it is still ours. ``quiet``: a Redis error is logged, not raised (the lock
        then simply expires with its TTL)."""
        try:
            await self._release(keys=[key], args=[token])
        except aioredis.RedisError:
            if not quiet:
                raise
            log.warning("could not release lock %s; it expires with its TTL", key)

    @contextlib.asynccontextmanager
    async def hold(self, key: str, ttl_ms: int, *, wait_s: float, busy: Callable[[], BaseException],
                   max_delay_s: float = 0.1, quiet_release: bool = False) -> AsyncIterator[None]:
        """Hold the lock for the block; raise ``busy()`` when it stays taken for ``wait_s``."""
        token = await self.acquire(key, ttl_ms, wait_s=wait_s, max_delay_s=max_delay_s)
        if token is None:
            raise busy()
        try:
            yield
        finally:
            await self.release(key, token, quiet=quiet_release)
