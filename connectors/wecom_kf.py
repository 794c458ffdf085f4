"""WeCom 微信客服 (kf) connector: callbacks verified and decrypted, messages pulled, replies sent.

WeCom's kf API is a *pull* model (channels spec §2.2). The callback ``kf_msg_or_event`` carries no message,
only a short-lived ``Token`` and the ``OpenKfId`` that has news; the gateway then pulls pages with
``kf/sync_msg`` (cursor + token) until ``has_more`` is 0 — which may come after pages with an *empty*
``msg_list`` — and persists each ``next_cursor``. So ``parse(body)`` always returns ``[]`` and the work is
split into pure pieces the gateway composes (``gateway/wecom_puller.py``):

* ``verify`` / ``verify_url``: the four-value ``msg_signature`` (for GET over ``echostr``, whose decrypted
  plaintext is the answer), with the CorpID as receive id;
* ``parse_callback(body) -> KfCallback | None``;
* ``sync_msg(...)`` (I/O) and ``parse_sync_page(page) -> SyncPage`` (pure, ``connectors/wecom_kf_messages.py``):
  customer messages (origin 3) become ``InboundMessage`` (dedupe id ``msgid``, conversation key
  ``"{open_kfid}:{external_userid}"``); events and what a human servicer typed in the WeCom client
  (origin 5) become ``KfEvent``; unreadable items become ``BadItem`` for the dead-letter stream;
* ``send``: ``kf/send_msg`` text, split into chunks of at most 2048 bytes.

Access tokens are not cached here: the gateway passes ``tokens`` (``get()`` / ``invalidate(token)``, the
shared Redis cache of ``gateway/access_tokens.py``), because WeCom rate-limits ``gettoken`` and every
process must use the same token. Without ``tokens`` the connector keeps a per-process token (tests, tools).

Session states and how they map to ours are in ``connectors/wecom_kf_states.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal, Protocol
from xml.etree.ElementTree import Element, ParseError

import aiohttp
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring

from connectors import text_parts
from connectors.base import PayloadError, VerificationError, WebhookRequest, WebhookResponse
from connectors.http_session import LazySession
from connectors.wechat_crypto import WeChatCrypto, WeChatCryptoError, WeChatSignatureError
from connectors.wecom_kf_messages import (
    BadItem,
    KfEvent,
    SyncPage,
    conversation_key,
    parse_sync_page,
    split_conversation_key,
)
from gateway.models import Channel, DeliveryResult, InboundMessage, OutboundMessage

__all__ = [
    "AccessTokens", "BadItem", "KfApiError", "KfCallback", "KfEvent", "SyncPage", "WeComKfConnector",
    "classify_errcode", "conversation_key", "parse_sync_page", "split_conversation_key", "split_text",
]

log = logging.getLogger(__name__)

MAX_TEXT_BYTES: Final = 2048  # kf/send_msg text.content limit
MAX_SYNC_LIMIT: Final = 1000
TOKEN_ERRORS: Final = frozenset({40001, 40014, 42001})  # invalid credential / invalid token / token expired
BUSY_ERRORS: Final = frozenset({-1, 45009, 45033})  # system busy, API frequency limit, concurrency limit
_TRANSIENT_RETRY: Final = 5.0
_CONFIG_RETRY: Final = 60.0  # credentials rejected twice: an operator must fix them; not the message's fault


class KfApiError(RuntimeError):
    """A kf API call failed: ``errcode`` from WeCom (``None`` for network/HTTP/decoding failures)."""

    def __init__(self, op: str, errcode: int | None, errmsg: str) -> None:
        super().__init__(f"wecom kf {op}: errcode={errcode} {errmsg}")
        self.op = op
        self.errcode = errcode
        self.errmsg = errmsg

    @property
    def transient(self) -> bool:
        """Worth retrying as is: network trouble, 5xx, "system busy" or a frequency limit."""
        return self.errcode is None or self.errcode in BUSY_ERRORS


class AccessTokens(Protocol):
    """What the connector needs from a token cache (``gateway.access_tokens.SharedAccessToken``)."""

    async def get(self) -> str: ...

    async def invalidate(self, token: str) -> None: ...


@dataclass(frozen=True, slots=True)
class KfCallback:
    """A ``kf_msg_or_event`` callback: "pull ``open_kfid`` now, with this ``token`` (valid 10 min)"."""

    token: str
    open_kfid: str


# ---- pure helpers ---------------------------------------------------------------------------------


def _xml(body: bytes | str, what: str) -> Element:
    try:
        root = safe_fromstring(body)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        # DefusedXmlException covers entities/DTDs (XXE): rejected without resolving anything.
        raise PayloadError(f"WeCom {what} is not acceptable XML: {exc}") from exc
    if root.tag != "xml":
        raise PayloadError(f"WeCom {what}: root element must be <xml>, got <{root.tag}>")
    return root


def _text(root: Element, tag: str) -> str | None:
    node = root.find(tag)
    return node.text if node is not None and node.text is not None else None


def split_text(text: str, limit: int = MAX_TEXT_BYTES) -> list[str]:
    """Chunks of at most ``limit`` UTF-8 bytes, never inside a character; ``"".join(chunks) == text``."""
    return text_parts.split_text(text, limit, text_parts.utf8_bytes)


# kf text has no buttons (a ``msgmenu`` would be nicer and is noted as a follow-up)
render = text_parts.with_numbered_options


SendVerdict = Literal["ok", "token", "retry", "permanent"]


def classify_errcode(errcode: int) -> SendVerdict:
    """What a ``kf/send_msg`` errcode means for delivery (pure; see the constants above).

    ``token``: refresh the access token and retry once. ``retry``: transient, try later. ``permanent``:
    everything else — the same request cannot succeed, so the delivery worker hands the conversation to an
    agent. That covers 95018 (the session is not in state 0/1: a WeCom servicer holds it, or it ended),
    the 48-hour window and the 5-message quota (spec §2.2), the customer refusing messages, and bad ids;
    the exact 95xxx codes for the window/quota cases are not in our spec, hence "permanent by default".
    """
    if errcode == 0:
        return "ok"
    if errcode in TOKEN_ERRORS:
        return "token"
    if errcode in BUSY_ERRORS:
        return "retry"
    return "permanent"


# ---- the connector ------------------------------------------------------------------------------


class _LocalTokens:
    """Per-process token cache for use without the shared cache (tests, one-off tools)."""

    def __init__(self, fetch: Any) -> None:
        self._fetch = fetch
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        async with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                token, expires_in = await self._fetch()
                self._token, self._expires = token, time.monotonic() + max(0.0, expires_in - 300)
            return self._token

    async def invalidate(self, token: str) -> None:
        if token == self._token:
            self._token = None


class WeComKfConnector:
    """微信客服 connector (see the module docstring)."""

    channel: ClassVar[Channel] = Channel.WECOM

    def __init__(
        self,
        corp_id: str,
        kf_secret: str,
        token: str,
        encoding_aes_key: str,
        *,
        api_base: str = "https://qyapi.weixin.qq.com",
        tokens: AccessTokens | None = None,
        timeout_s: float = 15.0,
    ) -> None:
        if not corp_id or not kf_secret or not token:
            raise ValueError("WeCom kf needs the CorpID, the 微信客服 secret and the callback token")
        self.corp_id = corp_id
        self._secret = kf_secret
        self.crypto = WeChatCrypto(token, encoding_aes_key, corp_id)  # validates the AES key, no I/O
        self.api_base = api_base.rstrip("/")
        # Set by the gateway after construction when the shared cache fetches through this connector.
        self.tokens: AccessTokens = tokens if tokens is not None else _LocalTokens(self.fetch_access_token)
        self._http_session = LazySession(timeout_s)

    def _http(self) -> aiohttp.ClientSession:
        return self._http_session.get()

    # ---- inbound ---------------------------------------------------------------------------------

    @staticmethod
    def _signed(request: WebhookRequest) -> tuple[str, str, str]:
        q = request.query
        sig, ts, nonce = q.get("msg_signature"), q.get("timestamp"), q.get("nonce")
        if not sig or not ts or not nonce:
            raise VerificationError("missing msg_signature, timestamp or nonce")
        return sig, ts, nonce

    def verify(self, request: WebhookRequest) -> None:
        """POST: ``msg_signature`` over token, timestamp, nonce and the body's ``<Encrypt>`` (constant time)."""
        sig, ts, nonce = self._signed(request)
        encrypt = _text(_xml(request.body, "callback"), "Encrypt")
        if not encrypt:
            raise PayloadError("WeCom callback has no <Encrypt>")
        try:
            self.crypto.verify_msg(sig, ts, nonce, encrypt)
        except WeChatSignatureError as exc:
            raise VerificationError(f"bad msg_signature: {exc}") from exc

    def verify_url(self, request: WebhookRequest) -> str:
        """GET URL verification: check ``msg_signature`` over ``echostr`` and return its plaintext.

        ``request.query`` must be percent-decoded *without* form rules (``+`` stays ``+``); a space left by
        a form decoder is turned back into ``+`` by the crypto layer too, since base64 has no spaces.
        """
        sig, ts, nonce = self._signed(request)
        echostr = request.query.get("echostr")
        if not echostr:
            raise PayloadError("URL verification without echostr")
        try:
            return self.crypto.verify_url(sig, ts, nonce, echostr)
        except WeChatSignatureError as exc:
            raise VerificationError(f"bad msg_signature: {exc}") from exc
        except WeChatCryptoError as exc:
            raise PayloadError(f"echostr does not decrypt: {exc}") from exc

    def parse(self, body: bytes) -> list[InboundMessage]:
        """kf callbacks carry no message (they say "pull"): see ``parse_callback``. Junk still raises."""
        self.parse_callback(body)
        return []

    def parse_callback(self, body: bytes) -> KfCallback | None:
        """Decrypt a verified callback; ``KfCallback`` for ``kf_msg_or_event``, None for other events
        sent to the same URL. Pure; ``PayloadError`` on anything unreadable."""
        encrypt = _text(_xml(body, "callback"), "Encrypt")
        if not encrypt:
            raise PayloadError("WeCom callback has no <Encrypt>")
        try:
            plain = self.crypto.decrypt(encrypt)
        except WeChatCryptoError as exc:
            raise PayloadError(f"WeCom callback does not decrypt: {exc}") from exc
        inner = _xml(plain, "callback event")
        if _text(inner, "MsgType") != "event" or _text(inner, "Event") != "kf_msg_or_event":
            return None
        token, open_kfid = _text(inner, "Token"), _text(inner, "OpenKfId")
        if not token or not open_kfid:
            raise PayloadError("kf_msg_or_event without Token or OpenKfId")
        if len(token) > 128 or ":" in open_kfid or len(open_kfid) > 64:
            raise PayloadError("kf_msg_or_event Token/OpenKfId out of bounds")
        return KfCallback(token=token, open_kfid=open_kfid)

    def ack(self, messages: list[InboundMessage]) -> WebhookResponse:
        """WeCom stops retrying on a plain ``success`` (spec §1.3, assumed to hold for WeCom, §2.1)."""
        return WebhookResponse(200, b"success", "text/plain")

    # ---- API calls -------------------------------------------------------------------------------

    async def fetch_access_token(self) -> tuple[str, float]:
        """``GET /cgi-bin/gettoken`` with the 微信客服 secret -> ``(access_token, expires_in_s)``."""
        url = f"{self.api_base}/cgi-bin/gettoken"
        data = await self._call("gettoken", "GET", url, params={"corpid": self.corp_id, "corpsecret": self._secret})
        token, expires_in = data.get("access_token"), data.get("expires_in")
        if data.get("errcode", 0) != 0 or not isinstance(token, str) or not token:
            raise KfApiError("gettoken", _errcode(data), str(data.get("errmsg", "no access_token")))
        return token, float(expires_in) if isinstance(expires_in, int | float) else 7200.0

    async def _post(self, op: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST with the access token; a token error invalidates it and retries once."""
        for attempt in (0, 1):
            token = await self.tokens.get()
            data = await self._call(op, "POST", f"{self.api_base}{path}", params={"access_token": token},
                                    json_body=body)
            code = _errcode(data)
            if code in TOKEN_ERRORS and attempt == 0:
                log.warning("wecom kf %s: access token rejected (%s); refreshing", op, code)
                await self.tokens.invalidate(token)
                continue
            return data
        raise AssertionError("unreachable")

    async def _call(self, op: str, method: str, url: str, *, params: dict[str, str],
                    json_body: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            async with self._http().request(method, url, params=params, json=json_body) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise KfApiError(op, None, f"{type(exc).__name__}: {exc}") from exc
        if status >= 300:
            raise KfApiError(op, None, f"HTTP {status}")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise KfApiError(op, None, f"answer is not JSON (HTTP {status})") from exc
        if not isinstance(data, dict):
            raise KfApiError(op, None, "answer is not a JSON object")
        return data

    async def sync_msg(self, cursor: str, token: str | None, open_kfid: str,
                       limit: int = MAX_SYNC_LIMIT) -> dict[str, Any]:
        """One ``kf/sync_msg`` page for ``open_kfid`` (the raw answer, for ``parse_sync_page``).

        ``token`` is the callback's (valid 10 min); None pulls without it (WeCom rate-limits that
        strictly, so it is for the slow periodic catch-up). Raises ``KfApiError`` on any failure.
        """
        body: dict[str, Any] = {"limit": max(1, min(limit, MAX_SYNC_LIMIT)), "open_kfid": open_kfid, "voice_format": 0}
        if cursor:
            body["cursor"] = cursor
        if token:
            body["token"] = token
        data = await self._post("sync_msg", "/cgi-bin/kf/sync_msg", body)
        if _errcode(data) != 0:
            raise KfApiError("sync_msg", _errcode(data), str(data.get("errmsg", "")))
        return data

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """``kf/send_msg`` text in chunks of ≤ 2048 bytes; never raises for WeCom-side failures."""
        ids = split_conversation_key(message.conversation_key)
        if ids is None:
            return DeliveryResult(ok=False, permanent=True,
                                  error=f"not a WeCom kf conversation key: {message.conversation_key!r}")
        open_kfid, external_userid = ids
        chunks = [c for c in split_text(render(message)) if c.strip()]
        if not chunks:
            return DeliveryResult(ok=False, permanent=True, error="message text is blank")
        sent: list[str] = []
        for index, chunk in enumerate(chunks):
            body = {"touser": external_userid, "open_kfid": open_kfid, "msgtype": "text", "text": {"content": chunk}}
            where = f"chunk {index + 1}/{len(chunks)}"
            try:
                data = await self._post("send_msg", "/cgi-bin/kf/send_msg", body)
            except KfApiError as exc:
                return DeliveryResult(ok=False, external_ids=tuple(sent), retry_after=_TRANSIENT_RETRY,
                                      error=f"{where}: {exc}")
            except Exception as exc:  # the token cache failing (Redis, gettoken refused): retry later
                return DeliveryResult(ok=False, external_ids=tuple(sent), retry_after=_CONFIG_RETRY,
                                      error=f"{where}: no access token: {exc}")
            code = _errcode(data)
            verdict = classify_errcode(code)
            if verdict == "ok":
                msgid = data.get("msgid")
                sent.append(str(msgid) if msgid else f"{open_kfid}:{external_userid}:{index}")
                continue
            error = f"{where}: errcode={code} {data.get('errmsg', '')}"
            if verdict == "permanent":
                return DeliveryResult(ok=False, external_ids=tuple(sent), permanent=True, error=error)
            retry = _CONFIG_RETRY if verdict == "token" else _TRANSIENT_RETRY
            return DeliveryResult(ok=False, external_ids=tuple(sent), retry_after=retry, error=error)
        return DeliveryResult(ok=True, external_ids=tuple(sent))

    async def aclose(self) -> None:
        await self._http_session.aclose()


def _errcode(data: Mapping[str, Any]) -> int:
    code = data.get("errcode", 0)
    return code if isinstance(code, int) and not isinstance(code, bool) else -1
