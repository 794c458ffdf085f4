"""Taobao/Tmall adapter: TOP REST calls, chat intake from the TMC message service, replies via TOP.

Wire format (channels spec §5.1, official): every call is a form POST to the gateway
(``https://gw.api.taobao.com/router/rest``) with the system params ``method``, ``app_key``,
``session`` (the seller's authorisation), ``timestamp`` (``yyyy-MM-dd HH:mm:ss`` GMT+8, ±10 min),
``v=2.0``, ``format=json``, ``sign_method`` and ``sign`` (``top_sign`` in ``marketplace_sign``).
Answers are ``{"<method without 'taobao.', dots as underscores>_response": {...}}`` or
``{"error_response": {"code", "msg", "sub_code", "sub_msg"}}`` (see ``classify_top_error``).

Intake: TMC by API polling — ``taobao.tmc.messages.consume`` (``group_name``, ``quantity`` 10–200)
hands out messages ``{id, topic, content (JSON string), user_id, user_nick, pub_time, pub_app_key}``;
``taobao.tmc.messages.confirm`` (``s_message_ids``) removes them. Unconfirmed messages come back, so
delivery is at-least-once: we confirm only after the batch is on our stream and dedupe on the TMC
``id``. Messages of other topics (orders, refunds) are confirmed without producing messages. TMC
hands a message to one poller at a time, so several processes may poll the same group.

**Not public — assumptions, all in one place:**

* The chat topics ("旺旺聊天消息服务", open only to apps that already had chat-log permission) and
  their ``content`` schema are documented only to approved apps. The topic names are configured
  (``TAOBAO_CHAT_TOPICS``, as shown in the app's TMC console); ``content`` is read as a JSON object
  with, in order of preference: buyer id ``buyer_open_uid``/``open_uid``/``buyer_ouid``/``ouid``/
  ``security_uid``/``buyer_security_uid``/``buyer_uid`` (the OpenUID/SecurityUID of the 2023 "去Nick"
  change), else the legacy ``buyer_nick``/``from_nick``/``nick`` (kept as ``nick:<nick>``); text
  ``content``/``text``/``msg_content``; an image URL ``pic_url``/``image_url``/``url``; time
  ``send_time``/``msg_time``/``time`` (epoch s/ms or GMT+8 text, else the TMC ``pub_time``); and the
  shop side's own lines are recognised by ``from_role``/``direction``/``from_seller``-style markers
  (``marketplace_common.sent_by_shop``) and skipped. Everything stays in ``raw``.
* Sending chat as the shop is not a public TOP API (it happens through 千牛 plugins or 店小蜜). The
  reply goes through a configured method (``TAOBAO_SEND_METHOD``) with the business params
  ``buyer_open_uid`` (or ``buyer_nick``), ``content``, ``msg_type=text`` and ``client_msg_id`` (our
  outbound id). With no method configured a reply fails permanently, so a human answers in 千牛.

Conversation key: ``"<seller user_id>:<buyer id>"`` — one conversation per buyer and shop.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Final

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
    cst_timestamp,
    decode_answer,
    first_value,
    json_object,
    network_failure,
    parse_time,
    render_text,
    sent_by_shop,
)
from connectors.marketplace_sign import TopSignMethod, top_sign
from gateway.models import (
    Attachment,
    Channel,
    CustomerRef,
    DeliveryResult,
    InboundMessage,
    OutboundMessage,
    utcnow,
)

DEFAULT_API_BASE: Final = "https://gw.api.taobao.com/router/rest"
CONSUME: Final = "taobao.tmc.messages.consume"
CONFIRM: Final = "taobao.tmc.messages.confirm"
CONFIRM_MAX_IDS: Final = 200  # taobao.tmc.messages.confirm takes at most 200 ids per call

BUYER_UID_KEYS: Final = ("buyer_open_uid", "open_uid", "buyer_ouid", "ouid", "security_uid",
                         "buyer_security_uid", "buyer_uid")
BUYER_NICK_KEYS: Final = ("buyer_nick", "from_nick", "nick")
TEXT_KEYS: Final = ("content", "text", "msg_content")
IMAGE_KEYS: Final = ("pic_url", "image_url", "url")
TIME_KEYS: Final = ("send_time", "msg_time", "time")

# TOP platform error codes (API调用协议 error table): flow control, "service unavailable", and the
# codes that mean the request itself or the app/seller authorisation is wrong.
_RATE_LIMIT_CODES: Final = frozenset({"4", "5", "6", "7", "8"})
_UNAVAILABLE_CODES: Final = frozenset({"10", "15"})  # 15 "Remote service error" without an isv.* sub_code
_BAN_RE: Final = re.compile(r"ban will last for (\d+) more seconds", re.IGNORECASE)
_BUSY_WORDS: Final = ("system busy", "系统繁忙", "服务繁忙", "timeout", "超时")


def response_key(method: str) -> str:
    """The key TOP wraps a method's answer in: ``taobao.tmc.messages.consume`` ->
    ``tmc_messages_consume_response``."""
    return method.removeprefix("taobao.").replace(".", "_") + "_response"


def classify_top_error(method: str, err: Mapping[str, Any]) -> PlatformError:
    """Permanent vs retry for a TOP ``error_response``.

    * ``sub_code`` ``isv.*``: the caller's fault (bad parameter, missing permission) — permanent;
    * ``sub_code`` ``isp.*``: the platform's fault — retry soon;
    * ``accesscontrol.*`` and codes 4–8: call-count / frequency limits — retry after the ban ("This ban
      will last for N more seconds") or a minute;
    * 10 "Service Currently Unavailable", 15 "Remote Service Error", "system busy": retry soon;
    * everything else (25 Invalid Signature, 27 Invalid Session, 11 Insufficient ISV Permissions,
      40/41 arguments, …): permanent — an operator has to fix credentials or authorisation.
    """
    code = str(err.get("code", "")).strip()
    sub_code = str(err.get("sub_code") or "").strip()
    text = " ".join(str(err.get(k) or "") for k in ("msg", "sub_msg")).strip()

    def error(retry_after: float | None) -> PlatformError:
        return PlatformError("taobao", method, code or "?", text or "unknown error", sub_code, retry_after)

    if sub_code.startswith("isv."):
        return error(None)
    if sub_code.startswith("isp."):
        return error(TRANSIENT_RETRY_S)
    if sub_code.startswith("accesscontrol") or code in _RATE_LIMIT_CODES:
        ban = _BAN_RE.search(text)
        return error(float(ban.group(1)) if ban else RATE_LIMIT_RETRY_S)
    if code in _UNAVAILABLE_CODES or any(word in text.lower() for word in _BUSY_WORDS):
        return error(TRANSIENT_RETRY_S)
    return error(None)


def tmc_messages(answer: Mapping[str, Any]) -> list[Any]:
    """The message list of a consume answer: ``{"messages": {"tmc_message": [...]}}`` (TOP's default
    wrapping), ``{"messages": [...]}`` (``simplify=true``) or no ``messages`` at all when empty."""
    messages = answer.get("messages")
    if isinstance(messages, dict):
        messages = messages.get("tmc_message")
    if messages is None:
        return []
    if not isinstance(messages, list):
        raise FeedError(f"taobao {CONSUME}: unexpected messages field {type(messages).__name__}")
    return messages


class TaobaoAdapter:
    """Taobao/Tmall TOP adapter (feed + sender); see the module docstring for the wire format."""

    channel: ClassVar[Channel] = Channel.TAOBAO

    def __init__(
        self,
        *,
        app_key: str,
        app_secret: str,
        session: str,
        chat_topics: Sequence[str],
        api_base: str = DEFAULT_API_BASE,
        sign_method: TopSignMethod = "md5",
        tmc_group: str | None = None,
        send_method: str | None = None,
        quantity: int = 100,
        idle_wait_s: float = 1.0,
        timeout_s: float = 15.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if not (app_key and app_secret and session):
            raise ValueError("Taobao needs app_key, app_secret and session")
        if not 10 <= quantity <= 200:
            raise ValueError("TMC consume quantity must be 10-200")
        self.app_key = app_key
        self._secret = app_secret
        self._session_key = session
        self.chat_topics = frozenset(chat_topics)
        self.api_base = api_base
        self.sign_method: TopSignMethod = sign_method
        self.tmc_group = tmc_group or None
        self.send_method = send_method or None
        self.quantity = quantity
        self.idle_wait_s = idle_wait_s
        self._clock = clock
        self._http = LazySession(timeout_s)

    @property
    def feed_name(self) -> str:
        return f"taobao:{self.app_key}:{self.tmc_group or 'default'}"

    @property
    def exclusive(self) -> bool:
        return False  # TMC gives each message to one poller until confirmed or timed out

    # ---- TOP calls ---------------------------------------------------------------------------------

    def request_params(self, method: str, business: Mapping[str, str | int], now: datetime) -> dict[str, str]:
        """System + business params with ``sign``, exactly as they go on the wire. Pure."""
        params: dict[str, str] = {
            "method": method, "app_key": self.app_key, "session": self._session_key,
            "timestamp": cst_timestamp(now), "format": "json", "v": "2.0", "sign_method": self.sign_method,
        }
        for key, value in business.items():
            params[key] = str(value)
        params["sign"] = top_sign(params, self._secret, self.sign_method)
        return params

    async def call(self, method: str, business: Mapping[str, str | int]) -> dict[str, Any]:
        """One TOP call; returns the unwrapped answer object. Raises ``PlatformCallError`` for an
        ``error_response`` and ``aiohttp.ClientError``/``TimeoutError`` for transport trouble."""
        params = self.request_params(method, business, self._clock())
        async with self._http.get().post(self.api_base, data=params) as resp:
            body = await resp.read()
            status = resp.status
        data = decode_answer("taobao", method, status, body, classify_top_error)
        answer = data.get(response_key(method))
        return answer if isinstance(answer, dict) else {}

    # ---- feed --------------------------------------------------------------------------------------

    async def pull(self, cursor: str | None) -> FeedBatch:
        """Consume up to ``quantity`` TMC messages; sleeps ``idle_wait_s`` when there are none (TOP
        asks pollers not to hammer an empty queue)."""
        business: dict[str, str | int] = {"quantity": self.quantity}
        if self.tmc_group:
            business["group_name"] = self.tmc_group
        try:
            answer = await self.call(CONSUME, business)
        except PlatformCallError as exc:
            raise exc.error.feed_error() from exc
        items = tmc_messages(answer)
        if not items:
            await asyncio.sleep(self.idle_wait_s)
            return FeedBatch()
        messages: list[InboundMessage] = []
        receipts: list[str] = []
        failures: list[FeedFailure] = []
        ignored = 0
        for item in items:
            tmc_id = first_value(item, ("id",)) if isinstance(item, dict) else None
            if tmc_id is not None:
                receipts.append(tmc_id)  # confirmed whatever happens below, once stored
            try:
                parsed = self.parse_feed(item)
            except PayloadError as exc:
                failures.append(FeedFailure(f"tmc:{tmc_id}", json.dumps(item, ensure_ascii=False), str(exc)))
                continue
            messages.extend(parsed)
            ignored += not parsed
        return FeedBatch(tuple(messages), tuple(receipts), tuple(failures), ignored=ignored)

    async def confirm(self, batch: FeedBatch) -> None:
        ids = [str(r) for r in batch.receipts]
        for start in range(0, len(ids), CONFIRM_MAX_IDS):
            business: dict[str, str | int] = {"s_message_ids": ",".join(ids[start:start + CONFIRM_MAX_IDS])}
            if self.tmc_group:
                business["group_name"] = self.tmc_group
            try:
                answer = await self.call(CONFIRM, business)
            except PlatformCallError as exc:
                raise exc.error.feed_error() from exc
            if answer.get("is_success") is False:
                raise FeedError(f"taobao {CONFIRM}: is_success=false", retry_after=TRANSIENT_RETRY_S)

    async def suspend(self) -> None:
        return None  # API polling holds no connection

    def parse_feed(self, item: Any) -> list[InboundMessage]:
        """One TMC message -> zero or one chat message (see the module docstring for the mapping)."""
        if not isinstance(item, dict):
            raise PayloadError("TMC message must be a JSON object")
        tmc_id = first_value(item, ("id",))
        if tmc_id is None:
            raise PayloadError("TMC message has no id")
        if item.get("topic") not in self.chat_topics:
            return []
        try:
            return self._chat_message(tmc_id, item)
        except PayloadError:
            raise
        except (ValidationError, ValueError, TypeError, KeyError) as exc:
            raise PayloadError(f"TMC message {tmc_id}: {exc}") from exc

    def _chat_message(self, tmc_id: str, item: dict[str, Any]) -> list[InboundMessage]:
        content = json_object(item.get("content"), f"TMC message {tmc_id} content")
        if sent_by_shop(content):
            return []  # the shop's own lines (staff in 千牛, our replies echoed back)
        nick = first_value(content, BUYER_NICK_KEYS)
        buyer = first_value(content, BUYER_UID_KEYS) or (f"nick:{nick}" if nick else None)
        if buyer is None:
            raise PayloadError(f"TMC message {tmc_id}: no buyer id in content")
        seller = (first_value(item, ("user_id",)) or first_value(content, ("seller_id", "seller_user_id"))
                  or first_value(item, ("user_nick",)))
        if seller is None:
            raise PayloadError(f"TMC message {tmc_id}: no seller (user_id)")
        text = next((v for k in TEXT_KEYS if isinstance(v := content.get(k), str) and v.strip()), "")
        image = first_value(content, IMAGE_KEYS)
        attachments = (Attachment(kind="image", ref=image),) if image and image.startswith("http") else ()
        if not text and not attachments:
            return []  # system notices, typing states...
        when = next((content[k] for k in TIME_KEYS if content.get(k) not in (None, "")), item.get("pub_time"))
        return [InboundMessage.build(
            channel=Channel.TAOBAO, external_message_id=f"tmc:{tmc_id}", conversation_key=f"{seller}:{buyer}",
            customer=CustomerRef(channel=Channel.TAOBAO, external_id=buyer, display_name=nick),
            text=text, sent_at=parse_time(when, f"TMC message {tmc_id} time"), attachments=attachments, raw=item,
        )]

    # ---- replies -----------------------------------------------------------------------------------

    def send_params(self, message: OutboundMessage) -> dict[str, str | int]:
        """Business params of the (configured, non-public) send method. Pure."""
        buyer = message.recipient.external_id
        params: dict[str, str | int] = {"content": render_text(message), "msg_type": "text",
                                        "client_msg_id": message.message_id}
        if buyer.startswith("nick:"):
            params["buyer_nick"] = buyer.removeprefix("nick:")
        else:
            params["buyer_open_uid"] = buyer
        return params

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        if self.send_method is None:
            return DeliveryResult(ok=False, permanent=True, error=(
                "taobao: no send method configured (TAOBAO_SEND_METHOD); sending chat as the shop is not "
                "a public TOP API — answer in 千牛"))
        try:
            answer = await self.call(self.send_method, self.send_params(message))
        except PlatformCallError as exc:
            return exc.error.delivery()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return network_failure("taobao", self.send_method, exc)
        found = _find_id(answer)
        return DeliveryResult(ok=True, external_ids=(found,) if found else ())

    async def aclose(self) -> None:
        await self._http.aclose()


def _find_id(answer: Mapping[str, Any]) -> str | None:
    """A message id anywhere one level deep in a send answer (its shape is not public)."""
    for obj in (answer, *(v for v in answer.values() if isinstance(v, dict))):
        found = first_value(obj, ("msg_id", "message_id"))
        if found:
            return found
    return None
