"""The delivery worker: consumes the outbound stream and sends each reply through its channel, within limits.

For every reply, in order:

1. **Once per id.** A ``delivered`` marker (set after success) or a ``failed`` marker (set after a
   permanent failure) ends any later copy at once; an in-flight lock keeps two workers from sending the
   same id at the same moment (a slow send whose entry was reclaimed elsewhere).
2. **Reply window** (WeChat, WeCom kf): closed, or its 5 replies used, is a permanent failure decided
   *before* the platform is called (``outbound_limits.window_closed``, ``outbound_limiter.ReplyQuota``).
3. **Rates** (``outbound_limits.limits_for``): the limiter reserves the reply's slot; a short wait is
   slept, a longer one schedules the reply for that slot (``outbound_retry.DelayedOutbox``) and frees
   the consumer at once.
4. **Retries**: a transient failure schedules the reply ``retry_after`` later (or with back-off),
   reserving its slot so later replies of the conversation stay behind it — until
   ``OUTBOUND_MAX_ATTEMPTS`` / ``OUTBOUND_MAX_AGE_S``, when it becomes a permanent failure.
5. **Permanent failure**: recorded on the conversation's ticket and announced to agents and
   supervisors (``delivery_failures``), never silently dropped.

Scheduling stores the delayed copy and acks the stream entry in one Redis script, so a reply is never
lost between the two.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from pydantic import ValidationError

from connectors.registry import Connectors, UnknownChannel
from gateway.db.reply_window import last_customer_message_at
from gateway.delivery_failures import record_delivery_failure
from gateway.keys import Keys
from gateway.models import DeliveryResult, OutboundMessage
from gateway.outbound_limiter import RateLimiter, ReplyQuota
from gateway.outbound_limits import (
    OutboundPolicy,
    give_up_reason,
    limits_for,
    retry_delay_s,
    window_closed,
)
from gateway.outbound_retry import DelayedOutbox
from gateway.redis_lock import TokenLocks
from gateway.streams import PoisonMessage
from ticketing.escalation import TicketStore

log = logging.getLogger(__name__)

DELIVERY_GROUP = "delivery"


class RetryLater(Exception):
    """Transient channel failure; ``handle`` schedules the reply again after ``retry_after``."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Deferred(Exception):
    """The rate limiter reserved a slot ``wait_s`` ahead, longer than the worker sleeps for."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"rate limited: slot reserved {wait_s:.3f}s ahead")
        self.wait_s = wait_s


class InFlight(Exception):
    """Another worker holds this reply's in-flight lock (it is being sent right now)."""


class DeliveryWorker:
    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        keys: Keys,
        connectors: Connectors,
        tickets: TicketStore,
        clock: Callable[[], datetime],
        policy: OutboundPolicy | None = None,
        group: str = DELIVERY_GROUP,
        delivered_ttl_s: int = 7 * 24 * 3600,
        sending_ttl_ms: int = 180_000,
        in_flight_recheck_s: float = 10.0,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.connectors = connectors
        self.tickets = tickets
        self.clock = clock
        self.policy = policy or OutboundPolicy()
        self.delivered_ttl_s = delivered_ttl_s
        # Bounds a crashed sender only; longer than any send (Telegram waits out 429s up to 30 s inside).
        self.sending_ttl_ms = sending_ttl_ms
        self.in_flight_recheck_s = in_flight_recheck_s  # another worker is sending the id: look again then
        self.limiter = RateLimiter(redis, keys)
        self.quota = ReplyQuota(redis, keys)
        self.outbox = DelayedOutbox(redis, keys, group=group)
        self.locks = TokenLocks(redis)

    async def handle(self, entry_id: str, fields: dict[bytes, bytes]) -> None:
        """Stream handler: deliver, or schedule the reply for later (acking this entry atomically)."""
        try:
            msg = OutboundMessage.model_validate_json(fields[b"m"])
            failures = int(fields.get(b"a", b"0"))
        except (KeyError, ValueError, ValidationError) as exc:
            raise PoisonMessage(f"unreadable outbound entry: {exc}") from exc
        try:
            await self.deliver(msg, reserved=fields.get(b"r") == b"1")
        except Deferred as exc:
            await self._schedule(entry_id, msg, failures, delay_s=exc.wait_s, reserved=True)
        except InFlight:
            # If that sender succeeds, the copy scheduled here finds the delivered marker; if it crashed,
            # the copy retries once its lock has expired. An already scheduled copy is left as it is.
            await self._schedule(entry_id, msg, failures, delay_s=self.in_flight_recheck_s, reserved=False,
                                 only_if_absent=True)
        except RetryLater as exc:
            await self._retry(entry_id, msg, failures + 1, exc)

    async def deliver(self, msg: OutboundMessage, *, reserved: bool = False) -> DeliveryResult | None:
        """Send ``msg`` once within its limits. Returns None for an id already settled; raises
        ``Deferred`` / ``InFlight`` / ``RetryLater`` when it must be tried later (see ``handle``)."""
        if await self._settled(msg.message_id):
            return None  # a redelivered entry whose send already succeeded (or was handed to an agent)
        try:
            connector = self.connectors.get(msg.channel)
        except UnknownChannel as exc:
            return await self._permanent(msg, str(exc))
        limits = limits_for(msg, self.policy)
        window_start = None
        if limits.window is not None:
            window_start = await last_customer_message_at(self.tickets.engine, msg.conversation_id)
            closed = window_closed(window_start, self.clock(), limits.window)
            if closed is not None:
                return await self._permanent(msg, closed)
        if not reserved:  # a scheduled reply comes back at the slot reserved for it
            wait = await self.limiter.reserve(limits.rates, cost=limits.cost)
            if wait * 1000 > self.policy.max_inline_wait_ms:
                raise Deferred(wait)
            if wait > 0:
                await asyncio.sleep(wait)
        lock_key = self.keys.outbound_sending(msg.message_id)
        token = await self.locks.acquire(lock_key, self.sending_ttl_ms)
        if token is None:
            raise InFlight(msg.message_id)
        result: DeliveryResult | None = None
        taken = False
        try:
            if await self._settled(msg.message_id):
                return None  # the sender we raced with has just finished
            if limits.window is not None and window_start is not None:
                if await self.quota.take(msg.conversation_id, window_start, limits.window,
                                         cost=limits.cost) is None:
                    return await self._permanent(msg, (
                        f"reply quota used up: the platform allows {limits.window.max_replies} messages per "
                        f"customer message and this reply needs {limits.cost}"))
                taken = True
            result = await connector.send(msg)
            if result.ok:
                await self.redis.set(self.keys.delivered(msg.message_id), ",".join(result.external_ids) or "1",
                                     ex=self.delivered_ttl_s)
                return result
        finally:
            if taken and (result is None or not result.ok) and window_start is not None:
                # Not sent, so not counted by the platform. (A later chunk failing after earlier ones went
                # out refunds those too; the platform's own 45047 then catches the overshoot.)
                await self.quota.refund(msg.conversation_id, window_start, cost=limits.cost)
            await self.locks.release(lock_key, token, quiet=True)
        assert result is not None  # every path through the block either returned or set it
        if result.permanent:
            await self._fail(msg, result.error or "permanent delivery failure")
            return result
        raise RetryLater(f"{msg.channel.value}: {result.error} (retry after {result.retry_after}s)",
                         retry_after=result.retry_after)

    async def _retry(self, entry_id: str, msg: OutboundMessage, failures: int, exc: RetryLater) -> None:
        age_s = (self.clock() - msg.created_at).total_seconds()
        reason = give_up_reason(failures, age_s, self.policy)
        if reason is not None:
            await self._fail(msg, f"{exc}; {reason}")
            return
        limits = limits_for(msg, self.policy)
        # Reserve the retry's slot now, so replies of this conversation written meanwhile stay behind it.
        wait = await self.limiter.reserve(limits.rates, cost=limits.cost,
                                          not_before_s=retry_delay_s(failures, exc.retry_after))
        log.info("delivery of %s failed (%s); retry %d in %.1fs", msg.message_id, exc, failures, wait)
        await self._schedule(entry_id, msg, failures, delay_s=wait, reserved=True)

    async def _schedule(self, entry_id: str, msg: OutboundMessage, failures: int, *, delay_s: float,
                        reserved: bool, only_if_absent: bool = False) -> None:
        payload: dict[str, Any] = {"m": msg.model_dump_json(), "c": msg.conversation_id, "a": failures,
                                   "r": "1" if reserved else "0"}
        await self.outbox.schedule(msg.message_id, payload, delay_s=delay_s, entry_id=entry_id,
                                   only_if_absent=only_if_absent)

    async def _settled(self, message_id: str) -> bool:
        return bool(await self.redis.exists(self.keys.delivered(message_id), self.keys.outbound_failed(message_id)))

    async def _permanent(self, msg: OutboundMessage, error: str) -> DeliveryResult:
        """Fail without calling the channel (unknown channel, closed reply window, used quota)."""
        await self._fail(msg, error)
        return DeliveryResult(ok=False, permanent=True, error=error)

    async def _fail(self, msg: OutboundMessage, error: str) -> None:
        log.error("delivery of %s on %s failed permanently: %s", msg.message_id, msg.channel.value, error)
        await record_delivery_failure(self.tickets.engine, self.redis, self.keys, msg, error, now=self.clock())
        # Last: a crash before it lets a copy try again rather than leave the failure unrecorded.
        await self.redis.set(self.keys.outbound_failed(msg.message_id), error[:500], ex=self.delivered_ttl_s)
