"""WeCom 微信客服 intake: callbacks ask for a pull, the puller pulls ``kf/sync_msg`` pages onto our stream.

The webhook only records the request (``request_pull``: the callback token in a Redis hash, plus a kick)
and answers ``success``; WeCom's callback token stays valid for 10 minutes, so a puller in any process
picks it up. Pulls are serialised per kf account with a Redis lock (overlapping callbacks must not read
the same cursor twice), run page after page until ``has_more`` is 0 (an empty page with ``has_more=1``
continues), put each page's messages on the stream *before* writing its ``next_cursor``, and apply its
kf events (``gateway/wecom_sessions.py``) in WeCom's order. A crash between the two re-pulls the page and
dedupe on ``msgid`` absorbs it; a lock that expires under a slow pull has the same worst case. A pending
record is deleted only if no newer callback replaced it meanwhile, so a callback that arrives during a
pull always gets a pull of its own. A slow catch-up pull without a token (WeCom rate-limits those) covers
callbacks that never arrived, for every account seen before that has not been pulled for that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from redis.asyncio.client import PubSub

from connectors.base import PayloadError
from connectors.wecom_kf import BadItem, KfApiError, KfCallback, KfEvent, WeComKfConnector, parse_sync_page
from gateway.models import InboundMessage
from gateway.redis_conn import as_text
from gateway.redis_lock import TokenLocks
from gateway.services import Services
from gateway.wecom_sessions import WeComSessions

log = logging.getLogger(__name__)

_DONE_IF_SAME = ("if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then "
                 "return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0")
_MAX_BACKOFF_S = 60.0


async def request_pull(services: Services, callback: KfCallback) -> None:
    """Record a callback durably (the newest token wins: it is valid longest), then wake the pullers."""
    keys = services.keys
    async with services.redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.wecom_pending, callback.open_kfid, callback.token)
        pipe.sadd(keys.wecom_accounts, callback.open_kfid)
        await pipe.execute()
    with contextlib.suppress(Exception):  # the pending hash is the record; pullers also check it on a timer
        await services.redis.publish(keys.wecom_kick, callback.open_kfid)


@dataclass
class PullReport:
    pages: int = 0
    ingested: int = 0  # new messages put on the stream
    duplicates: int = 0
    events: int = 0
    dead: int = 0
    complete: bool = False  # reached has_more=0 (False: stopped at max_pages; more is waiting)


class WeComPuller:
    """Pulls kf messages for every account with a pending callback, and periodically for all known ones."""

    def __init__(self, services: Services, connector: WeComKfConnector, *, poll_interval_s: float,
                 check_interval_s: float = 1.0, lock_ttl_ms: int = 120_000, page_limit: int = 1000,
                 max_pages: int = 500) -> None:
        self.s = services
        self.connector = connector
        self.poll_interval_s = poll_interval_s
        self.check_interval_s = check_interval_s
        self.lock_ttl_ms = lock_ttl_ms
        self.page_limit = page_limit
        self.max_pages = max_pages  # per pull: a server that keeps saying has_more cannot hold us forever
        self.sessions = WeComSessions(services)
        self._locks = TokenLocks(services.redis)
        self._done_if_same = services.redis.register_script(_DONE_IF_SAME)
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}

    # ---- one pull --------------------------------------------------------------------------------

    async def pull(self, open_kfid: str, token: str | None) -> PullReport | None:
        """Pull ``open_kfid`` until ``has_more`` is 0. None: another puller holds the account right now."""
        lock_key = self.s.keys.wecom_pull_lock(open_kfid)
        lock = await self._locks.acquire(lock_key, self.lock_ttl_ms)
        if lock is None:
            return None
        report = PullReport()
        try:
            cursor_key = self.s.keys.wecom_cursor(open_kfid)
            raw_cursor = await self.s.redis.get(cursor_key)
            cursor = as_text(raw_cursor) if raw_cursor else ""
            while report.pages < self.max_pages:
                answer, token = await self._sync(cursor, token, open_kfid)
                try:
                    page = parse_sync_page(answer)
                except PayloadError as exc:
                    await self._dead_letter(answer, f"wecom sync_msg page: {exc}", f"wecom:{open_kfid}:{cursor}")
                    raise
                report.pages += 1
                await self._apply(page.items, report)
                if page.next_cursor:  # only after the page's messages are on the stream
                    cursor = page.next_cursor
                    await self.s.redis.set(cursor_key, cursor)
                if not page.has_more:  # never stop on an empty msg_list: has_more=1 may come with none
                    report.complete = True
                    break
                await self._locks.extend(lock_key, lock, self.lock_ttl_ms)
        finally:
            await self._locks.release(lock_key, lock, quiet=True)
        if report.pages or report.ingested:
            log.info("wecom kf %s: %d page(s), %d new message(s), %d duplicate(s), %d event(s), %d dead",
                     open_kfid, report.pages, report.ingested, report.duplicates, report.events, report.dead)
        return report

    async def _sync(self, cursor: str, token: str | None, open_kfid: str) -> tuple[dict[str, Any], str | None]:
        try:
            return await self.connector.sync_msg(cursor, token, open_kfid, self.page_limit), token
        except KfApiError as exc:
            if token is None or exc.transient:
                raise
            # The callback token is past its 10 minutes (or otherwise refused): the cursor still works.
            log.info("wecom kf %s: pull with the callback token refused (%s); pulling without it", open_kfid, exc)
            return await self.connector.sync_msg(cursor, None, open_kfid, self.page_limit), None

    async def _apply(self, items: tuple[InboundMessage | KfEvent | BadItem, ...], report: PullReport) -> None:
        for item in items:  # WeCom's order: a takeover event lands between the messages around it
            if isinstance(item, InboundMessage):
                [result] = await self.s.bus.ingest([item])
                report.duplicates += result.duplicate
                report.ingested += not result.duplicate
            elif isinstance(item, KfEvent):
                await self.sessions.apply(item)
                report.events += 1
            else:
                await self._dead_letter(item.raw, f"wecom sync_msg item: {item.error}", item.source_id)
                report.dead += 1

    async def _dead_letter(self, raw: Any, error: str, source_id: str) -> None:
        log.error("unreadable WeCom kf data %s: %s", source_id, error)
        await self.s.redis.xadd(self.s.keys.dead_letter(self.s.keys.inbound), {
            "raw": json.dumps(raw, ensure_ascii=False, default=str), "error": error, "source_id": source_id})

    # ---- what to pull ----------------------------------------------------------------------------

    async def drain_pending(self) -> None:
        """Pull every account with a recorded callback; forget a record only if no newer one replaced it."""
        pending = await self.s.redis.hgetall(self.s.keys.wecom_pending)
        for raw_kfid, raw_token in pending.items():
            open_kfid, token = as_text(raw_kfid), as_text(raw_token)
            if not self._due(open_kfid):
                continue
            report = await self._guarded(open_kfid, token)
            if report is not None and report.complete:
                await self._done_if_same(keys=[self.s.keys.wecom_pending], args=[open_kfid, token])

    async def catch_up(self) -> None:
        """Tokenless pull of each known account, at most once per ``poll_interval_s`` deployment-wide."""
        for raw in await self.s.redis.smembers(self.s.keys.wecom_accounts):
            open_kfid = as_text(raw)
            gate = self.s.keys.wecom_poll_gate(open_kfid)
            if self._due(open_kfid) and await self.s.redis.set(gate, "1", nx=True, px=int(self.poll_interval_s * 1000)):
                await self._guarded(open_kfid, None)

    def _due(self, open_kfid: str) -> bool:
        return asyncio.get_running_loop().time() >= self._retry_at.get(open_kfid, 0.0)

    async def _guarded(self, open_kfid: str, token: str | None) -> PullReport | None:
        """``pull`` with per-account back-off: one failing account neither stops nor floods the others."""
        try:
            report = await self.pull(open_kfid, token)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures = self._failures.get(open_kfid, 0) + 1
            self._failures[open_kfid] = failures
            delay = min(_MAX_BACKOFF_S, 2.0 ** failures)
            self._retry_at[open_kfid] = asyncio.get_running_loop().time() + delay
            log.warning("wecom kf pull of %s failed (%s); retrying in %.0f s", open_kfid, exc, delay)
            return None
        self._failures.pop(open_kfid, None)
        self._retry_at.pop(open_kfid, None)
        if report is not None and report.complete:
            # Just caught up: the tokenless catch-up (rate-limited by WeCom) is only for silent accounts.
            await self.s.redis.set(self.s.keys.wecom_poll_gate(open_kfid), "1", px=int(self.poll_interval_s * 1000))
        return report

    # ---- the loop --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Pull on every kick, every ``check_interval_s`` for pending records, and the slow catch-up."""
        pubsub: PubSub | None = None
        while not stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self.s.redis.pubsub()
                    await pubsub.subscribe(self.s.keys.wecom_kick)
                await self.drain_pending()
                await self.catch_up()
                await self._wait(pubsub, stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("wecom kf puller failed; retrying")
                await _close(pubsub)
                pubsub = None  # resubscribe: the connection may be what failed
                await asyncio.sleep(self.check_interval_s)
        await _close(pubsub)

    async def _wait(self, pubsub: PubSub, stop: asyncio.Event) -> None:
        if stop.is_set():
            return
        kick = await pubsub.get_message(ignore_subscribe_messages=True, timeout=self.check_interval_s)
        if kick is not None:  # coalesce: the drain about to start covers every kick already buffered
            while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.0) is not None:
                pass


async def _close(pubsub: PubSub | None) -> None:
    if pubsub is not None:
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]
