"""Presence on real Redis: heartbeats, away, explicit sign-out, expiry, snapshots, router kicks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from tests_helpers import eventually

from gateway.keys import Keys
from ticketing.presence import PresenceBoard
from ticketing.routing import Presence

NOW = datetime(2024, 11, 11, 2, 0, tzinfo=UTC)


@pytest.fixture
def board(redis: aioredis.Redis, keys: Keys) -> PresenceBoard:
    return PresenceBoard(redis, keys, ttl_s=60, clock=lambda: NOW)


@pytest.fixture
async def kicks(redis: aioredis.Redis, keys: Keys) -> AsyncIterator[PubSub]:
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.routing_kick)
    await pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    yield pubsub
    await pubsub.aclose()  # type: ignore[no-untyped-call]


async def _kick_count(pubsub: PubSub) -> int:
    count = 0
    while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is not None:
        count += 1
    return count


async def test_heartbeat_away_and_offline(board: PresenceBoard, redis: aioredis.Redis, keys: Keys) -> None:
    assert await board.get("li") is Presence.OFFLINE  # never seen
    assert await board.heartbeat("li") is Presence.OFFLINE  # returns the previous state
    assert await board.get("li") is Presence.ONLINE
    assert 0 < await redis.ttl(keys.agent_presence("li")) <= 60
    assert await redis.zscore(keys.agent_presence_index, "li") == NOW.timestamp()

    assert await board.heartbeat("li", Presence.AWAY) is Presence.ONLINE
    assert await board.get("li") is Presence.AWAY
    assert await board.heartbeat("li", Presence.ONLINE) is Presence.AWAY

    assert await board.go_offline("li") is Presence.ONLINE
    assert await board.get("li") is Presence.OFFLINE
    assert await redis.zscore(keys.agent_presence_index, "li") is None
    assert await board.go_offline("li") is Presence.OFFLINE  # idempotent


async def test_offline_is_not_a_heartbeat(board: PresenceBoard) -> None:
    with pytest.raises(ValueError, match="go_offline"):
        await board.heartbeat("li", Presence.OFFLINE)
    with pytest.raises(ValueError):
        await board.heartbeat("", Presence.ONLINE)


async def test_stopped_heartbeats_expire_to_offline(redis: aioredis.Redis, keys: Keys) -> None:
    board = PresenceBoard(redis, keys, ttl_s=1)
    await board.heartbeat("laptop-closed")
    await board.heartbeat("still-here", Presence.AWAY)
    assert await board.get("laptop-closed") is Presence.ONLINE

    async def expired() -> bool:
        await board.heartbeat("still-here", Presence.AWAY)  # this one keeps beating
        return await board.get("laptop-closed") is Presence.OFFLINE

    await eventually(expired, timeout=10)
    assert await board.get("still-here") is Presence.AWAY


async def test_snapshot_in_one_round_trip(board: PresenceBoard, redis: aioredis.Redis, keys: Keys) -> None:
    await board.heartbeat("a")
    await board.heartbeat("b", Presence.AWAY)
    await redis.set(keys.agent_presence("c"), "garbage")  # an unknown value never makes anyone routable
    snapshot = await board.snapshot(["a", "b", "c", "d", "a"])
    assert snapshot == {"a": Presence.ONLINE, "b": Presence.AWAY, "c": Presence.OFFLINE, "d": Presence.OFFLINE}
    assert await board.snapshot([]) == {}


async def test_recently_seen_prunes_old_heartbeats(redis: aioredis.Redis, keys: Keys) -> None:
    now = [NOW]
    board = PresenceBoard(redis, keys, ttl_s=60, clock=lambda: now[0])
    await board.heartbeat("early")
    now[0] = NOW.replace(minute=5)
    await board.heartbeat("late")
    assert await board.recently_seen() == ["late"]
    assert await redis.zscore(keys.agent_presence_index, "early") is None


async def test_becoming_online_or_going_offline_kicks_the_router(board: PresenceBoard, kicks: PubSub) -> None:
    await board.heartbeat("li")  # offline -> online: kick
    assert await _kick_count(kicks) == 1
    await board.heartbeat("li")  # still online: routine heartbeat, no kick
    await board.heartbeat("li", Presence.AWAY)  # away frees nothing
    assert await _kick_count(kicks) == 0
    await board.heartbeat("li")  # away -> online: kick
    assert await _kick_count(kicks) == 1
    await board.go_offline("li")  # their tickets must move: kick
    await board.go_offline("li")  # already offline: nothing to do
    assert await _kick_count(kicks) == 1


async def test_concurrent_heartbeats_are_consistent(board: PresenceBoard) -> None:
    ids = [f"agent{i}" for i in range(30)]
    await asyncio.gather(*(board.heartbeat(a, Presence.AWAY if i % 3 == 0 else Presence.ONLINE)
                           for i, a in enumerate(ids)))
    snapshot = await board.snapshot(ids)
    assert [a for a in ids if snapshot[a] is Presence.AWAY] == ids[::3]
    assert sum(p is Presence.ONLINE for p in snapshot.values()) == 20
