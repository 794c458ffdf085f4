"""IMAP intake for the email channel: fetch new mail, thread it, persist it, then advance the cursor.

IMAPClient (BSD; aioimaplib is GPL-3.0) is synchronous, so each IMAP call runs in a worker thread
(``asyncio.to_thread``) on one connection owned by one loop. The cursor is ``(UIDVALIDITY, last UID)``
in Redis and advances only after a mail is on the inbound stream, and ``\\Seen`` is set after that: a
crash re-fetches, and Message-ID dedupe absorbs the repeat.

* First run, or UIDVALIDITY changed (the mailbox was rebuilt, UIDs mean nothing now): take the
  UNSEEN mail, never the whole history (answering years-old mail would be wrong); mail we already
  took is deduplicated by Message-ID.
* New mail: ``UID SEARCH UID <last+1>:*``, filtered, because ``n:*`` always matches the last message.
* Waiting: IDLE when the server offers it (re-issued before RFC 2177's 29 minutes, and at least every
  poll interval so a connection that silently died is noticed); otherwise a poll every interval. A
  server announces new mail once, on whatever response comes next: mail that lands while a SEARCH or
  FETCH runs is announced there, and IDLE will not announce it again. So any EXISTS seen since the
  last sync means "sync again" rather than "go idle".
* One poller per mailbox per deployment: a Redis token lock, extended while the session lives. Any
  error ends the session; the loop reconnects with backoff and never crashes the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from ssl import SSLContext, create_default_context
from typing import Any

from imapclient import SEEN as SEEN_FLAG  # type: ignore[import-untyped]
from imapclient import IMAPClient

from connectors.base import PayloadError
from connectors.email import EmailConnector
from gateway.email_threads import RedisEmailThreads, lookup_conversation_key
from gateway.redis_lock import TokenLocks
from gateway.services import Services

log = logging.getLogger(__name__)

IDLE_RENEW_S = 25 * 60  # RFC 2177: servers may drop an idle client after 30 min; re-issue well before
_MAX_DEAD_LETTER_BYTES = 1_000_000  # the mail stays in the mailbox; the dead letter keeps enough to debug


@dataclass(frozen=True, slots=True)
class ImapSettings:
    host: str
    port: int
    user: str
    password: str
    ssl: bool = True
    folder: str = "INBOX"
    poll_interval_s: float = 60.0
    idle: bool = True  # use IDLE when offered (tests turn it off to exercise polling)
    timeout_s: float = 30.0
    ssl_context: SSLContext | None = None

    @property
    def mailbox(self) -> str:
        """Names the cursor and the lock: one per account and folder."""
        return f"{self.user}@{self.host}:{self.port}/{self.folder}"


class ImapMailbox:
    """One IMAP connection to one selected folder. Blocking: call its methods via ``asyncio.to_thread``.
    A lock serialises them, so ``close`` from another thread waits for a running IDLE to end."""

    def __init__(self, settings: ImapSettings) -> None:
        self.settings = settings
        self.uidvalidity = 0
        self.uidnext = 0
        self.can_idle = False
        self._client: IMAPClient | None = None
        self._lock = threading.Lock()
        self._closing = False

    def _c(self) -> IMAPClient:
        if self._client is None:
            raise ConnectionError("IMAP mailbox is not open")
        return self._client

    def open(self) -> None:
        s = self.settings
        context = s.ssl_context or create_default_context()
        with self._lock:
            client = IMAPClient(s.host, port=s.port, ssl=s.ssl, ssl_context=context if s.ssl else None,
                                timeout=s.timeout_s)
            self._client = client
            if not s.ssl and client.has_capability("STARTTLS"):
                client.starttls(context)  # never send the password in clear when the server can do better
            client.login(s.user, s.password)
            info = client.select_folder(s.folder)
            self.uidvalidity = int(info[b"UIDVALIDITY"])
            self.uidnext = int(info.get(b"UIDNEXT") or 0)
            self.can_idle = bool(client.has_capability("IDLE"))
            _take_exists(client)  # SELECT's count is the baseline; the first sync covers it

    def uids_after(self, last_uid: int) -> list[int]:
        with self._lock:
            found = self._c().search(["UID", f"{last_uid + 1}:*"])
        return sorted(uid for uid in found if uid > last_uid)  # "n:*" always matches the newest mail

    def unseen(self) -> list[int]:
        with self._lock:
            return sorted(self._c().search(["UNSEEN"]))

    def fetch(self, uids: list[int]) -> dict[int, bytes]:
        """Full raw mail by UID; ``BODY.PEEK`` so fetching never marks mail read before it is persisted."""
        with self._lock:
            data: dict[int, dict[bytes, Any]] = self._c().fetch(uids, ["BODY.PEEK[]"])
        return {uid: bytes(item[b"BODY[]"]) for uid, item in data.items() if item.get(b"BODY[]") is not None}

    def mark_seen(self, uids: list[int]) -> None:
        with self._lock:
            self._c().add_flags(uids, [SEEN_FLAG], silent=True)

    def mail_announced(self) -> bool:
        """True if the server announced mail (EXISTS) on any response since the last check."""
        with self._lock:
            return _take_exists(self._c())

    def idle_wait(self, seconds: float, should_stop: Callable[[], bool]) -> bool:
        """IDLE for at most ``seconds``; True as soon as the server reports new mail (EXISTS). Checks
        ``should_stop`` every second, so stopping never waits for the server."""
        with self._lock:
            client = self._c()
            client.idle()
            try:
                if _take_exists(client):  # announced before the server's "+ idling"
                    return True
                sock = client.socket()
                deadline = time.monotonic() + seconds
                while not (should_stop() or self._closing):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    readable, _, _ = select.select([sock], [], [], min(1.0, remaining))
                    if not readable:
                        continue
                    responses = client.idle_check(timeout=0)
                    if not responses:
                        raise ConnectionError("IMAP server closed the connection during IDLE")
                    if any(len(r) > 1 and r[1] == b"EXISTS" for r in responses):
                        return True
                return False
            finally:
                try:
                    client.idle_done()
                finally:
                    client.socket().settimeout(self.settings.timeout_s)  # idle_check left it blocking forever

    def close(self) -> None:
        self._closing = True  # ends a running idle_wait within a second, so the lock frees
        with self._lock:
            client, self._client = self._client, None
            if client is not None:
                try:
                    client.logout()
                except Exception:
                    with contextlib.suppress(Exception):
                        client.shutdown()


class EmailPoller:
    """The intake loop of one mailbox (see the module docstring)."""

    def __init__(self, services: Services, connector: EmailConnector, threads: RedisEmailThreads,
                 imap: ImapSettings, *, lock_ttl_ms: int = 60_000, batch: int = 20,
                 idle_renew_s: float = IDLE_RENEW_S, max_backoff_s: float = 300.0) -> None:
        self.services = services
        self.connector = connector
        self.threads = threads
        self.imap = imap
        self.lock_ttl_ms = lock_ttl_ms
        self.batch = batch
        self.idle_renew_s = idle_renew_s
        self.max_backoff_s = max_backoff_s
        self.cursor_key = services.keys.email_cursor(imap.mailbox)
        self.lock_key = services.keys.email_poller_lock(imap.mailbox)
        self._locks = TokenLocks(services.redis)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set. Never raises except on cancellation."""
        backoff = 1.0
        while not stop.is_set():
            token = None
            try:
                token = await self._locks.acquire(self.lock_key, self.lock_ttl_ms)
                if token is None:  # another process polls this mailbox; take over if it dies
                    await _wait(stop, timeout=self.lock_ttl_ms / 2000)
                    continue
                await self._session(stop, token)
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("email poller %s: %s: %s; reconnecting in %.0f s", self.imap.mailbox,
                            type(exc).__name__, exc, backoff)
                await _wait(stop, timeout=backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
            finally:
                if token is not None:
                    await self._locks.release(self.lock_key, token, quiet=True)

    async def _session(self, stop: asyncio.Event, token: str) -> None:
        box = ImapMailbox(self.imap)
        lost = asyncio.Event()
        keeper = asyncio.create_task(self._keep_lock(token, lost, stop))
        try:
            await asyncio.to_thread(box.open)
            log.info("email poller %s: connected (UIDVALIDITY %d, IDLE %s)", self.imap.mailbox, box.uidvalidity,
                     "yes" if box.can_idle else "no")
            while not (stop.is_set() or lost.is_set()):
                await self.sync(box)
                if await asyncio.to_thread(box.mail_announced):
                    continue  # mail arrived while we synced; IDLE would not report it again
                if box.can_idle and self.imap.idle:
                    # The IDLE cycle also bounds how long a silently dead connection goes unnoticed.
                    cycle = min(self.idle_renew_s, max(self.imap.poll_interval_s, 1.0))
                    await asyncio.to_thread(box.idle_wait, cycle, lambda: stop.is_set() or lost.is_set())
                else:
                    await _wait(stop, lost, timeout=self.imap.poll_interval_s)
        finally:
            keeper.cancel()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(box.close)

    async def _keep_lock(self, token: str, lost: asyncio.Event, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await _wait(stop, timeout=self.lock_ttl_ms / 3000)
            try:
                if not await self._locks.extend(self.lock_key, token, self.lock_ttl_ms):
                    log.warning("email poller %s: lost the mailbox lock; stopping this session", self.imap.mailbox)
                    lost.set()
                    return
            except Exception as exc:  # Redis briefly away: the TTL still covers us; try again
                log.warning("email poller %s: could not extend the lock: %s", self.imap.mailbox, exc)

    async def sync(self, box: ImapMailbox) -> int:
        """Ingest every mail after the cursor; returns how many were fetched."""
        redis = self.services.redis
        cursor = await redis.hgetall(self.cursor_key)
        known = int(cursor.get(b"uidvalidity") or 0)
        last = int(cursor.get(b"last_uid") or 0)
        if known != box.uidvalidity:
            if known:
                log.warning("email poller %s: UIDVALIDITY changed %d -> %d; resyncing from unseen mail",
                            self.imap.mailbox, known, box.uidvalidity)
            uids = await asyncio.to_thread(box.unseen)
            last = 0
        else:
            uids = await asyncio.to_thread(box.uids_after, last)
        for start in range(0, len(uids), self.batch):
            chunk = uids[start:start + self.batch]
            mails = await asyncio.to_thread(box.fetch, chunk)
            for uid in chunk:
                raw = mails.get(uid)
                if raw is not None:  # None: expunged between SEARCH and FETCH
                    await self.ingest(raw, f"imap:{box.uidvalidity}:{uid}")
                last = max(last, uid)
                await redis.hset(self.cursor_key, mapping={"uidvalidity": box.uidvalidity, "last_uid": last})
            await asyncio.to_thread(box.mark_seen, chunk)
        if known != box.uidvalidity:
            # Skip mail that was already read before we started (UIDs below UIDNEXT at SELECT).
            last = max(last, box.uidnext - 1)
            await redis.hset(self.cursor_key, mapping={"uidvalidity": box.uidvalidity, "last_uid": last})
        return len(uids)

    async def ingest(self, raw: bytes, source: str) -> None:
        """Parse, thread (database steps), remember the reply context, put on the stream."""
        s = self.services
        try:
            parsed = self.connector.parse_mail(raw, source=source, now=s.clock())
        except PayloadError as exc:
            log.error("email poller %s: unparseable mail %s: %s", self.imap.mailbox, source, exc)
            await s.redis.xadd(s.keys.dead_letter(s.keys.inbound), {
                "raw": raw[:_MAX_DEAD_LETTER_BYTES], "error": f"email parse: {exc}",
                "source_id": f"email:{self.imap.mailbox}:{source}"})
            return
        msg = parsed.message
        if parsed.threaded_by == "new":
            key = await lookup_conversation_key(s.engine, parsed)
            if key is not None:
                msg = msg.model_copy(update={"conversation_key": key})
        if msg.automated is None:
            # Before the stream: the bot's reply must find its thread however fast it answers.
            await self.threads.remember(msg.conversation_key, msg.message_id, parsed.context)
        await s.bus.ingest([msg])


def _take_exists(client: IMAPClient) -> bool:
    """Pop the EXISTS announcements imaplib kept from earlier responses. IMAPClient parses only the
    responses each command asks for and leaves the rest in imaplib's ``untagged_responses``, which
    it does not expose; imaplib's public ``response()`` reads and clears them."""
    _typ, data = client._imap.response("EXISTS")
    return any(item is not None for item in data)


async def _wait(*events: asyncio.Event, timeout: float) -> None:
    """Sleep ``timeout`` seconds, or less if any of ``events`` is set."""
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
