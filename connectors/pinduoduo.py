"""Pinduoduo (拼多多 POP) adapter: message-service WebSocket in, ``/api/router`` out.

Message service (channels spec §5.3 — community-derived from the official Java SDK's ``WsClient``):

* connect to ``wss://message-api.pinduoduo.com/message/{client_id}/{timestamp_ms}/{sign}`` with
  ``sign = base64(md5(client_id + timestamp_ms + client_secret))`` (URL-quoted in the path);
* send ``{"commandType":"HeartBeat","time":<ms>}`` every few seconds (5 by default);
* messages arrive as ``{"id", "commandType":"Common", "time", "sendTime", "message": {"type",
  "mallID", "content" (JSON string)}}``; acknowledge each with ``{"id", "commandType":"Ack", "time",
  "sendTime", "type", "mallID"}`` — only after it is stored (the gateway loop calls ``confirm`` then);
  unacknowledged messages are sent again on the next connection, and the intake dedupe on the message
  ``id`` absorbs that. One connection per app and deployment (``exclusive``).

**Digest encoding.** The spec note reads ``md5_raw``, but the two independent ports we checked (a Rust
and a PHP client) base64-encode the *lowercase hex* digest; ``ws_sign_digest`` selects ``hex``
(default, what the ports do) or ``raw``.

API calls (official): ``POST https://gw-api.pinduoduo.com/api/router`` with a JSON object of strings:
``type``, ``client_id``, ``access_token``, ``timestamp`` (Unix **seconds**, ±10 min), ``data_type=JSON``,
``version=V1``, the business params and ``sign`` (``pdd_sign``). Errors are ``{"error_response":
{"error_code", "error_msg", "sub_code", "sub_msg", "request_id"}}``.

**Not public — assumptions:** Pinduoduo has no public customer-chat API. The chat message ``type``s
are configured (``PDD_CHAT_TYPES``); their ``content`` is read as a JSON object with buyer id
``buyer_id``/``open_uid``/``uid``/``from_uid``/``buyer_uid``, text ``content``/``text``/``msg_content``,
time ``send_time``/``ts``/``time`` (else the frame's ``sendTime``), and the shop side's own lines
recognised by ``marketplace_common.sent_by_shop``. Replies go through a configured API ``type``
(``PDD_SEND_TYPE``) with business params ``mall_id``, ``buyer_id``, ``content``, ``msg_type=text`` and
``request_id`` (our outbound id); unset, a reply fails permanently and a human answers in the
merchant backend. Everything the platform sent stays in ``raw``.

Conversation key: ``"<mallID>:<buyer id>"``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Final, Literal
from urllib.parse import quote

import aiohttp
from pydantic import ValidationError

from connectors.base import PayloadError
from connectors.feed import FeedBatch, FeedError, FeedFailure
from connectors.http_session import LazySession
from connectors.marketplace_common import (
    RATE_LIMIT_RETRY_S,
    TRANSIENT_RETRY_S,
    PlatformCallError,
    PlatformError,
    decode_answer,
    first_value,
    json_object,
    network_failure,
    parse_time,
    render_text,
    sent_by_shop,
)
from connectors.marketplace_sign import pdd_sign
from gateway.models import Channel, CustomerRef, DeliveryResult, InboundMessage, OutboundMessage, utcnow

log = logging.getLogger(__name__)

DEFAULT_API_BASE: Final = "https://gw-api.pinduoduo.com"
DEFAULT_WS_BASE: Final = "wss://message-api.pinduoduo.com"
BUYER_KEYS: Final = ("buyer_id", "open_uid", "uid", "from_uid", "buyer_uid")
TEXT_KEYS: Final = ("content", "text", "msg_content")
TIME_KEYS: Final = ("send_time", "ts", "time")
_RATE_WORDS: Final = ("频率", "频繁", "限流", "limit")
_BUSY_WORDS: Final = ("繁忙", "busy", "超时", "timeout", "稍后", "unavailable", "不可用")
_ID_RE: Final = re.compile(r"-?[0-9]{1,20}")

Digest = Literal["hex", "raw"]


def ws_sign(client_id: str, timestamp_ms: int, client_secret: str, digest: Digest = "hex") -> str:
    """The path ``sign`` of the message service: base64 of MD5(client_id + timestamp_ms + secret)."""
    md5 = hashlib.md5(f"{client_id}{timestamp_ms}{client_secret}".encode())
    return base64.b64encode(md5.hexdigest().encode("ascii") if digest == "hex" else md5.digest()).decode("ascii")


def ws_url(ws_base: str, client_id: str, timestamp_ms: int, sign: str) -> str:
    return f"{ws_base.rstrip('/')}/message/{quote(client_id, safe='')}/{timestamp_ms}/{quote(sign, safe='')}"


def sign_body(params: Mapping[str, str], client_secret: str) -> dict[str, str]:
    """``params`` plus their POP ``sign`` (over every param, common and business)."""
    body = {k: v for k, v in params.items() if k != "sign"}
    body["sign"] = pdd_sign(body, client_secret)
    return body


def heartbeat_frame(now_ms: int) -> str:
    return json.dumps({"commandType": "HeartBeat", "time": now_ms})


@dataclass(frozen=True, slots=True)
class AckReceipt:
    """What an ``Ack`` must echo for one delivered message."""

    id: int
    send_time: Any
    type: str
    mall_id: Any

    def frame(self, now_ms: int) -> str:
        return json.dumps({"id": self.id, "commandType": "Ack", "time": now_ms, "sendTime": self.send_time,
                           "type": self.type, "mallID": self.mall_id}, ensure_ascii=False)


def classify_pdd_error(api_type: str, err: Mapping[str, Any]) -> PlatformError:
    """Permanent vs retry for a POP ``error_response``: frequency limits and "busy/timeout" texts
    retry, everything else (expired token, bad sign, bad parameters, no permission) is permanent."""
    code = str(err.get("error_code", "")).strip()
    sub_code = str(err.get("sub_code") or "").strip()
    text = " ".join(str(err.get(k) or "") for k in ("error_msg", "sub_msg")).strip()
    lowered = f"{text} {sub_code}".lower()

    def error(retry_after: float | None) -> PlatformError:
        return PlatformError("pinduoduo", api_type, code or "?", text or "unknown error", sub_code, retry_after)

    if any(word in lowered for word in _RATE_WORDS):
        return error(RATE_LIMIT_RETRY_S)
    if any(word in lowered for word in _BUSY_WORDS):
        return error(TRANSIENT_RETRY_S)
    return error(None)


class PinduoduoAdapter:
    """Pinduoduo POP adapter (WebSocket feed + sender); see the module docstring."""

    channel: ClassVar[Channel] = Channel.PINDUODUO

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        access_token: str,
        chat_types: Sequence[str],
        api_base: str = DEFAULT_API_BASE,
        ws_base: str = DEFAULT_WS_BASE,
        send_type: str | None = None,
        ws_sign_digest: Digest = "hex",
        heartbeat_s: float = 5.0,
        idle_timeout_s: float = 90.0,
        receive_wait_s: float = 1.0,
        max_batch: int = 100,
        timeout_s: float = 15.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if not (client_id and client_secret and access_token):
            raise ValueError("Pinduoduo needs client_id, client_secret and access_token")
        self.client_id = client_id
        self._secret = client_secret
        self._token = access_token
        self.chat_types = frozenset(chat_types)
        self.api_base = api_base.rstrip("/")
        self.ws_base = ws_base
        self.send_type = send_type or None
        self.ws_sign_digest: Digest = ws_sign_digest
        self.heartbeat_s = heartbeat_s
        self.idle_timeout_s = idle_timeout_s
        self.receive_wait_s = receive_wait_s
        self.max_batch = max_batch
        self._clock = clock
        self._http = LazySession(timeout_s)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._send_lock: asyncio.Lock | None = None
        self._last_frame = 0.0

    @property
    def feed_name(self) -> str:
        return f"pinduoduo:{self.client_id}"

    @property
    def exclusive(self) -> bool:
        return True  # one message connection per app

    def _now_ms(self) -> int:
        return int(self._clock().timestamp() * 1000)

    # ---- connection ------------------------------------------------------------------------------

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        ts = self._now_ms()
        url = ws_url(self.ws_base, self.client_id, ts, ws_sign(self.client_id, ts, self._secret, self.ws_sign_digest))
        try:
            ws = await self._http.get().ws_connect(url, autoping=True, heartbeat=None)
        except aiohttp.WSServerHandshakeError as exc:
            what = f"pinduoduo message service refused the connection (HTTP {exc.status} {exc.message})"
            if exc.status in (401, 403):
                raise FeedError(f"{what}: check PDD_CLIENT_ID / PDD_CLIENT_SECRET / PDD_WS_SIGN_DIGEST",
                                permanent=True) from exc
            raise FeedError(what, retry_after=TRANSIENT_RETRY_S) from exc
        self._ws = ws
        self._send_lock = asyncio.Lock()
        self._last_frame = asyncio.get_running_loop().time()
        self._heartbeat = asyncio.create_task(self._beat(ws), name="pinduoduo-heartbeat")
        log.info("pinduoduo: message connection open")
        return ws

    async def _send_frame(self, ws: aiohttp.ClientWebSocketResponse, frame: str) -> None:
        assert self._send_lock is not None
        async with self._send_lock:  # heartbeats and acks come from two tasks
            await ws.send_str(frame)

    async def _beat(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        with contextlib.suppress(ConnectionError, aiohttp.ClientError, RuntimeError):
            while not ws.closed:
                await self._send_frame(ws, heartbeat_frame(self._now_ms()))
                await asyncio.sleep(self.heartbeat_s)

    async def suspend(self) -> None:
        ws, task = self._ws, self._heartbeat
        self._ws = self._heartbeat = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()

    # ---- feed --------------------------------------------------------------------------------------

    async def pull(self, cursor: str | None) -> FeedBatch:
        """Frames that arrive within ``receive_wait_s`` (and whatever follows right behind them)."""
        ws = self._ws if self._ws is not None and not self._ws.closed else await self._connect()
        loop = asyncio.get_running_loop()
        frames: list[str] = []
        wait = self.receive_wait_s
        while len(frames) < self.max_batch:
            try:
                msg = await ws.receive(timeout=wait)
            except TimeoutError:
                break
            if msg.type == aiohttp.WSMsgType.TEXT:
                self._last_frame = loop.time()
                frames.append(msg.data)
                wait = 0.05  # drain what is already queued, then hand the batch over
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED,
                              aiohttp.WSMsgType.ERROR):
                await self.suspend()
                if frames:
                    break  # hand over what we got; the next pull reconnects
                raise ConnectionError(f"pinduoduo message connection closed ({msg.type.name} {msg.data!r})")
        if not frames and loop.time() - self._last_frame > self.idle_timeout_s:
            log.warning("pinduoduo: no frame for %.0f s; reconnecting", self.idle_timeout_s)
            await self.suspend()
        return self._batch(frames)

    def _batch(self, frames: list[str]) -> FeedBatch:
        messages: list[InboundMessage] = []
        receipts: list[AckReceipt] = []
        failures: list[FeedFailure] = []
        ignored = 0
        for text in frames:
            try:
                frame = json.loads(text)
            except (ValueError, RecursionError) as exc:
                failures.append(FeedFailure("?", text, f"frame is not JSON: {exc}"))
                continue
            if not isinstance(frame, dict) or frame.get("commandType") != "Common":
                if isinstance(frame, dict) and frame.get("commandType") == "Fail":
                    log.warning("pinduoduo: server reported Fail: %s", text[:500])
                continue  # HeartBeat / Ack echoes
            receipt = _receipt(frame)
            if receipt is not None:
                receipts.append(receipt)
            try:
                parsed = self.parse_feed(frame)
            except PayloadError as exc:
                failures.append(FeedFailure(str(frame.get("id")), text, str(exc)))
                continue
            messages.extend(parsed)
            ignored += not parsed
        return FeedBatch(tuple(messages), tuple(receipts), tuple(failures), ignored=ignored)

    async def confirm(self, batch: FeedBatch) -> None:
        """Ack every stored message on the open connection. If it dropped meanwhile, the server sends
        the messages again on the next one and dedupe absorbs them."""
        ws = self._ws
        if ws is None or ws.closed:
            return
        for receipt in batch.receipts:
            await self._send_frame(ws, receipt.frame(self._now_ms()))

    def parse_feed(self, item: Any) -> list[InboundMessage]:
        """One ``Common`` frame -> zero or one chat message (see the module docstring)."""
        if not isinstance(item, dict):
            raise PayloadError("pinduoduo frame must be a JSON object")
        if item.get("commandType") != "Common":
            return []
        receipt = _receipt(item)
        if receipt is None:
            raise PayloadError("pinduoduo message has no integer id")
        frame_id = receipt.id
        message = item.get("message")
        if not isinstance(message, dict):
            raise PayloadError(f"pinduoduo message {frame_id} has no message object")
        if message.get("type") not in self.chat_types:
            return []
        try:
            return self._chat_message(frame_id, item, message)
        except PayloadError:
            raise
        except (ValidationError, ValueError, TypeError, KeyError) as exc:
            raise PayloadError(f"pinduoduo message {frame_id}: {exc}") from exc

    def _chat_message(self, frame_id: int, frame: dict[str, Any], message: dict[str, Any]) -> list[InboundMessage]:
        content = json_object(message.get("content"), f"pinduoduo message {frame_id} content")
        if sent_by_shop(content):
            return []
        buyer = first_value(content, BUYER_KEYS)
        if buyer is None:
            raise PayloadError(f"pinduoduo message {frame_id}: no buyer id in content")
        mall = first_value(message, ("mallID",)) or first_value(content, ("mall_id",))
        if mall is None:
            raise PayloadError(f"pinduoduo message {frame_id}: no mallID")
        text = next((v for k in TEXT_KEYS if isinstance(v := content.get(k), str) and v.strip()), "")
        if not text:
            return []
        when = next((content[k] for k in TIME_KEYS if content.get(k) not in (None, "")),
                    frame.get("sendTime") or frame.get("time"))
        return [InboundMessage.build(
            channel=Channel.PINDUODUO, external_message_id=str(frame_id), conversation_key=f"{mall}:{buyer}",
            customer=CustomerRef(channel=Channel.PINDUODUO, external_id=buyer), text=text,
            sent_at=parse_time(when, f"pinduoduo message {frame_id} time"), raw=frame,
        )]

    # ---- replies -----------------------------------------------------------------------------------

    def request_body(self, api_type: str, business: Mapping[str, str], now: datetime) -> dict[str, str]:
        """The JSON body of one ``/api/router`` call, signed. Pure."""
        body = {"type": api_type, "client_id": self.client_id, "access_token": self._token,
                "timestamp": str(int(now.timestamp())), "data_type": "JSON", "version": "V1", **business}
        return sign_body(body, self._secret)

    def send_params(self, message: OutboundMessage) -> dict[str, str]:
        """Business params of the (configured, non-public) send type. Pure."""
        mall, _, _buyer = message.conversation_key.partition(":")
        return {"mall_id": mall, "buyer_id": message.recipient.external_id, "content": render_text(message),
                "msg_type": "text", "request_id": message.message_id}

    async def call(self, api_type: str, business: Mapping[str, str]) -> dict[str, Any]:
        body = self.request_body(api_type, business, self._clock())
        async with self._http.get().post(f"{self.api_base}/api/router", json=body) as resp:
            raw = await resp.read()
            status = resp.status
        return decode_answer("pinduoduo", api_type, status, raw, classify_pdd_error)

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        if self.send_type is None:
            return DeliveryResult(ok=False, permanent=True, error=(
                "pinduoduo: no send type configured (PDD_SEND_TYPE); Pinduoduo has no public customer-chat "
                "API — answer in the merchant backend"))
        try:
            await self.call(self.send_type, self.send_params(message))
        except PlatformCallError as exc:
            return exc.error.delivery()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return network_failure("pinduoduo", self.send_type, exc)
        return DeliveryResult(ok=True, external_ids=(message.message_id,))

    async def aclose(self) -> None:
        await self.suspend()
        await self._http.aclose()


def _receipt(frame: Mapping[str, Any]) -> AckReceipt | None:
    frame_id = frame.get("id")
    if isinstance(frame_id, str) and _ID_RE.fullmatch(frame_id):
        frame_id = int(frame_id)
    if not isinstance(frame_id, int) or isinstance(frame_id, bool):
        return None
    message = frame.get("message")
    message = message if isinstance(message, dict) else {}
    return AckReceipt(frame_id, frame.get("sendTime"), str(message.get("type", "")), message.get("mallID"))
