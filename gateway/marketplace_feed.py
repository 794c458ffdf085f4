"""The intake loop of every feed-based channel (``connectors/feed.py``): pull, persist, confirm.

Per round: read the stored cursor, ``pull`` a batch, put its messages on the inbound stream
(``bus.ingest``: atomic dedupe + XADD), put items that could not be parsed on the dead-letter stream,
store the batch's new cursor, and only then ``confirm`` the batch to the platform. A crash, a
cancelled task or a Redis/DB error anywhere before ``confirm`` leaves the items unconfirmed: the
platform delivers them again and the dedupe drops the copies. After any failure the adapter's
connection is dropped (``suspend``) so a WebSocket platform redelivers what was not acknowledged.

Exclusive feeds (one WebSocket per app, one time cursor per shop) run in one process per deployment:
the loop holds a Redis token lock, renews it every round and stands by while another process holds
it. Errors back off exponentially (``FeedError.retry_after`` respected); permanent ones (bad
credentials, revoked authorisation) are logged as errors and recorded in the feed's status hash
(``keys.feed_status``) and retried slowly, since the operator fixes them outside the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from connectors.feed import FeedAdapter, FeedBatch, FeedError
from gateway.redis_conn import as_text
from gateway.redis_lock import TokenLocks
from gateway.services import Services

log = logging.getLogger(__name__)



async def persist_batch(services: Services, adapter: FeedAdapter, batch: FeedBatch) -> None:
    """Dead-letter the unparseable items, then ingest the messages (deduplicated)."""
    channel = adapter.channel.value
    for failure in batch.failures:
        log.error("unparseable %s item %s: %s", channel, failure.item_id, failure.error)
        await services.redis.xadd(services.keys.dead_letter(services.keys.inbound), {
            "raw": failure.raw, "error": f"{channel} parse: {failure.error}",
            "source_id": f"{channel}:{failure.item_id}",
        })
    if batch.messages:
        await services.bus.ingest(batch.messages)


class FeedRunner:
    """Runs one adapter's loop; ``run`` returns when ``stop`` is set."""

    def __init__(self, services: Services, adapter: FeedAdapter, *, lock_ttl_ms: int = 60_000,
                 min_backoff_s: float = 1.0, max_backoff_s: float = 60.0) -> None:
        self.services = services
        self.adapter = adapter
        self.name = adapter.feed_name
        self.lock_ttl_ms = lock_ttl_ms
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self._locks = TokenLocks(services.redis)
        self._lock_key = services.keys.feed_lock(self.name)
        self._cursor_key = services.keys.feed_cursor(self.name)
        self._status_key = services.keys.feed_status(self.name)
        self._state: str | None = None
        self._backoff = min_backoff_s

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            token: str | None = None
            try:
                if self.adapter.exclusive:
                    token = await self._locks.acquire(self._lock_key, self.lock_ttl_ms)
                    if token is None:  # another process consumes this feed: stand by
                        await _pause(stop, self.lock_ttl_ms / 3000)
                        continue
                await self._pump(stop, token)
            except asyncio.CancelledError:
                raise
            except FeedError as exc:
                delay = self.max_backoff_s if exc.permanent else max(self._backoff, exc.retry_after or 0.0)
                level = logging.ERROR if exc.permanent else logging.WARNING
                log.log(level, "feed %s: %s%s; retrying in %.0f s", self.name, exc,
                        " (permanent: fix the credentials/authorisation)" if exc.permanent else "", delay)
                await self._record_error(str(exc), permanent=exc.permanent)
                await self._back_off(stop, delay)
            except Exception as exc:
                delay = self._backoff
                log.warning("feed %s failed (%s: %s); retrying in %.1f s", self.name, type(exc).__name__, exc,
                            delay, exc_info=not isinstance(exc, OSError | aioredis.RedisError | aiohttp.ClientError))
                await self._record_error(f"{type(exc).__name__}: {exc}", permanent=False)
                await self._back_off(stop, delay)
            finally:
                # Drop the connection after any exit, so a socket platform redelivers unacked items to
                # whoever consumes next; then free the lock for the other processes.
                with contextlib.suppress(Exception):
                    await self.adapter.suspend()
                if token is not None:
                    await self._locks.release(self._lock_key, token, quiet=True)

    async def _pump(self, stop: asyncio.Event, token: str | None) -> None:
        redis = self.services.redis
        while not stop.is_set():
            if token is not None and not await self._locks.extend(self._lock_key, token, self.lock_ttl_ms):
                log.warning("feed %s: lost its lock; standing by", self.name)
                return
            raw_cursor: Any = await redis.get(self._cursor_key)
            cursor = None if raw_cursor is None else as_text(raw_cursor)
            batch = await self.adapter.pull(cursor)
            if not batch.empty:
                await persist_batch(self.services, self.adapter, batch)
                if batch.cursor is not None and batch.cursor != cursor:
                    await redis.set(self._cursor_key, batch.cursor)
                await self.adapter.confirm(batch)  # only now: everything above is stored
                if batch.messages or batch.failures:
                    log.debug("feed %s: %d messages, %d ignored, %d dead-lettered", self.name,
                              len(batch.messages), batch.ignored, len(batch.failures))
            self._backoff = self.min_backoff_s
            await self._record_ok()

    async def _back_off(self, stop: asyncio.Event, delay: float) -> None:
        await _pause(stop, delay)
        self._backoff = min(self._backoff * 2, self.max_backoff_s)

    async def _record_ok(self) -> None:
        if self._state != "ok":
            await self._write_status({"state": "ok", "error": "", "permanent": "0"})
            self._state = "ok"

    async def _record_error(self, error: str, *, permanent: bool) -> None:
        await self._write_status({"state": "error", "error": error[:2000], "permanent": "1" if permanent else "0"})
        self._state = "error"

    async def _write_status(self, fields: dict[str, str]) -> None:
        try:
            mapping: Any = {**fields, "at": self.services.clock().isoformat()}  # redis-py's mapping type is invariant
            await self.services.redis.hset(self._status_key, mapping=mapping)
        except aioredis.RedisError as exc:  # Redis itself is the trouble: the log line must do
            log.warning("feed %s: could not record status: %s", self.name, exc)


async def run_feed(services: Services, adapter: FeedAdapter, stop: asyncio.Event, **tuning: Any) -> None:
    """Run ``adapter``'s intake loop until ``stop`` is set (``tuning``: ``FeedRunner`` keywords)."""
    await FeedRunner(services, adapter, **tuning).run(stop)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
