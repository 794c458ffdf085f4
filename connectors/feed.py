"""The contract of feed-based channel adapters (the marketplaces), beside ``connectors/base.py``.

Webhook channels are *pushed* a request and answer it; marketplace message services are *pulled*: a
queue (Taobao TMC), a WebSocket (Pinduoduo) or a time-windowed history query (JD) that we read,
persist, and only then acknowledge. One loop (``gateway/marketplace_feed.py``) drives every adapter:

    batch = await adapter.pull(cursor)        # waits a short while at most
    await bus.ingest(batch.messages)          # persisted (deduplicated) on the inbound stream
    dead-letter batch.failures                # unparseable items are kept, never dropped
    persist batch.cursor (if any)
    await adapter.confirm(batch)              # only now may the platform forget the items

A crash anywhere before ``confirm`` means the platform delivers the items again (at-least-once); the
intake dedupe on ``(channel, external_message_id)`` makes that harmless. So adapters must derive
``external_message_id`` from something the platform repeats on redelivery (TMC message id, PDD
message id, JD session id + time + content digest).

An adapter is also the channel's connector for replies (``send``/``aclose`` as in ``base.py``) and
keeps the ``Connector`` rules: no I/O at import or construction, never touches streams or the
database, never imports another connector, and ``parse_feed`` is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from gateway.models import Channel, DeliveryResult, InboundMessage, OutboundMessage


class FeedError(Exception):
    """The platform refused a feed call. ``permanent``: it will keep refusing until an operator acts
    (bad credentials, revoked authorisation, missing permission); otherwise it is transient and
    ``retry_after`` (seconds) says when to try again, if the platform said so."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class FeedFailure:
    """One item the platform delivered that could not be turned into messages.

    It goes to the dead-letter stream with ``raw`` and ``error`` and is then confirmed, so one bad item
    never blocks the platform's queue for everything behind it.
    """

    item_id: str
    raw: str
    error: str


@dataclass(frozen=True, slots=True)
class FeedBatch:
    """What one ``pull`` produced.

    ``receipts`` are opaque to the loop: the adapter hands them back to itself in ``confirm`` (TMC
    message ids, PDD ack frames). ``cursor`` is the position to persist once the batch is stored, for
    feeds the platform does not track for us (JD's time window); None leaves the stored cursor as is.
    ``ignored`` counts items that were not customer chat (order events, the shop's own messages) and
    are confirmed without producing messages.
    """

    messages: tuple[InboundMessage, ...] = ()
    receipts: tuple[Any, ...] = ()
    failures: tuple[FeedFailure, ...] = ()
    cursor: str | None = None
    ignored: int = 0

    @property
    def empty(self) -> bool:
        return not (self.messages or self.receipts or self.failures) and self.cursor is None


class FeedAdapter(Protocol):
    """Structural type of a marketplace adapter (see the module docstring for the loop it serves)."""

    channel: ClassVar[Channel]

    @property
    def feed_name(self) -> str:
        """Stable name of this account's feed, for its Redis lock, cursor and status keys."""

    @property
    def exclusive(self) -> bool:
        """True when only one process of the deployment may consume the feed at a time (a single
        WebSocket per app, a shared time cursor); the loop then holds a Redis lock while pulling."""

    async def pull(self, cursor: str | None) -> FeedBatch:
        """The next items, waiting a few seconds at most (an empty batch is fine). Raises ``FeedError``
        when the platform refuses, and network errors as they come; never confirms anything."""

    async def confirm(self, batch: FeedBatch) -> None:
        """Tell the platform the batch is safely stored. Only called after it is."""

    def parse_feed(self, item: Any) -> list[InboundMessage]:
        """One platform item -> messages (empty for non-chat items). Pure; raises ``PayloadError``."""

    async def suspend(self) -> None:
        """Drop any long-lived feed connection (this process lost the feed lock or is stopping); the
        next ``pull`` reconnects. Unconfirmed items are redelivered by the platform."""

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Deliver one reply. Never raises for channel-side failures: report them in the result."""

    async def aclose(self) -> None:
        """Release network resources."""
