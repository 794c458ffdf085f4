"""Console sessions on real Redis with an injected clock: hashed keys, idle and absolute expiry,
logout, ending all of an agent's sessions, and the login throttle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from gateway.keys import Keys
from gateway.login_throttle import LoginThrottle
from gateway.redis_conn import as_text
from gateway.sessions import SessionStore, session_hash

T0 = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
IDLE, ABSOLUTE = 8 * 3600, 24 * 3600


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(redis: aioredis.Redis, keys: Keys, clock: Clock) -> SessionStore:
    return SessionStore(redis, keys, clock, idle_ttl_s=IDLE, absolute_ttl_s=ABSOLUTE)


async def test_create_and_get(store: SessionStore, redis: aioredis.Redis, keys: Keys) -> None:
    session_id, csrf = await store.create("li", "agent", stamp="abc")
    assert len(session_id) == 43 and len(csrf) == 43 and session_id != csrf
    data = await store.get(session_id)
    assert data is not None
    assert (data.principal_id, data.role, data.csrf, data.stamp, data.bootstrap) == ("li", "agent", csrf, "abc", False)
    assert data.created_at == data.last_seen == T0
    # Redis holds the sha256 of the id, never the id itself (a dump yields no usable cookie).
    stored = [k.decode() async for k in redis.scan_iter(match=f"{keys.prefix}:*")]
    assert keys.console_session(session_hash(session_id)) in stored
    assert not any(session_id in k for k in stored)
    for key in stored:
        if await redis.type(key) == b"hash":
            assert session_id.encode() not in (await redis.hgetall(key)).values()
    assert 0 < await redis.ttl(keys.console_session(session_hash(session_id))) <= IDLE

    second, _ = await store.create("admin", "admin", bootstrap=True)
    boot = await store.get(second)
    assert boot is not None and boot.bootstrap and boot.principal_id == "admin"


@pytest.mark.parametrize(("name", "gaps", "alive"), [
    ("fresh", [0], True),
    ("idle just under the limit", [IDLE - 1], True),
    ("idle limit reached", [IDLE], False),
    ("activity slides the idle timeout", [IDLE - 60] * 3, True),
    ("absolute lifetime ends even an active session", [IDLE - 60] * 3 + [200], False),
    ("one second before the absolute end", [IDLE - 1, IDLE - 1, IDLE - 1, 2], True),
])
async def test_expiry(store: SessionStore, clock: Clock, name: str, gaps: list[int], alive: bool) -> None:
    """Each gap is idle time followed by a request; the last request decides."""
    session_id, _ = await store.create("li", "agent")
    result = None
    for gap in gaps:
        clock.advance(gap)
        result = await store.get(session_id)
    assert (result is not None) is alive, name


async def test_expired_session_stays_gone(store: SessionStore, clock: Clock, redis: aioredis.Redis,
                                          keys: Keys) -> None:
    session_id, _ = await store.create("li", "agent")
    clock.advance(IDLE)
    assert await store.get(session_id) is None
    clock.now = T0  # even if the clock went back, the key is deleted
    assert await store.get(session_id) is None
    assert not await redis.exists(keys.console_session(session_hash(session_id)))
    assert not await redis.sismember(keys.console_sessions_of("li"), session_hash(session_id))


@pytest.mark.parametrize("bad", ["", "short", "x" * 43 + "y", "!" * 43, "a" * 42])
async def test_malformed_ids_resolve_to_nothing(store: SessionStore, bad: str) -> None:
    assert await store.get(bad) is None
    await store.destroy(bad)  # harmless


async def test_destroy_and_destroy_all_for(store: SessionStore, redis: aioredis.Redis, keys: Keys) -> None:
    a, _ = await store.create("li", "agent")
    b, _ = await store.create("li", "agent")
    c, _ = await store.create("li", "agent")
    other, _ = await store.create("wang", "supervisor")

    await store.destroy(a)
    assert await store.get(a) is None and await store.get(b) is not None
    await store.destroy(a)  # twice is fine

    assert await store.destroy_all_for("li", keep=b) == 1  # "end my other sessions"
    assert await store.get(c) is None and await store.get(b) is not None
    assert await store.destroy_all_for("li") == 1
    assert await store.get(b) is None
    assert await store.get(other) is not None  # someone else's sessions are untouched
    assert await store.destroy_all_for("nobody") == 0
    assert await redis.scard(keys.console_sessions_of("li")) == 0


async def test_restamp(store: SessionStore) -> None:
    session_id, _ = await store.create("li", "agent", stamp="old")
    await store.restamp(session_id, "new")
    data = await store.get(session_id)
    assert data is not None and data.stamp == "new"
    await store.destroy(session_id)
    await store.restamp(session_id, "newer")  # never resurrects an ended session
    assert await store.get(session_id) is None


async def test_login_prunes_expired_entries_from_the_index(store: SessionStore, clock: Clock,
                                                           redis: aioredis.Redis, keys: Keys) -> None:
    old, _ = await store.create("li", "agent")
    await redis.delete(keys.console_session(session_hash(old)))  # expired by Redis TTL
    new, _ = await store.create("li", "agent")
    members = {as_text(m) for m in await redis.smembers(keys.console_sessions_of("li"))}
    assert members == {session_hash(new)}


async def test_throttle_counts_per_user_and_per_ip(redis: aioredis.Redis, keys: Keys) -> None:
    throttle = LoginThrottle(redis, keys, window_s=900, per_user=5, per_ip=20)
    assert await throttle.retry_after("li", "10.0.0.1") is None
    for _ in range(4):
        await throttle.failed("li", "10.0.0.1")
    assert await throttle.retry_after("li", "10.0.0.1") is None
    await throttle.failed("li", "10.0.0.1")
    wait = await throttle.retry_after("li", "10.0.0.9")  # the username is blocked from any address
    assert wait is not None and 0 < wait <= 900
    assert await throttle.retry_after("wang", "10.0.0.1") is None  # others from the same IP may still try

    await throttle.succeeded("li")
    assert await throttle.retry_after("li", "10.0.0.1") is None

    for i in range(15):  # 5 + 15 = 20 failures from one address, spread over many usernames
        await throttle.failed(f"user{i}", "10.0.0.1")
    assert await throttle.retry_after("fresh-name", "10.0.0.1") is not None
    assert await throttle.retry_after("fresh-name", "10.0.0.2") is None
    for key in (keys.login_failures("ip", "10.0.0.1"),):
        assert 0 < await redis.ttl(key) <= 900  # every counter has its window
