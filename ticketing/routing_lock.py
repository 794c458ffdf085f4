"""The routing lock: one Redis key (``keys.routing_lock``) that serialises every ticket assignment.

The dispatcher's plans, agents' claims and supervisors' explicit assignments all take it before they
read agent loads, so two replicas never plan against the same snapshot. It is a plain ``SET NX PX``
with a random token, released by a compare-and-delete script so a holder whose lock already expired
cannot delete its successor's. The TTL only bounds a crashed holder; correctness under an expired lock
rests on the database's compare-and-set (see ``ticketing.dispatcher``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from gateway.keys import Keys

log = logging.getLogger(__name__)

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class RoutingBusy(Exception):
    """The routing lock stayed taken for ``lock_wait_s`` (answered 503: retry shortly)."""


class RoutingLock:
    """The shared routing lock; ``hold()`` may be entered by many tasks at once, each waits its turn."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, lock_wait_s: float = 5.0, lock_ttl_s: float = 30.0) -> None:
        self.redis = redis
        self.key = keys.routing_lock
        self.wait_s = lock_wait_s
        self.ttl_s = lock_ttl_s
        self._release = redis.register_script(_RELEASE)

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[float]:
        """Hold the lock; yields the loop time by which the work should be done (half the TTL, so the
        lock cannot expire while we still write). Raises ``RoutingBusy`` after ``lock_wait_s``."""
        loop = asyncio.get_running_loop()
        token = secrets.token_hex(16)
        deadline = loop.time() + self.wait_s
        delay = 0.005
        while not await self.redis.set(self.key, token, nx=True, px=int(self.ttl_s * 1000)):
            if loop.time() >= deadline:
                raise RoutingBusy("分配繁忙，请稍后重试 / routing is busy, retry in a moment")
            await asyncio.sleep(delay * random.uniform(1.0, 2.0))  # jitter: waiters do not retry in lockstep
            delay = min(delay * 2, 0.1)
        try:
            yield loop.time() + self.ttl_s / 2
        finally:
            try:
                await self._release(keys=[self.key], args=[token])
            except aioredis.RedisError:
                log.warning("could not release the routing lock; it expires in %.0fs", self.ttl_s)
