"""Generic signed webhook channel: any ISV bridge or in-house system pushes chats in and gets replies back.

The wire format is documented for integrators in ``docs/webhook-channel.md`` (schema version 1).

Inbound: ``POST /webhooks/inbound`` with a JSON body ``{"version": 1, "messages": [...]}`` signed like every
Huiliu webhook (``connectors.marketplace_sign``): ``X-Huiliu-Timestamp`` (Unix seconds) and
``X-Huiliu-Signature`` = hex HMAC-SHA256(secret, timestamp + "." + raw body), checked in constant time
within ±``max_skew_s`` of our clock. Validation is strict: unknown fields are rejected (a typo such as
``sentAt`` must not silently drop the send time); bridge-specific data goes in each message's free-form
``meta`` object, which is kept in ``raw`` with the rest of the message. Errors name the bad field, e.g.
``messages[0].customer.id: Field required``.

Identity: the bridge's ids are only unique per platform, so our ids carry the platform:
``external_message_id = "{platform}:{id}"`` (the dedupe key), ``conversation_key =
"{platform}:{conversation}"``, customer ``external_id = "{platform}:{customer.id}"``.

Outbound: ``send`` POSTs ``{"version": 1, "reply": {...}}`` to the callback URL, signed the same way, with
``Idempotency-Key`` = our outbound message id (stable across our retries, so the receiver can drop a
repeat). 2xx is delivered; 408/425/429/5xx and network errors are retried (``Retry-After`` honoured);
any other status, including redirects (never followed: the signature is for the configured URL), is
permanent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, ClassVar, Final, Literal

import aiohttp
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from connectors.base import PayloadError, PayloadTooLarge, WebhookRequest, WebhookResponse
from connectors.http_session import LazySession
from connectors.marketplace_sign import check_webhook, webhook_signature
from gateway.models import Attachment, Channel, CustomerRef, DeliveryResult, InboundMessage, OutboundMessage

SCHEMA_VERSION: Final = 1
TIMESTAMP_HEADER: Final = "X-Huiliu-Timestamp"
SIGNATURE_HEADER: Final = "X-Huiliu-Signature"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
MAX_MESSAGES: Final = 100
TRANSIENT_RETRY_S: Final = 5.0  # network errors and 5xx without Retry-After
RATE_LIMIT_RETRY_S: Final = 30.0  # 429 without Retry-After
MAX_RETRY_AFTER_S: Final = 24 * 3600.0
_RETRY_STATUSES: Final = frozenset({408, 425, 429})
_MAX_ERRORS_SHOWN: Final = 5

Platform = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PushCustomer(_Strict):
    id: ExternalId
    name: Annotated[str, StringConstraints(max_length=256)] | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 -]{4,31}$")] | None = None


class PushAttachment(_Strict):
    kind: Literal["image", "audio", "video", "file", "sticker", "location", "other"]
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    name: Annotated[str, StringConstraints(max_length=256)] | None = None
    mime_type: Annotated[str, StringConstraints(max_length=128)] | None = None
    size: Annotated[int, Field(ge=0)] | None = None


class PushMessage(_Strict):
    id: ExternalId
    platform: Platform
    conversation: ExternalId
    customer: PushCustomer
    text: Annotated[str, StringConstraints(max_length=20_000)] = ""
    sent_at: AwareDatetime  # RFC 3339 with an offset, or Unix seconds
    attachments: Annotated[list[PushAttachment], Field(max_length=20)] = []
    meta: dict[str, Any] = {}

    @model_validator(mode="after")
    def _has_content(self) -> PushMessage:
        if not self.text.strip() and not self.attachments:
            raise ValueError("a message needs text or at least one attachment")
        return self


class Push(_Strict):
    version: Literal[1] = 1
    messages: Annotated[list[PushMessage], Field(min_length=1, max_length=MAX_MESSAGES)]


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (``WebhookRequest.headers`` keeps the sender's spelling)."""
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _where(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def describe(exc: ValidationError) -> str:
    """``messages[0].customer.id: Field required; ...`` — the first few problems, each naming its field."""
    errors = exc.errors(include_url=False)
    parts = [f"{_where(e['loc'])}: {e['msg']}" for e in errors[:_MAX_ERRORS_SHOWN]]
    more = f" (and {len(errors) - _MAX_ERRORS_SHOWN} more)" if len(errors) > _MAX_ERRORS_SHOWN else ""
    return "; ".join(parts) + more


def retry_after_s(value: str | None, now: datetime, default: float) -> float:
    """A ``Retry-After`` header (delta seconds or HTTP date) as seconds from ``now``; ``default`` if absent
    or unreadable; capped at a day."""
    if value:
        value = value.strip()
        try:
            seconds = float(int(value)) if value.isdigit() else (parsedate_to_datetime(value) - now).total_seconds()
        except (TypeError, ValueError, OverflowError):
            return default
        return min(MAX_RETRY_AFTER_S, max(0.0, seconds))
    return default


class SignedWebhookConnector:
    """The signed webhook channel (see the module docstring)."""

    channel: ClassVar[Channel] = Channel.WEBHOOK

    def __init__(
        self,
        secret: str,
        *,
        callback_url: str | None = None,
        max_skew_s: int = 300,
        max_body_bytes: int = 1_048_576,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        http_timeout_s: float = 10.0,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the webhook secret must be at least 16 characters")
        self._secret = secret.encode()
        self._callback_url = callback_url
        self._max_skew_s = max_skew_s
        self._max_body = max_body_bytes
        self._clock = clock
        self._http_session = LazySession(http_timeout_s)

    # ---- inbound ---------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """HMAC-SHA256 over timestamp + body, constant-time, within the replay window; ``SignatureError``
        (a ``VerificationError``: 401) names the reason."""
        check_webhook(self._secret, header(request.headers, TIMESTAMP_HEADER),
                      header(request.headers, SIGNATURE_HEADER), request.body, self._clock(), self._max_skew_s)

    def parse(self, body: bytes) -> list[InboundMessage]:
        """A version-1 push -> its messages. ``PayloadError`` names the first bad fields."""
        if len(body) > self._max_body:
            raise PayloadTooLarge(f"webhook push is larger than {self._max_body} bytes")
        try:
            push = Push.model_validate_json(body)
        except ValidationError as exc:
            raise PayloadError(f"webhook push rejected: {describe(exc)}") from exc
        return [self._message(m) for m in push.messages]

    def _message(self, m: PushMessage) -> InboundMessage:
        return InboundMessage.build(
            channel=Channel.WEBHOOK,
            external_message_id=f"{m.platform}:{m.id}",
            conversation_key=f"{m.platform}:{m.conversation}",
            customer=CustomerRef(channel=Channel.WEBHOOK, external_id=f"{m.platform}:{m.customer.id}",
                                 display_name=m.customer.name or None),
            text=m.text,
            sent_at=m.sent_at.astimezone(UTC),
            attachments=tuple(Attachment(kind=a.kind, ref=a.url, name=a.name, mime_type=a.mime_type, size=a.size)
                              for a in m.attachments),
            raw={"schema_version": SCHEMA_VERSION, **m.model_dump(mode="json")},
        )

    def ack(self, messages: list[InboundMessage]) -> WebhookResponse:
        """``{"version": 1, "accepted": n}`` (the route answers ``receipt`` when it knows the duplicates)."""
        return self.receipt(messages, [False] * len(messages))

    def receipt(self, messages: Sequence[InboundMessage], duplicates: Sequence[bool]) -> WebhookResponse:
        """The answer once ``messages`` are persisted: new ones count as accepted, already known ones as
        duplicates; both mean "safely stored, do not send again"."""
        items = [{"id": m.external_message_id.partition(":")[2], "platform": m.external_message_id.partition(":")[0],
                  "message_id": m.message_id, "duplicate": dup} for m, dup in zip(messages, duplicates, strict=True)]
        body = {"version": SCHEMA_VERSION, "accepted": sum(not d for d in duplicates),
                "duplicates": sum(duplicates), "messages": items}
        return WebhookResponse(200, json.dumps(body, ensure_ascii=False).encode(), "application/json")

    # ---- outbound --------------------------------------------------------------------------------

    def reply_body(self, message: OutboundMessage) -> bytes:
        """The callback body for one reply (exactly the bytes that are signed and sent)."""
        platform, _, conversation = message.conversation_key.partition(":")
        customer = message.recipient.external_id.partition(":")[2] or message.recipient.external_id
        reply = {
            "id": message.message_id, "platform": platform, "conversation": conversation,
            "customer": {"id": customer}, "text": message.text, "author": message.author,
            "quick_replies": [{"title": q.title, "payload": q.payload} for q in message.quick_replies],
            "created_at": message.created_at.isoformat(),
        }
        return json.dumps({"version": SCHEMA_VERSION, "reply": reply}, ensure_ascii=False).encode()

    def signed_headers(self, body: bytes, idempotency_key: str) -> dict[str, str]:
        timestamp = str(int(self._clock().timestamp()))
        return {"Content-Type": "application/json; charset=utf-8", TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: webhook_signature(self._secret, timestamp, body), IDEMPOTENCY_HEADER: idempotency_key}

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """POST the signed reply to the callback URL; never raises for receiver-side failures."""
        if not self._callback_url:
            return DeliveryResult(ok=False, permanent=True, error="no webhook callback URL configured")
        if ":" not in message.conversation_key:
            return DeliveryResult(ok=False, permanent=True,
                                  error=f"not a webhook conversation key: {message.conversation_key[:60]!r}")
        body = self.reply_body(message)
        try:
            async with self._http().post(self._callback_url, data=body, allow_redirects=False,
                                         headers=self.signed_headers(body, message.message_id)) as resp:
                status, retry_header, text = resp.status, resp.headers.get("Retry-After"), await resp.text()
        except (TimeoutError, aiohttp.ClientError) as exc:
            return DeliveryResult(ok=False, retry_after=TRANSIENT_RETRY_S,
                                  error=f"callback unreachable: {type(exc).__name__}: {exc}")
        if 200 <= status < 300:
            return DeliveryResult(ok=True, external_ids=(message.message_id,))
        error = f"callback answered HTTP {status}: {text[:200]}"
        if status in _RETRY_STATUSES or status >= 500:
            default = RATE_LIMIT_RETRY_S if status == 429 else TRANSIENT_RETRY_S
            return DeliveryResult(ok=False, retry_after=retry_after_s(retry_header, self._clock(), default),
                                  error=error)
        return DeliveryResult(ok=False, permanent=True, error=error)

    def _http(self) -> aiohttp.ClientSession:
        return self._http_session.get()

    async def aclose(self) -> None:
        await self._http_session.aclose()


__all__ = [
    "IDEMPOTENCY_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "Push", "PushMessage", "SignedWebhookConnector",
    "describe", "header", "retry_after_s",
]
