"""Publishing live events (Redis pub/sub) for web chat views, agent consoles and the router.

Live events are a convenience, never the record: the database has the transcript and the audit log,
so a lost event costs a refresh, not data. That is why publishing swallows Redis errors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import redis.asyncio as aioredis

from gateway.keys import Keys
from gateway.models import ConversationEvent

log = logging.getLogger(__name__)


async def publish(redis: aioredis.Redis, keys: Keys, events: Sequence[ConversationEvent]) -> None:
    if not events:
        return
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.publish(keys.events_channel(), event.model_dump_json())
            await pipe.execute()
    except aioredis.RedisError:
        log.warning("could not publish %d live events", len(events))


async def kick_router(redis: aioredis.Redis, keys: Keys) -> None:
    """Tell the dispatcher to plan now (it also plans on a timer, so a lost kick only delays)."""
    try:
        await redis.publish(keys.routing_kick, b"1")
    except aioredis.RedisError:
        log.warning("could not kick the router")
