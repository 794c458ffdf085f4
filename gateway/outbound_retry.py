"""Replies that must wait: a Redis sorted set of due times, and the mover that puts them back on the stream.

A reply is *scheduled* when the channel said "retry after N s" or the rate limiter gave it a slot too far
ahead to sleep for. ``schedule`` is one Lua script that stores the reply in the delayed set **and**
acknowledges its stream entry, so there is never a moment with both copies gone (lost) — nor with both
live, except after a crash between a send and its ``delivered`` marker, which the marker and the
in-flight lock of the delivery worker absorb.

The set holds message ids (scored by due time, epoch ms on the Redis clock) and a hash holds each one's
stream fields: ``m`` (the OutboundMessage JSON), ``c`` (conversation, for in-order handling), ``a``
(failed attempts so far), ``r`` ("1": the rate limiter already reserved its slot). One id is stored at
most once: a second schedule of the same id replaces the first, or with ``only_if_absent`` keeps it.

``move_due`` (also one script, so concurrent movers in several processes never move a reply twice)
appends every due reply to the outbound stream, oldest due first. ``run_mover`` calls it whenever the
earliest due time comes, or at least every ``poll_s`` (another process may have scheduled one).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import redis.asyncio as aioredis

from gateway.keys import Keys

log = logging.getLogger(__name__)

# KEYS: delayed zset, payload hash, stream, stream's error hash. ARGV: message id, payload JSON, delay ms,
# group, entry id ("" for none), only_if_absent (1/0). Returns the due time (epoch ms).
_SCHEDULE_LUA = """
local t = redis.call('TIME')
local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
if ARGV[6] == '1' and redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  due = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
else
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[1], due, ARGV[1])
end
if ARGV[5] ~= '' then
  redis.call('XACK', KEYS[3], ARGV[4], ARGV[5])
  redis.call('XDEL', KEYS[3], ARGV[5])
  redis.call('HDEL', KEYS[4], ARGV[5])
end
return due
"""

# KEYS: delayed zset, payload hash, stream. ARGV: batch size. Returns {moved, ms until the next due or -1}.
_MOVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(ids) do
  local payload = redis.call('HGET', KEYS[2], id)
  if payload then
    local f = cjson.decode(payload)
    redis.call('XADD', KEYS[3], '*', 'm', f.m, 'c', f.c, 'a', tostring(f.a), 'r', f.r)
  end
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local next_in = -1
if head[2] then next_in = math.max(0, tonumber(head[2]) - now) end
return {#ids, next_in}
"""


class DelayedOutbox:
    """The delayed set of one outbound stream (see the module docstring)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, *, group: str, batch: int = 100) -> None:
        self.redis = redis
        self.keys = keys
        self.stream = keys.outbound
        self.group = group
        self.batch = batch
        self._schedule = redis.register_script(_SCHEDULE_LUA)
        self._move = redis.register_script(_MOVE_LUA)
        self._wake = asyncio.Event()  # this process scheduled something: re-read the earliest due time

    async def schedule(
        self, message_id: str, payload: dict[str, Any], *, delay_s: float, entry_id: str | None,
        only_if_absent: bool = False,
    ) -> int:
        """Store the reply due in ``delay_s`` and, in the same script, ack stream entry ``entry_id``.

        ``payload`` holds the stream fields ``m``, ``c``, ``a``, ``r`` (strings / int). Returns the
        due time in epoch ms (Redis clock). Rounded up to the next ms: "not before" must hold.
        """
        body = json.dumps({"m": payload["m"], "c": payload["c"], "a": int(payload["a"]), "r": payload["r"]},
                          ensure_ascii=False)
        due = await self._schedule(
            keys=[self.keys.outbound_delayed, self.keys.outbound_delayed_payloads, self.stream,
                  self.keys.errors(self.stream)],
            args=[message_id, body, max(0, int(delay_s * 1000) + 1), self.group, entry_id or "",
                  "1" if only_if_absent else "0"],
        )
        self._wake.set()
        return int(due)

    async def move_due(self) -> tuple[int, float | None]:
        """Put due replies back on the stream; returns (how many, seconds until the next one or None)."""
        moved, next_ms = await self._move(
            keys=[self.keys.outbound_delayed, self.keys.outbound_delayed_payloads, self.stream],
            args=[self.batch],
        )
        return int(moved), (None if int(next_ms) < 0 else int(next_ms) / 1000)

    async def pending(self) -> int:
        """How many replies wait in the delayed set."""
        return int(await self.redis.zcard(self.keys.outbound_delayed))

    async def run_mover(self, stop: asyncio.Event, *, poll_s: float = 0.5) -> None:
        """Move due replies until ``stop``: at each earliest due time, and at least every ``poll_s``."""
        while not stop.is_set():
            try:
                moved, next_s = await self.move_due()
            except asyncio.CancelledError:
                raise
            except (aioredis.RedisError, OSError) as exc:
                log.warning("outbound mover: redis error %s; retrying", exc)
                await _sleep_until(stop, self._wake, 1.0)
                continue
            if moved >= self.batch:
                continue  # more are due right now
            await _sleep_until(stop, self._wake, poll_s if next_s is None else min(poll_s, next_s))


async def _sleep_until(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    """Sleep ``timeout`` s, or less if ``stop`` or ``wake`` is set (``wake`` is then cleared)."""
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    wake.clear()
