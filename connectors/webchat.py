"""Website chat widget channel: HTTP in, Server-Sent Events out.

A visitor gets an id and an HMAC token bound to it (``session``); every message and the event stream
must present both, so nobody can read or write another visitor's conversation by guessing its id.
Replies are appended to a per-visitor Redis stream that the SSE endpoint reads with Last-Event-ID,
so a browser that reconnects receives what it missed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any, ClassVar

import redis.asyncio as aioredis

from connectors.base import PayloadError, VerificationError, WebhookRequest, WebhookResponse
from gateway.keys import Keys
from gateway.models import Channel, CustomerRef, DeliveryResult, InboundMessage, OutboundMessage

MAX_TEXT = 2000
_VISITOR_RE = re.compile(r"^v_[A-Za-z0-9_-]{16,64}$")
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object")
    return data


def _str_field(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise PayloadError(f"field {name!r} must be a string")
    return value


class WebchatConnector:
    """The web chat channel. ``redis`` is needed only by ``send``."""

    channel: ClassVar[Channel] = Channel.WEBCHAT

    def __init__(
        self,
        secret: str,
        *,
        redis: aioredis.Redis | None = None,
        keys: Keys | None = None,
        outbox_maxlen: int = 500,
        outbox_ttl_s: int = 7 * 24 * 3600,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("webchat secret must be at least 16 characters")
        self._secret = secret.encode()
        self._redis = redis
        self._keys = keys or Keys()
        self._maxlen = outbox_maxlen
        self._ttl = outbox_ttl_s

    # --- sessions -------------------------------------------------------------------------------
    def token_for(self, visitor_id: str) -> str:
        mac = hmac.new(self._secret, visitor_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def new_session(self) -> tuple[str, str]:
        visitor_id = "v_" + secrets.token_urlsafe(18)
        return visitor_id, self.token_for(visitor_id)

    def check(self, visitor_id: str, token: str) -> None:
        """Raise ``VerificationError`` unless ``token`` was issued for ``visitor_id`` (constant time)."""
        if not _VISITOR_RE.match(visitor_id):
            raise VerificationError("invalid visitor id")
        if not hmac.compare_digest(self.token_for(visitor_id).encode(), token.encode()):
            raise VerificationError("invalid visitor token")

    # --- connector contract -----------------------------------------------------------------------
    def verify(self, request: WebhookRequest) -> None:
        data = _json_object(request.body)
        visitor_id, token = data.get("visitor_id"), data.get("token")
        if not isinstance(visitor_id, str) or not isinstance(token, str):
            raise VerificationError("visitor_id and token are required")
        self.check(visitor_id, token)

    def parse(self, body: bytes) -> list[InboundMessage]:
        data = _json_object(body)
        visitor_id = _str_field(data, "visitor_id")
        client_id = _str_field(data, "client_message_id")
        if not _CLIENT_ID_RE.match(client_id):
            raise PayloadError("client_message_id must be 8-64 characters of A-Z a-z 0-9 _ -")
        text = _str_field(data, "text").strip()
        if not text:
            raise PayloadError("text must not be empty")
        if len(text) > MAX_TEXT:
            raise PayloadError(f"text is longer than {MAX_TEXT} characters")
        name = data.get("name")
        customer = CustomerRef(
            channel=Channel.WEBCHAT,
            external_id=visitor_id,
            display_name=name[:64] if isinstance(name, str) and name.strip() else None,
        )
        return [
            InboundMessage.build(
                channel=Channel.WEBCHAT,
                external_message_id=f"{visitor_id}:{client_id}",
                conversation_key=visitor_id,
                customer=customer,
                text=text,
                sent_at=datetime.now(UTC),
                # The token is a credential: never persist it with the message.
                raw={k: v for k, v in data.items() if k != "token"},
            )
        ]

    def ack(self, messages: list[InboundMessage]) -> WebhookResponse:
        body = json.dumps({"message_id": messages[0].message_id if messages else None}).encode()
        return WebhookResponse(202, body, "application/json")

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        if self._redis is None:
            raise RuntimeError("WebchatConnector.send needs a redis client")
        key = self._keys.webchat_outbox(message.conversation_key)
        event = {
            "message_id": message.message_id,
            "text": message.text,
            "author": message.author,
            "quick_replies": [q.model_dump() for q in message.quick_replies],
            "created_at": message.created_at.isoformat(),
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key, {"e": json.dumps(event, ensure_ascii=False)}, maxlen=self._maxlen, approximate=True)
            pipe.expire(key, self._ttl)
            sid, _ = await pipe.execute()
        return DeliveryResult(ok=True, external_ids=(sid.decode() if isinstance(sid, bytes) else str(sid),))

    async def aclose(self) -> None:
        return None
