"""Console login throttling: failed attempts counted per username and per client IP in Redis.

After ``per_user`` failures for one username, or ``per_ip`` from one address, within ``window_s``
(counted from the first failure) further attempts are refused with 429 until the window ends -- even
with the right password, or guessing would simply continue. Counters live in Redis, so every gateway
process shares them. A successful login clears its username's counter; the IP counter runs out, so one
address cannot spray many accounts by mixing in a known-good login.
"""

from __future__ import annotations

import hashlib

import redis.asyncio as aioredis

from gateway.keys import Keys

WINDOW_S = 15 * 60
PER_USER = 5
PER_IP = 20

# INCR and start the window on the first failure, atomically: a crash between the two must never
# leave a counter without TTL (that would lock the account out for good).
_FAIL = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


def _user_subject(username: str) -> str:
    # Hashed: usernames are attacker-chosen text of any length; keys stay short and printable.
    return hashlib.sha256(username.encode()).hexdigest()[:32]


class LoginThrottle:
    """``retry_after`` before checking a password, ``failed`` after a wrong one, ``succeeded`` after login."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, *, window_s: int = WINDOW_S, per_user: int = PER_USER,
                 per_ip: int = PER_IP) -> None:
        self.redis = redis
        self.keys = keys
        self.window_s = window_s
        self.limits = {"user": per_user, "ip": per_ip}
        self._fail = redis.register_script(_FAIL)

    def _keys(self, username: str, ip: str) -> dict[str, str]:
        return {"user": self.keys.login_failures("user", _user_subject(username)),
                "ip": self.keys.login_failures("ip", ip or "unknown")}

    async def retry_after(self, username: str, ip: str) -> int | None:
        """Seconds until this username/IP may try again, or None when it may try now."""
        keys = self._keys(username, ip)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys.values():
                pipe.get(key)
                pipe.ttl(key)
            replies = await pipe.execute()
        waits = []
        for i, scope in enumerate(keys):
            count, ttl = replies[2 * i], replies[2 * i + 1]
            if count is not None and int(count) >= self.limits[scope]:
                waits.append(int(ttl) if int(ttl) > 0 else self.window_s)
        return max(waits) if waits else None

    async def failed(self, username: str, ip: str) -> None:
        for key in self._keys(username, ip).values():
            await self._fail(keys=[key], args=[self.window_s])

    async def succeeded(self, username: str) -> None:
        await self.redis.delete(self._keys(username, "")["user"])
