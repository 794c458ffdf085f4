"""The contract every connector module fulfils.

A connector is one module with one class that:

* ``verify(request)`` — pure and constant-time: is this request really from the channel?
* ``parse(body)`` — pure: provider payload -> ``list[InboundMessage]`` (empty for payloads that carry
  no customer message, e.g. a Telegram ``my_chat_member`` update);
* ``async send(message)`` — deliver one ``OutboundMessage``, reporting a ``DeliveryResult``.

Connectors never import each other, never touch the streams or the database, and do no work at import
time; the gateway owns I/O around them. Errors the *customer's channel* caused are raised as
``VerificationError`` / ``PayloadError`` so the gateway answers 4xx, never 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from gateway.models import Channel, DeliveryResult, InboundMessage, OutboundMessage


class ConnectorError(Exception):
    """Base class of the errors a connector raises about its input."""

    status: ClassVar[int] = 400


class VerificationError(ConnectorError):
    """The request is not from the channel (bad or missing signature/secret)."""

    status = 401


class PayloadError(ConnectorError):
    """The request is from the channel (or unauthenticated by design) but its body is unusable."""

    status = 400


class PayloadTooLarge(PayloadError):
    status = 413


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A framework-neutral view of an HTTP request, so ``verify``/``parse`` stay pure and testable."""

    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    remote: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """What the channel expects back once messages are safely on the stream."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"
    extra: dict[str, Any] = field(default_factory=dict)


class Connector(Protocol):
    """Structural type of a connector class instance."""

    channel: ClassVar[Channel]

    def verify(self, request: WebhookRequest) -> None:
        """Raise ``VerificationError`` unless the request is authentic. Pure; constant-time compares."""

    def parse(self, body: bytes) -> list[InboundMessage]:
        """Turn a provider payload into canonical messages. Pure; raise ``PayloadError`` on junk."""

    def ack(self, messages: list[InboundMessage]) -> WebhookResponse:
        """The response the channel expects after the messages are persisted."""

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Deliver one reply. Never raises for channel-side failures: report them in the result."""

    async def aclose(self) -> None:
        """Release network resources."""
