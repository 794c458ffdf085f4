"""The routing lock: one Redis key (``keys.routing_lock``) that serialises every ticket assignment.

The dispatcher's plans, agents' claims and supervisors' explicit assignments all take it before they
read agent loads, so two replicas never plan against the same snapshot. It is a token lock
(``gateway.redis_lock``): a holder whose lock already expired cannot delete its successor's. The TTL
only bounds a crashed holder; correctness under an expired lock rests on the database's
compare-and-set (see ``ticketing.dispatcher``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from gateway.keys import Keys
from gateway.redis_lock import TokenLocks


class RoutingBusy(Exception):
    """The routing lock stayed taken for ``lock_wait_s`` (answered 503: retry shortly)."""


class RoutingLock:
    """The shared routing lock; ``hold()`` may be entered by many tasks at once, each waits its turn."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, lock_wait_s: float = 5.0, lock_ttl_s: float = 30.0) -> None:
        self.redis = redis
        self.key = keys.routing_lock
        self.wait_s = lock_wait_s
        self.ttl_s = lock_ttl_s
        self._locks = TokenLocks(redis)

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[float]:
        """Hold the lock; yields the loop time by which the work should be done (half the TTL, so the
        lock cannot expire while we still write). Raises ``RoutingBusy`` after ``lock_wait_s``."""
        busy = "分配繁忙，请稍后重试 / routing is busy, retry in a moment"
        async with self._locks.hold(self.key, int(self.ttl_s * 1000), wait_s=self.wait_s, quiet_release=True,
                                    busy=lambda: RoutingBusy(busy)):
            yield asyncio.get_running_loop().time() + self.ttl_s / 2
