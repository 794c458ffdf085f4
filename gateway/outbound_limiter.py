"""Enforcing outbound limits in Redis: a GCRA rate limiter with reservations, and the reply-window quota.

**Rates.** One Lua script takes every rate of a reply at once (per chat *and* the bot overall, say) and
*reserves* the earliest instant all of them allow: each rate key holds its "theoretical arrival time"
(TAT, epoch ms); a send may go at ``TAT - (burst - 1) * interval``, and moves the TAT on by
``cost * interval``. Reserving (rather than "try, and retry later") means a reply told to wait owns its
slot: a later reply of the same conversation gets a later slot, so replies stay in order whether the
first one sleeps a moment or is scheduled for later. The time is the Redis server's (``TIME``): every
worker process then agrees on one clock.

A reservation in the future (a 429 said "not before N seconds") moves only the ``per_conversation``
rates to that instant; a shared rate (a bot's 30 msg/s) is charged at its current TAT instead, so one
chat's back-off never blocks every other chat.

**Reply window.** WeChat/WeCom allow 5 replies within 48 h of the customer's last message. The window
start comes from the database (the customer's last message, see ``gateway.db.reply_window``); the
count of replies sent since lives in a Redis hash per conversation, reset whenever that start moves
on. A reply takes a unit *before* it is sent (so concurrent workers cannot both send the 5th) and
gives it back if the send fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from gateway.keys import Keys
from gateway.outbound_limits import Rate, ReplyWindow

# KEYS: one per rate. ARGV[1] = cost, ARGV[2] = not-before offset (ms), then per key: interval_ms,
# burst, per_conversation (1/0). Returns the wait in ms until the reserved send instant.
_RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local send_at = now + tonumber(ARGV[2])
local tats = {}
for i, key in ipairs(KEYS) do
  local base = 2 + (i - 1) * 3
  local interval, burst = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  tats[i] = tat
  local allowed = tat - (burst - 1) * interval
  if allowed > send_at then send_at = allowed end
end
for i, key in ipairs(KEYS) do
  local base = 2 + (i - 1) * 3
  local interval, per_conversation = tonumber(ARGV[base + 1]), ARGV[base + 3]
  local from = tats[i]
  if per_conversation == '1' and send_at > from then from = send_at end
  local tat = from + cost * interval
  redis.call('SET', key, string.format('%d', tat), 'PX', tat - now + 1000)
end
return send_at - now
"""

# KEYS[1] = window hash. ARGV: window start (epoch ms of the customer's last message), max messages,
# ttl ms, cost. Returns the count including this reply, or -1 when the quota cannot cover it. A stale
# start (older than the stored one: a slow reader) counts in the newer window.
_TAKE_LUA = """
local start = tonumber(redis.call('HGET', KEYS[1], 'start') or '0')
if tonumber(ARGV[1]) > start then
  redis.call('HSET', KEYS[1], 'start', ARGV[1], 'sent', 0)
end
local sent = tonumber(redis.call('HGET', KEYS[1], 'sent') or '0')
local cost = tonumber(ARGV[4])
if sent + cost > tonumber(ARGV[2]) then return -1 end
redis.call('HINCRBY', KEYS[1], 'sent', cost)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return sent + cost
"""

# Give units back, only to the window they were taken from (a new customer message reset it meanwhile).
_REFUND_LUA = """
if redis.call('HGET', KEYS[1], 'start') == ARGV[1] then
  local sent = tonumber(redis.call('HGET', KEYS[1], 'sent') or '0')
  local back = math.min(sent, tonumber(ARGV[2]))
  if back > 0 then return redis.call('HINCRBY', KEYS[1], 'sent', -back) end
end
return -1
"""


class RateLimiter:
    """Reserves send slots on a set of GCRA rates (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._keys = keys
        self._reserve = redis.register_script(_RESERVE_LUA)

    async def reserve(self, rates: Sequence[Rate], *, cost: int = 1, not_before_s: float = 0.0) -> float:
        """Reserve the earliest slot all ``rates`` allow, no earlier than ``not_before_s`` from now;
        returns the seconds to wait until it (0: send now)."""
        if not rates:
            return max(0.0, not_before_s)
        args: list[Any] = [cost, max(0, round(not_before_s * 1000))]
        for rate in rates:
            args += [rate.interval_ms, rate.burst, "1" if rate.per_conversation else "0"]
        wait_ms = await self._reserve(keys=[self._keys.outbound_rate(r.scope) for r in rates], args=args)
        return max(0, int(wait_ms)) / 1000


class ReplyQuota:
    """The WeChat/WeCom reply quota of one conversation window (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._keys = keys
        self._take = redis.register_script(_TAKE_LUA)
        self._refund = redis.register_script(_REFUND_LUA)

    async def take(self, conversation_id: str, window_start: datetime, window: ReplyWindow, *,
                   cost: int = 1) -> int | None:
        """Count ``cost`` messages in the window opened at ``window_start``; returns the count so far,
        or None (nothing taken) when the quota cannot cover them."""
        n = await self._take(keys=[self._keys.outbound_window(conversation_id)],
                             args=[_ms(window_start), window.max_replies, window.seconds * 1000, cost])
        return None if int(n) < 0 else int(n)

    async def refund(self, conversation_id: str, window_start: datetime, *, cost: int = 1) -> None:
        """Give back what a failed send took (no-op if the customer wrote again meanwhile)."""
        await self._refund(keys=[self._keys.outbound_window(conversation_id)], args=[_ms(window_start), cost])


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)
