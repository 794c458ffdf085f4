"""JD (京东 JOS) adapter: ``routerjson`` calls, chat intake by polling chat logs, replies by 咚咚 push.

Wire format (channels spec §5.2, official): a form POST to ``https://api.jd.com/routerjson`` with
``method``, ``access_token``, ``app_key``, ``timestamp`` (``yyyy-MM-dd HH:mm:ss`` GMT+8, ±6 min),
``v=2.0``, the business params as one key-sorted JSON string ``360buy_param_json`` and ``sign``
(``jd_sign``). Answers are ``{"<method, dots as underscores>_responce": {"code": "0", ...}}`` (JD's
spelling; ``_response`` is accepted too) or ``{"error_response": {"code", "zh_desc", "en_desc"}}``.

Intake: real-time chat push (咚咚/京麦 MQ) is limited to approved ISVs and not public, so we poll the
read-only history ``jingdong.im.pop.chatlog.get`` (``startTime``/``endTime``/``page``/``pageSize``,
optional ``waiter``/``customer``; answer ``ChatLogPage{totalRecord, chatLogList[{sid, customer,
waiter, content, time (epoch ms), waiterSend, skuId, channel}]}``) over a moving time window. The
window's end is the feed cursor: the gateway loop persists it in Redis after the batch is stored, and
every query starts ``overlap_s`` before it, because logs can appear late; the overlap re-reads lines
we already have and the intake dedupe drops them. One process polls per deployment (``exclusive``).
Chat-log lines have no message id, so ``external_message_id`` is ``sid:time:digest(customer+content)``.
Lines with ``waiterSend=true`` are the shop's (its staff or our own replies) and are skipped.

**Assumptions (not public):** a query without ``customer`` returns every buyer's lines of the window
(the SDK marks no field required; if JD insists on ``customer``, list buyers with
``jingdong.im.pop.sessionlist.get`` first — not implemented); lines come oldest first (only used to
keep the cursor honest when a window has more than ``max_pages`` pages).

Replies: ``jingdong.dongdong.packet.josChatMessage.push`` — only in JD's SDK, eligibility not public
(needs ISV approval). Its business params are ``param1`` (``accessid``, ``aspid``, ``source``,
``version`` as issued with the permission — configured as ``JD_PUSH_PARAM1`` — plus ``accessToken``)
and ``param2`` (``upid`` = our outbound id, ``fromPin`` = the waiter account, ``toPin`` = the buyer,
``body`` = ``{"type": "text", "content": …}`` — the body schema is our assumption).

Conversation key: the buyer's pin (``customer``); one JD shop per deployment.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

import aiohttp
from pydantic import ValidationError

from connectors.base import PayloadError
from connectors.feed import FeedBatch, FeedFailure
from connectors.http_session import LazySession
from connectors.marketplace_common import (
    RATE_LIMIT_RETRY_S,
    TRANSIENT_RETRY_S,
    PlatformCallError,
    PlatformError,
    cst_timestamp,
    decode_answer,
    network_failure,
    parse_time,
    render_text,
)
from connectors.marketplace_sign import jd_param_json, jd_sign
from gateway.models import Channel, CustomerRef, DeliveryResult, InboundMessage, OutboundMessage, utcnow

log = logging.getLogger(__name__)

DEFAULT_API_BASE: Final = "https://api.jd.com/routerjson"
CHATLOG: Final = "jingdong.im.pop.chatlog.get"
PUSH: Final = "jingdong.dongdong.packet.josChatMessage.push"

# JOS gateway codes (开发规范 error table): 2 is the call-count limit; the rest of the gateway codes are
# request/credential problems (8 timestamp, 11/12 signature, 14/15 method, 19 access_token...).
_RATE_LIMIT_CODES: Final = frozenset({"2"})
_RATE_WORDS: Final = ("限流", "频率", "频繁", "limit")
_BUSY_WORDS: Final = ("繁忙", "busy", "不可用", "unavailable", "超时", "timeout", "系统异常", "稍后")


def response_key(method: str) -> str:
    """JD's answer key: ``jingdong.im.pop.chatlog.get`` -> ``jingdong_im_pop_chatlog_get_responce``."""
    return method.replace(".", "_") + "_responce"


def classify_jd_error(method: str, err: Mapping[str, Any]) -> PlatformError:
    """Permanent vs retry for a JOS ``error_response`` (or a non-"0" business ``code``): call limits
    and "busy/unavailable/timeout" texts retry; everything else (invalid signature, expired token,
    missing permission, bad arguments) is permanent until an operator acts."""
    code = str(err.get("code", "")).strip()
    text = " ".join(str(err.get(k) or "") for k in ("zh_desc", "en_desc", "msg", "message")).strip()
    lowered = text.lower()

    def error(retry_after: float | None) -> PlatformError:
        return PlatformError("jd", method, code or "?", text or "unknown error", retry_after=retry_after)

    if code in _RATE_LIMIT_CODES or any(word in lowered for word in _RATE_WORDS):
        return error(RATE_LIMIT_RETRY_S)
    if any(word in lowered for word in _BUSY_WORDS):
        return error(TRANSIENT_RETRY_S)
    return error(None)


def chatlog_external_id(item: Mapping[str, Any]) -> str:
    """Stable id of one chat-log line (the API gives none): session id, time and a content digest."""
    digest = hashlib.sha256(f"{item.get('customer')}\x1f{item.get('content')}".encode()).hexdigest()[:16]
    return f"{item.get('sid') or '-'}:{item.get('time')}:{digest}"


class JdAdapter:
    """JD JOS adapter (feed + sender); see the module docstring for the wire format and assumptions."""

    channel: ClassVar[Channel] = Channel.JD

    def __init__(
        self,
        *,
        app_key: str,
        app_secret: str,
        access_token: str,
        api_base: str = DEFAULT_API_BASE,
        waiter: str | None = None,
        push_method: str = PUSH,
        push_param1: Mapping[str, Any] | None = None,
        poll_interval_s: float = 15.0,
        overlap_s: int = 120,
        lookback_s: int = 600,
        max_window_s: int = 3600,
        page_size: int = 100,
        max_pages: int = 100,
        timeout_s: float = 15.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if not (app_key and app_secret and access_token):
            raise ValueError("JD needs app_key, app_secret and access_token")
        self.app_key = app_key
        self._secret = app_secret
        self._token = access_token
        self.api_base = api_base
        self.waiter = waiter or None
        self.push_method = push_method
        self.push_param1 = dict(push_param1 or {})
        self.poll_interval_s = poll_interval_s
        self.overlap_s = overlap_s
        self.lookback_s = lookback_s
        self.max_window_s = max_window_s
        self.page_size = page_size
        self.max_pages = max_pages
        self._clock = clock
        self._http = LazySession(timeout_s)
        self._next_poll = 0.0  # loop time of the next chat-log query (pacing between pulls)

    @property
    def feed_name(self) -> str:
        return f"jd:{self.app_key}:{self.waiter or 'all'}"

    @property
    def exclusive(self) -> bool:
        return True  # one time cursor per shop: a second poller would only re-read the same window

    # ---- JOS calls ---------------------------------------------------------------------------------

    def request_params(self, method: str, business: Mapping[str, Any], now: datetime) -> dict[str, str]:
        """System params + ``360buy_param_json`` + ``sign``, exactly as sent. Pure."""
        return self.signed_params(method, jd_param_json(business), cst_timestamp(now))

    def signed_params(self, method: str, param_json: str, timestamp: str) -> dict[str, str]:
        """The wire params for a given ``360buy_param_json`` string and ``timestamp`` text. Pure."""
        params = {"method": method, "access_token": self._token, "app_key": self.app_key,
                  "timestamp": timestamp, "v": "2.0", "360buy_param_json": param_json}
        params["sign"] = jd_sign(params, self._secret)
        return params

    async def call(self, method: str, business: Mapping[str, Any]) -> dict[str, Any]:
        """One JOS call; the unwrapped answer. Raises ``PlatformCallError`` for JD errors (gateway
        ``error_response`` or a business ``code`` other than "0") and aiohttp errors for transport."""
        params = self.request_params(method, business, self._clock())
        async with self._http.get().post(self.api_base, data=params) as resp:
            body = await resp.read()
            status = resp.status
        data = decode_answer("jd", method, status, body, classify_jd_error)
        answer = data.get(response_key(method), data.get(method.replace(".", "_") + "_response"))
        if not isinstance(answer, dict):
            return {}
        if "code" in answer and str(answer["code"]) != "0":
            raise PlatformCallError(classify_jd_error(method, answer))
        return answer

    # ---- feed --------------------------------------------------------------------------------------

    def window(self, cursor: str | None, now: datetime) -> tuple[int, int]:
        """The ``(start, end)`` epoch seconds to query: from ``overlap_s`` before the stored cursor (or
        ``lookback_s`` before now on first start) to now, at most ``max_window_s`` past the cursor so
        a long outage is caught up step by step. Pure."""
        end = int(now.timestamp())
        try:
            last = int(cursor) if cursor else end - self.lookback_s
        except ValueError:
            log.warning("jd: ignoring unreadable cursor %r", cursor)
            last = end - self.lookback_s
        end = min(end, last + self.max_window_s)
        return min(last, end) - self.overlap_s, end

    def chatlog_query(self, start: int, end: int, page: int) -> dict[str, Any]:
        """Business params of one chat-log page. Pure."""
        query: dict[str, Any] = {
            "startTime": cst_timestamp(datetime.fromtimestamp(start, UTC)),
            "endTime": cst_timestamp(datetime.fromtimestamp(end, UTC)),
            "page": page, "pageSize": self.page_size,
        }
        if self.waiter:
            query["waiter"] = self.waiter
        return query

    async def pull(self, cursor: str | None) -> FeedBatch:
        """Read every chat-log line of the next window (paced to one window per ``poll_interval_s``)."""
        loop = asyncio.get_running_loop()
        delay = self._next_poll - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        self._next_poll = loop.time() + self.poll_interval_s
        start, end = self.window(cursor, self._clock())
        items: list[Any] = []
        total: int | None = None
        for page in range(1, self.max_pages + 1):
            try:
                answer = await self.call(CHATLOG, self.chatlog_query(start, end, page))
            except PlatformCallError as exc:
                raise exc.error.feed_error() from exc
            page_obj = answer.get("ChatLogPage")
            page_obj = page_obj if isinstance(page_obj, dict) else {}
            lines = page_obj.get("chatLogList")
            lines = lines if isinstance(lines, list) else []
            items.extend(lines)
            total = page_obj.get("totalRecord") if isinstance(page_obj.get("totalRecord"), int) else total
            if not lines or len(lines) < self.page_size or (total is not None and len(items) >= total):
                break
        else:
            # More lines than we read: advance only to the newest line seen (lines come oldest first),
            # so the next window starts there instead of skipping the rest.
            newest = max((i["time"] for i in items if isinstance(i, dict) and isinstance(i.get("time"), int)),
                         default=None)
            log.warning("jd: chat-log window %s-%s has more than %d pages", start, end, self.max_pages)
            if newest is not None:
                end = max(start + self.overlap_s + 1, newest // 1000)
        messages: list[InboundMessage] = []
        failures: list[FeedFailure] = []
        ignored = 0
        for item in items:
            try:
                parsed = self.parse_feed(item)
            except PayloadError as exc:
                ext = chatlog_external_id(item) if isinstance(item, dict) else "?"
                failures.append(FeedFailure(ext, json.dumps(item, ensure_ascii=False), str(exc)))
                continue
            messages.extend(parsed)
            ignored += not parsed
        return FeedBatch(tuple(messages), (), tuple(failures), cursor=str(end), ignored=ignored)

    async def confirm(self, batch: FeedBatch) -> None:
        return None  # the persisted cursor is the confirmation; JD keeps the history regardless

    async def suspend(self) -> None:
        return None

    def parse_feed(self, item: Any) -> list[InboundMessage]:
        """One chat-log line -> zero (shop's own line, empty) or one message."""
        if not isinstance(item, dict):
            raise PayloadError("JD chat-log line must be a JSON object")
        if item.get("waiterSend") is True:
            return []
        customer, content, at = item.get("customer"), item.get("content"), item.get("time")
        if not isinstance(customer, str) or not customer.strip():
            raise PayloadError("JD chat-log line has no customer")
        if not isinstance(content, str):
            raise PayloadError("JD chat-log line has no text content")
        if not content.strip():
            return []
        try:
            return [InboundMessage.build(
                channel=Channel.JD, external_message_id=chatlog_external_id(item), conversation_key=customer,
                customer=CustomerRef(channel=Channel.JD, external_id=customer), text=content,
                sent_at=parse_time(at, "JD chat-log time"), raw=item,
            )]
        except ValidationError as exc:
            raise PayloadError(f"JD chat-log line: {exc}") from exc

    # ---- replies -----------------------------------------------------------------------------------

    def push_params(self, message: OutboundMessage) -> dict[str, Any]:
        """Business params of ``josChatMessage.push`` (``param1``/``param2``). Pure."""
        param2: dict[str, Any] = {"upid": message.message_id, "toPin": message.recipient.external_id,
                                  "body": {"type": "text", "content": render_text(message)}}
        if self.waiter:
            param2["fromPin"] = self.waiter
        return {"param1": {**self.push_param1, "accessToken": self._token}, "param2": param2}

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        try:
            answer = await self.call(self.push_method, self.push_params(message))
        except PlatformCallError as exc:
            return exc.error.delivery()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return network_failure("jd", self.push_method, exc)
        result = answer.get("result")
        if isinstance(result, dict) and result.get("success") is False:
            return PlatformError("jd", self.push_method, str(result.get("code", "?")),
                                 str(result.get("msg") or result.get("message") or "push refused")).delivery()
        return DeliveryResult(ok=True, external_ids=(message.message_id,))

    async def aclose(self) -> None:
        await self._http.aclose()
