"""Console login sessions in Redis: random ids in an HttpOnly cookie, idle and absolute lifetimes.

The cookie carries a 256-bit random session id; Redis stores only its sha256, so reading Redis (a
dump, ``MONITOR``, a replica) does not yield usable cookies. Each session holds its own CSRF token.
A session ends after ``idle_ttl_s`` without requests or ``absolute_ttl_s`` after login, whichever is
first; both are judged by the injected clock (the Redis TTL only garbage-collects the key). A set per
staff member lists their sessions, so a password change or deactivation ends all of them at once.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis

from gateway.keys import Keys
from gateway.redis_conn import as_text

IDLE_TTL_S = 8 * 3600
ABSOLUTE_TTL_S = 24 * 3600

# token_urlsafe(32): 43 characters; anything else is not one of ours and is not worth a Redis round trip.
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")

# Slide the idle timeout only while the session still exists: a request racing a logout must not
# re-create a half-empty hash.
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'seen', ARGV[1])
  return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class SessionData:
    """One live console session."""

    principal_id: str
    role: str  # the role at login; the auth middleware authorises from the agent record, not this
    csrf: str
    stamp: str  # credential fingerprint at login (password stamp, or admin-token stamp when bootstrap)
    bootstrap: bool  # the bootstrap admin (admin token as password), not a staff record
    created_at: datetime
    last_seen: datetime


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def looks_like_session_id(value: str) -> bool:
    return bool(_SESSION_ID.fullmatch(value))


class SessionStore:
    """Create, resolve and end console sessions."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, clock: Callable[[], datetime], *,
                 idle_ttl_s: int = IDLE_TTL_S, absolute_ttl_s: int = ABSOLUTE_TTL_S) -> None:
        if idle_ttl_s < 1 or absolute_ttl_s < 1:
            raise ValueError("session lifetimes must be at least 1 second")
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.idle_ttl_s = idle_ttl_s
        self.absolute_ttl_s = absolute_ttl_s
        self._touch = redis.register_script(_TOUCH)

    async def create(self, principal_id: str, role: str, *, stamp: str = "",
                     bootstrap: bool = False) -> tuple[str, str]:
        """A new session; returns ``(session_id, csrf_token)``. The id goes into the cookie and is
        never stored; the CSRF token goes to the page (JSON), which echoes it in ``X-CSRF-Token``."""
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        digest = session_hash(session_id)
        now = self.clock().timestamp()
        index = self.keys.console_sessions_of(principal_id)
        await self._prune(index)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.console_session(digest), mapping={
                "principal": principal_id, "role": role, "csrf": csrf, "stamp": stamp,
                "bootstrap": "1" if bootstrap else "0", "created": repr(now), "seen": repr(now)})
            pipe.expire(self.keys.console_session(digest), min(self.idle_ttl_s, self.absolute_ttl_s))
            pipe.sadd(index, digest)
            pipe.expire(index, self.absolute_ttl_s)  # outlives every session it lists
            await pipe.execute()
        return session_id, csrf

    async def get(self, session_id: str) -> SessionData | None:
        """The live session, sliding its idle timeout; None when unknown, expired or malformed."""
        if not isinstance(session_id, str) or not looks_like_session_id(session_id):
            return None
        digest = session_hash(session_id)
        raw = await self.redis.hgetall(self.keys.console_session(digest))
        fields = {as_text(k): as_text(v) for k, v in raw.items()}
        try:
            created, seen = float(fields["created"]), float(fields["seen"])
            data = SessionData(principal_id=fields["principal"], role=fields["role"], csrf=fields["csrf"],
                               stamp=fields["stamp"], bootstrap=fields["bootstrap"] == "1",
                               created_at=datetime.fromtimestamp(created, UTC),
                               last_seen=datetime.fromtimestamp(seen, UTC))
        except (KeyError, ValueError):
            if fields:
                await self.redis.delete(self.keys.console_session(digest))
            return None
        now = self.clock().timestamp()
        left = min(self.idle_ttl_s, created + self.absolute_ttl_s - now)
        if now - seen >= self.idle_ttl_s or left <= 0:
            await self._forget(digest, data.principal_id)
            return None
        await self._touch(keys=[self.keys.console_session(digest)], args=[repr(now), max(1, math.ceil(left))])
        return data

    async def restamp(self, session_id: str, stamp: str) -> None:
        """Record a new credential fingerprint (the caller changed their own password and stays in)."""
        if looks_like_session_id(session_id):
            key = self.keys.console_session(session_hash(session_id))
            if await self.redis.exists(key):
                await self.redis.hset(key, "stamp", stamp)

    async def destroy(self, session_id: str) -> None:
        """End one session (logout). Unknown ids are fine."""
        if not looks_like_session_id(session_id):
            return
        digest = session_hash(session_id)
        principal = await self.redis.hget(self.keys.console_session(digest), "principal")
        await self._forget(digest, as_text(principal) if principal is not None else None)

    async def destroy_all_for(self, principal_id: str, *, keep: str | None = None) -> int:
        """End every session of ``principal_id`` except ``keep`` (a session id); returns how many ended."""
        index = self.keys.console_sessions_of(principal_id)
        kept = session_hash(keep) if keep else None
        digests = [as_text(d) for d in await self.redis.smembers(index)]
        doomed = [d for d in digests if d != kept]
        if not doomed:
            return 0
        async with self.redis.pipeline(transaction=True) as pipe:
            for digest in doomed:
                pipe.delete(self.keys.console_session(digest))
            pipe.srem(index, *doomed)
            results = await pipe.execute()
        return sum(int(n) for n in results[:-1])

    async def _forget(self, digest: str, principal_id: str | None) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.console_session(digest))
            if principal_id is not None:
                pipe.srem(self.keys.console_sessions_of(principal_id), digest)
            await pipe.execute()

    async def _prune(self, index: str) -> None:
        """Drop expired sessions from a staff member's set (logins are rare; the set stays small)."""
        digests = [as_text(d) for d in await self.redis.smembers(index)]
        if not digests:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for digest in digests:
                pipe.exists(self.keys.console_session(digest))
            alive = await pipe.execute()
        gone = [d for d, n in zip(digests, alive, strict=True) if not n]
        if gone:
            await self.redis.srem(index, *gone)
