"""At-least-once pipelines on Redis Streams: intake with dedupe, consumers with reclaim and dead letters.

Intake runs one Lua script per message so "seen before?" and "append to the stream" happen
atomically: a crash can never leave a dedupe marker without its stream entry (that would lose the
message on the channel's retry). Consumers acknowledge only after their handler stored its effect;
entries of a dead consumer are reclaimed with XAUTOCLAIM; an entry delivered more than
``max_attempts`` times moves to a dead-letter stream together with its last error.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from gateway.keys import Keys
from gateway.models import InboundMessage, OutboundMessage
from gateway.redis_conn import as_text

log = logging.getLogger(__name__)

# KEYS[1]=dedupe marker, KEYS[2]=stream; ARGV: ttl, payload, our message id, conversation id.
_INTAKE_LUA = """
if redis.call('SET', KEYS[1], ARGV[3], 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], '*', 'm', ARGV[2], 'c', ARGV[4])
end
return false
"""


class PoisonMessage(Exception):
    """Raised by a handler for an entry that can never succeed: dead-lettered at once, not retried."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    message_id: str
    stream_id: str | None  # None: a duplicate, already on the stream earlier

    @property
    def duplicate(self) -> bool:
        return self.stream_id is None


class StreamBus:
    """Producer side: puts inbound messages (deduplicated) and outbound replies on their streams."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, *, dedupe_ttl_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl = dedupe_ttl_s
        self._intake = redis.register_script(_INTAKE_LUA)

    async def ingest(self, messages: Sequence[InboundMessage]) -> list[IngestResult]:
        """Persist each message on the inbound stream unless (channel, external id) was seen."""
        results: list[IngestResult] = []
        for msg in messages:
            sid = await self._intake(
                keys=[self._keys.dedupe(msg.channel.value, msg.external_message_id), self._keys.inbound],
                args=[self._ttl, msg.model_dump_json(), msg.message_id, msg.conversation_id],
            )
            results.append(IngestResult(msg.message_id, as_text(sid) if sid else None))
        return results

    async def send(self, message: OutboundMessage) -> str:
        """Queue a reply for the delivery workers."""
        sid = await self._redis.xadd(
            self._keys.outbound, {"m": message.model_dump_json(), "c": message.conversation_id}
        )
        return as_text(sid)


Entry = tuple[str, dict[bytes, bytes]]


async def read_entries(
    redis: aioredis.Redis, stream: str, last_id: str, *, count: int = 100, block_ms: int | None = None
) -> list[Entry]:
    """Plain XREAD (no group) of entries after ``last_id``; typed, because redis-py's result is not."""
    resp: Any = await redis.xread({stream: last_id}, count=count, block=block_ms)
    return [(as_text(eid), fields) for _key, items in resp or [] for eid, fields in items]


async def last_entry_id(redis: aioredis.Redis, stream: str) -> str:
    """Id of the newest entry of ``stream``, "0-0" when it is empty or missing."""
    resp: Any = await redis.xrevrange(stream, count=1)
    return as_text(resp[0][0]) if resp else "0-0"


Handler = Callable[[str, dict[bytes, bytes]], Awaitable[None]]


@dataclass
class ConsumerStats:
    handled: int = 0
    failed: int = 0
    reclaimed: int = 0
    dead_lettered: int = 0
    last_error: str | None = None


@dataclass
class StreamConsumer:
    """One consumer of a consumer group, processing entries with ``handler``.

    Entries of the same conversation (field ``c``) in one batch run in order; different
    conversations run concurrently up to ``concurrency``.
    """

    redis: aioredis.Redis
    keys: Keys
    stream: str
    group: str
    name: str
    handler: Handler
    max_attempts: int = 5
    claim_idle_ms: int = 30_000
    batch: int = 32
    block_ms: int = 1000
    concurrency: int = 8
    stats: ConsumerStats = field(default_factory=ConsumerStats)

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        """Process until ``stop`` is set. Reclaims stale entries every ``claim_idle_ms / 2``."""
        await self.ensure_group()
        loop = asyncio.get_running_loop()
        next_claim = 0.0
        while not stop.is_set():
            try:
                if loop.time() >= next_claim:
                    await self.reclaim()
                    next_claim = loop.time() + self.claim_idle_ms / 2000
                await self.read_new(block_ms=self.block_ms)
            except asyncio.CancelledError:
                raise
            except (aioredis.RedisError, OSError) as exc:
                # Redis restarting or unreachable: nothing was acked, so nothing is lost; back off.
                log.warning("consumer %s/%s: redis error %s; retrying", self.group, self.name, exc)
                await asyncio.sleep(1.0)

    async def read_new(self, block_ms: int | None = None) -> int:
        """Read and handle entries never delivered to anyone. Returns how many were read."""
        resp: Any = await self.redis.xreadgroup(
            self.group, self.name, {self.stream: ">"}, count=self.batch, block=block_ms
        )
        entries: list[tuple[str, dict[bytes, bytes]]] = []
        for _stream, items in resp or []:
            entries.extend((as_text(eid), fields) for eid, fields in items if fields)
        await self._handle_batch(entries)
        return len(entries)

    async def reclaim(self) -> int:
        """Take over entries idle longer than ``claim_idle_ms`` (their consumer died or failed)."""
        start = "0-0"
        total = 0
        while True:
            resp: Any = await self.redis.xautoclaim(
                self.stream, self.group, self.name, min_idle_time=self.claim_idle_ms,
                start_id=start, count=self.batch,
            )
            start = as_text(resp[0])
            claimed = [(as_text(eid), fields) for eid, fields in resp[1] if fields]
            if claimed:
                self.stats.reclaimed += len(claimed)
                total += len(claimed)
                live = await self._drop_exhausted(claimed)
                await self._handle_batch(live)
            if start == "0-0" or not resp[1]:
                return total

    async def _drop_exhausted(
        self, entries: list[tuple[str, dict[bytes, bytes]]]
    ) -> list[tuple[str, dict[bytes, bytes]]]:
        live = []
        for eid, fields in entries:
            info = await self.redis.xpending_range(self.stream, self.group, min=eid, max=eid, count=1)
            attempts = int(info[0]["times_delivered"]) if info else 1
            if attempts > self.max_attempts:
                err = await self.redis.hget(self.keys.errors(self.stream), eid)
                await self._dead_letter(eid, fields, as_text(err) if err else "unknown error", attempts)
            else:
                live.append((eid, fields))
        return live

    async def _handle_batch(self, entries: list[tuple[str, dict[bytes, bytes]]]) -> None:
        if not entries:
            return
        by_conv: dict[bytes, list[tuple[str, dict[bytes, bytes]]]] = {}
        for eid, fields in entries:
            by_conv.setdefault(fields.get(b"c", eid.encode()), []).append((eid, fields))
        sem = asyncio.Semaphore(self.concurrency)

        async def run_group(group: list[tuple[str, dict[bytes, bytes]]]) -> None:
            async with sem:
                for eid, fields in group:
                    await self._handle_one(eid, fields)

        await asyncio.gather(*(run_group(g) for g in by_conv.values()))

    async def _handle_one(self, eid: str, fields: dict[bytes, bytes]) -> None:
        try:
            await self.handler(eid, fields)
        except asyncio.CancelledError:
            raise
        except PoisonMessage as exc:
            await self._dead_letter(eid, fields, f"poison: {exc}", 1)
            return
        except Exception as exc:
            # Left pending on purpose: reclaim retries it after claim_idle_ms, then dead-letters it.
            self.stats.failed += 1
            self.stats.last_error = repr(exc)
            log.exception("handler failed on %s %s; will be retried", self.stream, eid)
            tb = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            await self.redis.hset(self.keys.errors(self.stream), eid, tb[:2000])
            return
        self.stats.handled += 1
        await self._ack(eid)

    async def _ack(self, eid: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, eid)
            # The entry's effect is stored elsewhere (DB / outbound stream): deleting keeps the stream
            # as long as the backlog, never trimming an entry nobody has processed (MAXLEN would).
            pipe.xdel(self.stream, eid)
            pipe.hdel(self.keys.errors(self.stream), eid)
            await pipe.execute()

    async def _dead_letter(self, eid: str, fields: dict[bytes, bytes], error: str, attempts: int) -> None:
        self.stats.dead_lettered += 1
        log.error("dead-lettering %s %s after %d attempts: %s", self.stream, eid, attempts, error)
        dl_fields: dict[Any, Any] = dict(fields)
        dl_fields.update({"error": error, "source_id": eid, "attempts": str(attempts), "group": self.group})
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.keys.dead_letter(self.stream), dl_fields)
            pipe.xack(self.stream, self.group, eid)
            pipe.xdel(self.stream, eid)
            pipe.hdel(self.keys.errors(self.stream), eid)
            await pipe.execute()
