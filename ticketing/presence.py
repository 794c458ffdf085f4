"""Agent presence: online / away / offline, kept alive by heartbeats in Redis.

Each heartbeat sets a key with a TTL; an agent whose heartbeats stop (closed laptop, lost network,
crashed browser tab) simply expires to offline, so nobody keeps tickets they cannot work. There is no
"offline" value: offline is the absence of the key. ``away`` agents keep their tickets but get no new
ones (routing decides that; this module only records the state).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import redis.asyncio as aioredis

from gateway.keys import Keys
from gateway.models import utcnow
from gateway.redis_conn import as_text
from ticketing.live import kick_router
from ticketing.routing import Presence

_STORED = {p.value: p for p in (Presence.ONLINE, Presence.AWAY)}


def _parse(value: bytes | str | None) -> Presence:
    if value is None:
        return Presence.OFFLINE
    return _STORED.get(as_text(value), Presence.OFFLINE)  # an unknown value must never make someone routable


class PresenceBoard:
    """Heartbeats in, presence snapshots out. ``ttl_s`` is how long one heartbeat keeps an agent present
    (consoles should beat about every ``ttl_s / 3`` so one lost beat does not drop them)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, ttl_s: int = 60,
                 clock: Callable[[], datetime] = utcnow) -> None:
        if ttl_s < 1:
            raise ValueError("ttl_s must be at least 1 second")
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_s
        self.clock = clock

    async def heartbeat(self, agent_id: str, status: Presence = Presence.ONLINE) -> Presence:
        """Record that the agent is ``status`` (online or away) for the next ``ttl_s`` seconds.

        Returns the previous presence. Becoming online kicks the router: the agent may have free slots
        for tickets waiting in their skill queues, and they should not wait for the next timer tick.
        """
        if status is Presence.OFFLINE:
            raise ValueError("an agent goes offline with go_offline() (or by not sending heartbeats)")
        if not agent_id:
            raise ValueError("agent_id must not be empty")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.agent_presence(agent_id), status.value, ex=self.ttl_s, get=True)
            pipe.zadd(self.keys.agent_presence_index, {agent_id: self.clock().timestamp()})
            previous_raw, _ = await pipe.execute()
        previous = _parse(previous_raw)
        if status is Presence.ONLINE and previous is not Presence.ONLINE:
            await kick_router(self.redis, self.keys)
        return previous

    async def go_offline(self, agent_id: str) -> Presence:
        """Sign the agent out now (rather than when the TTL runs out); returns the previous presence.

        Going offline kicks the router, which moves the agent's tickets to someone online.
        """
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.getdel(self.keys.agent_presence(agent_id))
            pipe.zrem(self.keys.agent_presence_index, agent_id)
            previous_raw, _ = await pipe.execute()
        previous = _parse(previous_raw)
        if previous is not Presence.OFFLINE:
            await kick_router(self.redis, self.keys)
        return previous

    async def get(self, agent_id: str) -> Presence:
        return _parse(await self.redis.get(self.keys.agent_presence(agent_id)))

    async def snapshot(self, agent_ids: Iterable[str]) -> dict[str, Presence]:
        """Presence of each agent in one MGET round trip; agents without a live key are offline."""
        ids = list(dict.fromkeys(agent_ids))
        if not ids:
            return {}
        values = await self.redis.mget([self.keys.agent_presence(a) for a in ids])
        return {agent_id: _parse(value) for agent_id, value in zip(ids, values, strict=True)}

    async def recently_seen(self) -> list[str]:
        """Agents whose last heartbeat is within ``ttl_s`` (from the index, oldest entries pruned):
        the candidates a console's "who is around" list checks with ``snapshot``."""
        cutoff = self.clock().timestamp() - self.ttl_s
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(self.keys.agent_presence_index, "-inf", f"({cutoff}")
            pipe.zrange(self.keys.agent_presence_index, 0, -1)
            _, members = await pipe.execute()
        return [as_text(m) for m in members]
