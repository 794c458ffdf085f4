"""WeChat Official Account (公众号) connector: signed XML callbacks in, customer-service messages out.

Inbound (channels spec §1.1–§1.3): ``GET`` URL verification returns ``echostr`` verbatim after the
plain ``signature`` check; every ``POST`` is verified, parsed (``connectors.wechat_xml``) and answered
``success`` at once. WeChat gives 5 seconds and then re-sends the same message, so the gateway only
persists (dedupe on ``MsgId``) before answering; the reply goes out later through ``custom/send``.

Modes:

* plaintext: ``signature = sha1(sorted(token, timestamp, nonce))``. It does **not** cover the body,
  so anyone holding one captured query string could post any body with it; hence the timestamp window
  below, and safe mode is recommended.
* safe / compatibility (``encrypt_type=aes`` or an ``<Encrypt>`` in the body): only ``msg_signature``
  over the four values including ``Encrypt`` counts (the doc: "不要使用 signature 验证"), and only the
  decrypted XML is used (a compatibility body's plaintext copy is ignored). Once an EncodingAESKey is
  configured, plaintext POSTs are refused, so nobody can downgrade a safe-mode account.

Timestamp window: requests whose ``timestamp`` is more than ``max_skew_s`` (default 300 s) away from
our clock are refused. WeChat's retries all fall within ~15 s; a wide window tolerates clock drift.

Outbound (§1.5): text only, through ``POST /cgi-bin/message/custom/send``. Quick replies become
numbered options (the dialogue memory maps "2" back to the option): ``msgmenu`` taps would work too,
but its limits and tap semantics are not in our spec, and each is one message of the quota either way.
WeChat documents no length limit for kf text; we split at 2048 UTF-8 bytes (the documented limit of
passive text replies), preferring paragraph and sentence breaks. Every chunk uses one of the 5 replies
a customer message allows, so long answers are expensive; a failed later chunk does not resend the
earlier ones when the same process retries (``_progress``). WeChat has no idempotency key.

access_token: the connector never caches it. ``tokens`` (a ``TokenSource``, in production
``gateway.access_tokens.SharedAccessToken`` fed by ``fetch_access_token``) is shared by every process,
because each refresh of the plain token endpoint invalidates older tokens.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Protocol

import aiohttp

from connectors.base import PayloadError, VerificationError, WebhookRequest, WebhookResponse
from connectors.http_session import LazySession
from connectors.text_parts import split_text, utf8_bytes, with_numbered_options
from connectors.wechat_crypto import WeChatCrypto, WeChatCryptoError, msg_signature, plain_signature, verify_signature
from connectors.wechat_xml import encrypt_field, parse_xml, to_message
from gateway.models import Channel, DeliveryResult, InboundMessage, OutboundMessage

MAX_TEXT_BYTES: Final = 2048
DEFAULT_MAX_SKEW_S: Final = 300.0
TOKEN_ERRORS: Final = frozenset({40001, 40014, 42001})  # invalid / malformed / expired access_token
WINDOW_ERRORS: Final = {
    45015: "微信客服消息窗口已关闭（客户48小时内未互动或已取消关注），无法再回复 / WeChat reply window closed: "
           "no customer interaction in the last 48 h, or the customer unfollowed",
    45047: "微信客服消息额度已用完（客户每条消息后48小时内最多回复5条）/ WeChat reply quota used up: "
           "at most 5 messages per customer message within 48 h",
}
RETRY_ERRORS: Final = {-1: 5.0, 45009: 60.0}  # system busy; API daily quota reached
_TRANSIENT_RETRY: Final = 5.0  # network errors, HTTP 5xx, unreadable answers
_CONFIG_RETRY: Final = 60.0  # token unobtainable or rejected twice: credentials, not the message
_PROGRESS_KEEP: Final = 1024


class TokenSource(Protocol):
    """Where ``send`` gets its access_token (``gateway.access_tokens.SharedAccessToken`` fits)."""

    async def get(self) -> str: ...

    async def invalidate(self, token: str) -> None: ...


class WeChatApiError(RuntimeError):
    """The WeChat API answered an error (``errcode``) or could not be reached (``errcode`` None)."""

    def __init__(self, errcode: int | None, errmsg: str) -> None:
        super().__init__(f"WeChat errcode {errcode}: {errmsg}" if errcode is not None else errmsg)
        self.errcode = errcode


def split_utf8(text: str, limit: int = MAX_TEXT_BYTES) -> list[str]:
    """Split into chunks of at most ``limit`` UTF-8 bytes; ``"".join(chunks) == text``."""
    return split_text(text, limit, utf8_bytes)


render = with_numbered_options  # WeChat text has no buttons: quick replies become numbered options


@dataclass(frozen=True, slots=True)
class _Failure:
    error: str
    retry_after: float | None = None

    @property
    def permanent(self) -> bool:
        return self.retry_after is None


class WeChatConnector:
    """One Official Account (see the module docstring for modes, limits and error handling)."""

    channel: ClassVar[Channel] = Channel.WECHAT

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        token: str,
        encoding_aes_key: str | None = None,
        *,
        api_base: str = "https://api.weixin.qq.com",
        tokens: TokenSource | None = None,
        clock: Callable[[], float] = time.time,
        max_skew_s: float | None = DEFAULT_MAX_SKEW_S,
        subscribe_text: str | None = None,
        http_timeout_s: float = 10.0,
    ) -> None:
        if not app_id or not app_secret or not token:
            raise ValueError("WeChat app id, app secret and token are all required")
        self.app_id = app_id
        self._app_secret = app_secret
        self._token = token
        # Raises WeChatCryptoError (a ValueError) for a key that is not 43 base64 characters.
        self._crypto = WeChatCrypto(token, encoding_aes_key, app_id) if encoding_aes_key else None
        self._api_base = api_base.rstrip("/")
        #: Set after construction when the source needs the connector (``fetch_access_token``).
        self.tokens = tokens
        self._clock = clock
        self._max_skew_s = max_skew_s
        self._subscribe_text = subscribe_text or None
        self._http_session = LazySession(http_timeout_s)
        self._progress: OrderedDict[str, int] = OrderedDict()  # message_id -> chunks already sent

    @property
    def safe_mode(self) -> bool:
        return self._crypto is not None

    # ---- inbound ---------------------------------------------------------------------------------

    def _check_query(self, query: Mapping[str, str]) -> tuple[str, str]:
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if not timestamp or not nonce:
            raise VerificationError("WeChat signature parameters (timestamp, nonce) are missing")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise VerificationError("WeChat timestamp must be unix seconds")
        if self._max_skew_s is not None and abs(self._clock() - int(timestamp)) > self._max_skew_s:
            raise VerificationError(
                f"WeChat timestamp is more than {self._max_skew_s:.0f} s away from our clock (replay, or a "
                "wrong server clock)"
            )
        return timestamp, nonce

    def _check_plain(self, query: Mapping[str, str], timestamp: str, nonce: str) -> None:
        if not verify_signature(plain_signature(self._token, timestamp, nonce), query.get("signature", "")):
            raise VerificationError("bad WeChat signature")

    def verify(self, request: WebhookRequest) -> None:
        """Authenticate a callback POST (see the module docstring for which signature counts)."""
        timestamp, nonce = self._check_query(request.query)
        encrypt = encrypt_field(request.body)  # PayloadError (400) for anything but plain XML
        if encrypt is None and self._crypto is None and request.query.get("encrypt_type", "").lower() != "aes":
            self._check_plain(request.query, timestamp, nonce)
            return
        if encrypt is None:
            raise VerificationError("WeChat safe mode: the body carries no <Encrypt> (plaintext POSTs are "
                                    "refused once an EncodingAESKey is configured)")
        wanted = msg_signature(self._token, timestamp, nonce, encrypt)
        if not verify_signature(wanted, request.query.get("msg_signature", "")):
            raise VerificationError("bad WeChat msg_signature")

    def verify_url(self, request: WebhookRequest) -> str:
        """The console's GET URL check: verify ``signature`` and return ``echostr`` unchanged."""
        timestamp, nonce = self._check_query(request.query)
        self._check_plain(request.query, timestamp, nonce)
        echostr = request.query.get("echostr", "")
        if not echostr:
            raise PayloadError("WeChat URL verification needs an echostr parameter")
        return str(echostr)

    def parse(self, body: bytes) -> list[InboundMessage]:
        """One callback -> zero or one message; decrypts ``<Encrypt>`` first. Raises only ``PayloadError``."""
        fields = parse_xml(body)
        encrypt = fields.get("Encrypt")
        if isinstance(encrypt, str) and encrypt.strip():
            if self._crypto is not None:
                try:
                    plain = self._crypto.decrypt(encrypt.strip())  # the receive id must be our AppID
                except WeChatCryptoError as exc:
                    raise PayloadError(f"WeChat <Encrypt> could not be opened: {exc}") from exc
                fields = parse_xml(plain, "decrypted WeChat message")
            elif "MsgType" not in fields:
                raise PayloadError("encrypted WeChat message, but WECHAT_ENCODING_AES_KEY is not configured")
            # else: compatibility mode without a key configured: the plaintext copy is all we can read
        elif self._crypto is not None:
            raise PayloadError("WeChat safe mode: plaintext message refused")
        message = to_message(fields, subscribe_text=self._subscribe_text)
        return [] if message is None else [message]

    def ack(self, messages: list[InboundMessage]) -> WebhookResponse:
        """Always ``success``: WeChat then neither retries nor shows the "cannot serve" notice."""
        return WebhookResponse(200, b"success", "text/plain")

    # ---- outbound --------------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        return self._http_session.get()

    def _redact(self, text: str, *secrets: str) -> str:
        for secret in (self._app_secret, *secrets):
            if secret:
                text = text.replace(secret, "***")
        return text

    async def _call(self, method: str, path: str, token: str = "", **kwargs: Any) -> dict[str, Any]:
        """One API call -> its JSON object; ``WeChatApiError(None, ...)`` for transport failures."""
        try:
            async with self._http().request(method, f"{self._api_base}{path}", **kwargs) as resp:
                status, body = resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WeChatApiError(None, self._redact(f"{path}: {type(exc).__name__}: {exc}", token)) from exc
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if status >= 300 or not isinstance(data, dict):
            raise WeChatApiError(None, f"{path}: HTTP {status}, unexpected answer")
        return data

    async def fetch_access_token(self) -> tuple[str, float]:
        """``GET /cgi-bin/token`` -> ``(access_token, expires_in_s)``; raises ``WeChatApiError``."""
        data = await self._call("GET", "/cgi-bin/token", params={
            "grant_type": "client_credential", "appid": self.app_id, "secret": self._app_secret})
        errcode = data.get("errcode")
        if errcode not in (None, 0):
            raise WeChatApiError(errcode if isinstance(errcode, int) else -1,
                                 self._redact(str(data.get("errmsg", ""))))
        token, expires_in = data.get("access_token"), data.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int | float) or expires_in <= 0:
            raise WeChatApiError(None, "/cgi-bin/token: answer without access_token/expires_in")
        return token, float(expires_in)

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Send as one ``custom/send`` call per chunk; never raises for WeChat-side failures."""
        openid = message.conversation_key
        if not openid or len(openid) > 128 or any(ch.isspace() for ch in openid):
            return DeliveryResult(ok=False, permanent=True, error=f"not a WeChat openid: {openid[:40]!r}")
        chunks = [c for c in split_utf8(render(message)) if c.strip()]
        if not chunks:
            return DeliveryResult(ok=False, permanent=True, error="message text is blank")
        if self.tokens is None:
            return DeliveryResult(ok=False, retry_after=_CONFIG_RETRY, error="no WeChat access-token source")
        done = self._progress.pop(message.message_id, 0)
        sent: list[str] = []
        for index in range(done, len(chunks)):
            payload = {"touser": openid, "msgtype": "text", "text": {"content": chunks[index]}}
            outcome = await self._send_chunk(self.tokens, payload)
            if isinstance(outcome, _Failure):
                if not outcome.permanent:
                    self._remember(message.message_id, index)
                where = f"chunk {index + 1}/{len(chunks)}: " if len(chunks) > 1 else ""
                return DeliveryResult(ok=False, external_ids=tuple(sent), retry_after=outcome.retry_after,
                                      permanent=outcome.permanent, error=where + outcome.error)
            if outcome:
                sent.append(outcome)
        return DeliveryResult(ok=True, external_ids=tuple(sent))

    def _remember(self, message_id: str, index: int) -> None:
        self._progress[message_id] = index
        while len(self._progress) > _PROGRESS_KEEP:
            self._progress.popitem(last=False)

    async def _send_chunk(self, tokens: TokenSource, payload: dict[str, Any]) -> str | _Failure:
        """One chunk -> WeChat's msgid ("" when it gives none) or a failure. Retries once on a fresh
        token when WeChat says ours is invalid or expired."""
        body = json.dumps(payload, ensure_ascii=False).encode()  # WeChat wants raw UTF-8, not \\u escapes
        for attempt in (1, 2):
            try:
                token = await tokens.get()
            except Exception as exc:  # any token source failure: not this message's fault, try later
                return _Failure(f"no access_token: {self._redact(str(exc))}", retry_after=_CONFIG_RETRY)
            try:
                data = await self._call("POST", "/cgi-bin/message/custom/send", token,
                                        params={"access_token": token}, data=body,
                                        headers={"Content-Type": "application/json; charset=utf-8"})
            except WeChatApiError as exc:
                return _Failure(str(exc), retry_after=_TRANSIENT_RETRY)
            errcode, errmsg = data.get("errcode", 0), self._redact(str(data.get("errmsg", "")), token)
            if errcode == 0:
                msgid = data.get("msgid")
                return str(msgid) if msgid is not None else ""  # custom/send documents no message id
            if errcode in TOKEN_ERRORS:
                await tokens.invalidate(token)  # the next get() fetches a new one (once, for all workers)
                if attempt == 1:
                    continue
                return _Failure(f"access_token rejected twice (errcode {errcode}: {errmsg})",
                                retry_after=_CONFIG_RETRY)
            if errcode in WINDOW_ERRORS:
                return _Failure(f"{WINDOW_ERRORS[errcode]} (errcode {errcode}: {errmsg})")
            if errcode in RETRY_ERRORS:
                return _Failure(f"errcode {errcode}: {errmsg}", retry_after=RETRY_ERRORS[errcode])
            # 40003 bad openid, 43004 not following, 45002 too long...: resending cannot help.
            return _Failure(f"errcode {errcode}: {errmsg}")
        raise AssertionError("unreachable: the second attempt always returns")

    async def aclose(self) -> None:
        await self._http_session.aclose()
