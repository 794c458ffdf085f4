"""The delivery worker: consumes the outbound stream and sends each reply through its channel.

A reply is sent at most once per id on our side (a ``delivered`` marker is set after success), is
retried on transient failures honouring the channel's ``retry_after``, and on a permanent failure it
is recorded on the conversation and escalated to a human, never silently dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

import redis.asyncio as aioredis
from pydantic import ValidationError

from connectors.registry import Connectors, UnknownChannel
from gateway.keys import Keys
from gateway.models import DeliveryResult, OutboundMessage
from gateway.streams import PoisonMessage
from ticketing.escalation import EscalationReason, TicketStore

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """Transient channel failure: leave the entry pending; the consumer reclaims and retries it."""


class DeliveryWorker:
    def __init__(
        self,
        *,
        redis: aioredis.Redis,
        keys: Keys,
        connectors: Connectors,
        tickets: TicketStore,
        clock: Callable[[], datetime],
        delivered_ttl_s: int = 7 * 24 * 3600,
        max_inline_wait_s: float = 5.0,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.connectors = connectors
        self.tickets = tickets
        self.clock = clock
        self.delivered_ttl_s = delivered_ttl_s
        self.max_inline_wait_s = max_inline_wait_s

    async def handle(self, entry_id: str, fields: dict[bytes, bytes]) -> None:
        try:
            msg = OutboundMessage.model_validate_json(fields[b"m"])
        except (KeyError, ValidationError) as exc:
            raise PoisonMessage(f"unreadable outbound entry: {exc}") from exc
        await self.deliver(msg)

    async def deliver(self, msg: OutboundMessage) -> DeliveryResult | None:
        marker = self.keys.delivered(msg.message_id)
        if await self.redis.exists(marker):
            return None  # a redelivered entry whose send already succeeded
        try:
            connector = self.connectors.get(msg.channel)
        except UnknownChannel as exc:
            await self._fail(msg, str(exc))
            return DeliveryResult(ok=False, permanent=True, error=str(exc))
        result: DeliveryResult = await connector.send(msg)
        if not result.ok and not result.permanent and (result.retry_after or 0) <= self.max_inline_wait_s:
            await asyncio.sleep(result.retry_after or 0.5)
            result = await connector.send(msg)
        if result.ok:
            await self.redis.set(marker, ",".join(result.external_ids) or "1", ex=self.delivered_ttl_s)
            return result
        if result.permanent:
            await self._fail(msg, result.error or "permanent delivery failure")
            return result
        raise RetryLater(f"{msg.channel.value}: {result.error} (retry after {result.retry_after}s)")

    async def _fail(self, msg: OutboundMessage, error: str) -> None:
        log.error("delivery of %s on %s failed permanently: %s", msg.message_id, msg.channel.value, error)
        await self.tickets.escalate(
            msg.conversation_id,
            EscalationReason.CHANNEL_FAILURE,
            summary=f"回复发送失败 / reply could not be delivered: {error}",
            now=self.clock(),
            details={"message_id": msg.message_id, "error": error},
        )
