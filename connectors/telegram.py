"""Telegram connector: Bot API updates in (webhook or long polling), ``sendMessage`` out via aiogram 3.

Dedupe key: Telegram numbers updates per bot (``update_id``) and redelivers the same update after a
failed webhook call, so ``external_message_id`` is ``"{bot_id}:{update_id}"``. An edit arrives as a
new update with a new ``update_id`` and therefore becomes a new message, as it should.

Partial sends: a long reply goes out as several messages. If a later chunk fails, the result lists the
chunks already delivered in ``external_ids`` (in order); a retry of the whole ``OutboundMessage`` will
resend them, because ``DeliveryResult`` has no resume position (Telegram has no idempotency key either).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, TypeGuard

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    TelegramAPIError,
    TelegramEntityTooLarge,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetUpdates
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from connectors import text_parts
from connectors.base import PayloadError, VerificationError, WebhookRequest, WebhookResponse
from connectors.text_parts import utf16_units
from gateway.models import Attachment, Channel, CustomerRef, DeliveryResult, InboundMessage, OutboundMessage

SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"
MAX_TEXT_UTF16: Final = 4096  # sendMessage limit, counted in UTF-16 code units like all Bot API lengths
MAX_CALLBACK_DATA_BYTES: Final = 64
# Subscribing only to what parse() turns into messages keeps Telegram from sending noise we'd drop.
ALLOWED_UPDATES: Final = ("message", "edited_message", "business_message", "edited_business_message",
                          "callback_query")
_MESSAGE_KEYS: Final = (("message", False), ("edited_message", True), ("business_message", False),
                        ("edited_business_message", True))
_TOKEN_RE: Final = re.compile(r"(\d+):\S+")
_SECRET_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,256}")
_TRANSIENT_RETRY: Final = 5.0  # network errors / 5xx: Telegram itself suggests ~5 s when restarting
_CONFIG_RETRY: Final = 60.0  # token rejected: not the message's fault, wait for an operator fix


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram's 4096 limit is expressed in."""
    return sum(utf16_units(ch) for ch in text)


def split_text(text: str, limit: int = MAX_TEXT_UTF16) -> list[str]:
    """Split into chunks of at most ``limit`` UTF-16 units; ``"".join(chunks) == text``
    (``connectors.text_parts``: paragraph, line, sentence, clause or space breaks; glyphs kept whole)."""
    return text_parts.split_text(text, limit, utf16_units)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not an id


def _obj(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"Telegram update: {where} must be an object")
    return value


def _int(value: object, where: str) -> int:
    if not _is_int(value):
        raise PayloadError(f"Telegram update: {where} must be an integer")
    return value


def _opt(obj: Mapping[str, Any], key: str, kind: type[Any], where: str) -> Any:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise PayloadError(f"Telegram update: {where}.{key} must be {kind.__name__}")
    return value


def _timestamp(value: object, where: str) -> datetime:
    try:
        return datetime.fromtimestamp(_int(value, where), UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise PayloadError(f"Telegram update: {where} is out of range") from exc


class TelegramConnector:
    """Telegram Bot API connector (see the module docstring for dedupe and partial-send semantics)."""

    channel: ClassVar[Channel] = Channel.TELEGRAM

    def __init__(
        self,
        token: str,
        *,
        webhook_secret: str | None = None,
        api_base: str = "https://api.telegram.org",
        max_retry_wait: float = 30.0,
    ) -> None:
        match = _TOKEN_RE.fullmatch(token)
        if match is None:
            raise ValueError("Telegram bot token must look like '<bot id>:<secret>'")
        if webhook_secret is not None and not _SECRET_RE.fullmatch(webhook_secret):
            # Telegram's own rule for secret_token; anything else setWebhook would reject anyway.
            raise ValueError("webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        self._token = token
        self.bot_id = int(match.group(1))
        self._webhook_secret = webhook_secret
        self._api_base = api_base
        self._max_retry_wait = max_retry_wait
        self._session: AiohttpSession | None = None
        self._bot: Bot | None = None

    def _get_bot(self) -> tuple[Bot, AiohttpSession]:
        # Lazy: constructing the connector must do no I/O and need no running event loop.
        if self._bot is None or self._session is None:
            self._session = AiohttpSession(api=TelegramAPIServer.from_base(self._api_base))
            self._bot = Bot(self._token, session=self._session)
        return self._bot, self._session

    # ---- inbound ---------------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Require the ``secret_token`` Telegram echoes on every webhook call (constant-time compare)."""
        if self._webhook_secret is None:
            raise VerificationError("webhook secret not configured")  # an open webhook accepts forgeries
        wanted = SECRET_HEADER.lower()
        provided = next((v for k, v in request.headers.items() if k.lower() == wanted), None)
        if provided is None:
            raise VerificationError(f"missing {SECRET_HEADER} header")
        provided_bytes = provided.encode("utf-8", "surrogateescape")  # never raise on odd header bytes
        if not hmac.compare_digest(provided_bytes, self._webhook_secret.encode()):
            raise VerificationError(f"bad {SECRET_HEADER} header")

    def parse(self, body: bytes) -> list[InboundMessage]:
        """One Telegram ``Update`` -> zero or one message. Raises only ``PayloadError`` on bad input."""
        try:
            update = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise PayloadError(f"Telegram update is not valid JSON: {exc}") from exc
        if not isinstance(update, dict):
            raise PayloadError("Telegram update must be a JSON object")
        update_id = update.get("update_id")
        if not _is_int(update_id) or update_id < 0:
            raise PayloadError("Telegram update needs a non-negative integer update_id")
        try:
            message = self._parse_update(update, f"{self.bot_id}:{update_id}")
        except PayloadError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
            # Safety net (pydantic's ValidationError is a ValueError): junk must become a 400, never a 500.
            raise PayloadError(f"malformed Telegram update {update_id}: {exc}") from exc
        return [] if message is None else [message]

    def _parse_update(self, update: dict[str, Any], external_id: str) -> InboundMessage | None:
        for key, edited in _MESSAGE_KEYS:
            if key in update:
                return self._from_message(update, external_id, _obj(update[key], key), edited)
        if "callback_query" in update:
            return self._from_callback(update, external_id, _obj(update["callback_query"], "callback_query"))
        return None  # my_chat_member, message_reaction, channel_post, polls...: no customer words

    def _from_message(
        self, update: dict[str, Any], external_id: str, msg: dict[str, Any], edited: bool
    ) -> InboundMessage | None:
        chat_id = _int(_obj(msg.get("chat"), "message.chat").get("id"), "message.chat.id")
        # An edit is ordered by when the customer edited, not when they first wrote.
        sent_at = _timestamp(msg["edit_date"] if edited and "edit_date" in msg else msg.get("date"),
                             "message.date")
        sender = msg.get("from")
        if sender is None:
            return None  # anonymous group admin or channel: nobody we can answer
        user = _obj(sender, "message.from")
        if user.get("is_bot") is True:
            return None  # other bots (or our own echoes) are not customers
        text = _opt(msg, "text", str, "message") or _opt(msg, "caption", str, "message") or ""
        attachments = _attachments(msg)
        if not text and not attachments:
            return None  # service messages: joins, pins, chat photo changes...
        return InboundMessage.build(
            channel=Channel.TELEGRAM, external_message_id=external_id, conversation_key=str(chat_id),
            customer=_customer(user), text=text, sent_at=sent_at, attachments=attachments, raw=update,
        )

    def _from_callback(
        self, update: dict[str, Any], external_id: str, query: dict[str, Any]
    ) -> InboundMessage | None:
        user = _obj(query.get("from"), "callback_query.from")
        data = _opt(query, "data", str, "callback_query")
        if not data or query.get("message") is None:
            return None  # game callbacks carry no data; inline-mode buttons have no chat to answer in
        msg = _obj(query["message"], "callback_query.message")
        chat_id = _int(_obj(msg.get("chat"), "callback_query.message.chat").get("id"), "chat.id")
        return InboundMessage.build(
            channel=Channel.TELEGRAM, external_message_id=external_id, conversation_key=str(chat_id),
            customer=_customer(user), text=data,
            # A button press carries no timestamp (message.date is when *we* sent the keyboard).
            sent_at=datetime.now(UTC), raw=update,
        )

    def ack(self, messages: list[InboundMessage]) -> WebhookResponse:
        """Telegram only needs a 2xx; ``{}`` is what aiogram's own handler answers."""
        return WebhookResponse(200, b"{}", "application/json")

    # ---- outbound --------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        """Send as one or more ``sendMessage`` calls; never raises for Telegram-side failures."""
        try:
            chat_id = int(message.conversation_key)
        except ValueError:
            return DeliveryResult(ok=False, permanent=True,
                                  error=f"not a Telegram chat id: {message.conversation_key!r}")
        text, markup = _render(message)
        # Whitespace-only chunks are only possible for absurd input; Telegram rejects empty texts.
        chunks = [c for c in split_text(text) if c.strip()]
        if not chunks:
            return DeliveryResult(ok=False, permanent=True, error="message text is blank")
        bot, _ = self._get_bot()
        sent: list[str] = []
        waited = 0.0
        for index, chunk in enumerate(chunks):
            while True:
                try:
                    result = await bot.send_message(
                        chat_id=chat_id, text=chunk,
                        reply_markup=markup if index == len(chunks) - 1 else None,  # buttons under the end
                    )
                except TelegramRetryAfter as exc:
                    if waited + exc.retry_after <= self._max_retry_wait:
                        waited += exc.retry_after
                        await asyncio.sleep(exc.retry_after)
                        continue  # same chunk again: order within the reply must hold
                    return _failed(sent, index, len(chunks), exc, retry_after=float(exc.retry_after))
                except (TelegramAPIError, AiogramError) as exc:
                    return _classify(sent, index, len(chunks), exc)
                sent.append(f"{chat_id}:{result.message_id}")
                break
        return DeliveryResult(ok=True, external_ids=tuple(sent))

    # ---- long polling and webhook management -----------------------------------------------------

    # `timeout` is Telegram's server-side long-poll duration, not a local deadline (hence the noqa).
    async def get_updates(self, offset: int | None, timeout: int = 25) -> list[bytes]:
        """Long-poll ``getUpdates``; each update comes back as the JSON bytes ``parse`` accepts.

        The raw HTTP answer is kept (not aiogram's models) so field names such as ``from`` and unknown
        new fields survive exactly as a webhook would deliver them. Errors raise aiogram's exceptions
        (``TelegramRetryAfter``, ``TelegramConflictError`` while a webhook is set, ...).
        """
        bot, session = self._get_bot()
        method = GetUpdates(offset=offset, timeout=timeout, allowed_updates=list(ALLOWED_UPDATES))
        url = session.api.api_url(token=bot.token, method=method.__api_method__)
        http = await session.create_session()
        try:
            async with http.post(url, data=session.build_form_data(bot, method),
                                 timeout=aiohttp.ClientTimeout(total=timeout + 10)) as resp:
                status, content = resp.status, await resp.text()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise TelegramNetworkError(method=method, message=f"{type(exc).__name__}: {exc}") from exc
        try:
            envelope = json.loads(content)
        except ValueError:
            envelope = None
        if (200 <= status < 300 and isinstance(envelope, dict) and envelope.get("ok") is True
                and isinstance(envelope.get("result"), list)):
            return [json.dumps(u, ensure_ascii=False, separators=(",", ":")).encode()
                    for u in envelope["result"]]
        session.check_response(bot, method, status, content)  # raises the same errors aiogram would
        raise TelegramAPIError(method=method, message=f"unexpected getUpdates answer (HTTP {status})")

    async def set_webhook(self, url: str, secret: str | None = None) -> bool:
        """Point Telegram at ``url``; refuses to register a webhook without a secret token."""
        secret = secret or self._webhook_secret
        if secret is None or not _SECRET_RE.fullmatch(secret):
            raise ValueError("a valid webhook secret is required (verify() rejects unsigned calls)")
        bot, _ = self._get_bot()
        return await bot.set_webhook(url=url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES))

    async def delete_webhook(self, drop_pending_updates: bool = False) -> bool:
        bot, _ = self._get_bot()
        return await bot.delete_webhook(drop_pending_updates=drop_pending_updates)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._bot = self._session = None


def _customer(user: dict[str, Any]) -> CustomerRef:
    user_id = _int(user.get("id"), "from.id")  # may exceed 32 bits; Python ints don't care
    names = [_opt(user, k, str, "from") for k in ("first_name", "last_name")]
    display = " ".join(n for n in names if n) or _opt(user, "username", str, "from")
    language = _opt(user, "language_code", str, "from")
    return CustomerRef(
        channel=Channel.TELEGRAM, external_id=str(user_id), display_name=display[:256] if display else None,
        language=language if language and len(language) <= 16 else None,
    )


def _file(msg: dict[str, Any], key: str, kind: Any, name_key: str | None = None) -> Attachment:
    obj = _obj(msg[key], f"message.{key}")
    file_id = obj.get("file_id")
    if not isinstance(file_id, str) or not file_id:
        raise PayloadError(f"Telegram update: message.{key}.file_id must be a string")
    return Attachment(
        kind=kind, ref=file_id, name=_opt(obj, name_key, str, key) if name_key else None,
        mime_type=_opt(obj, "mime_type", str, key), size=_opt(obj, "file_size", int, key),
    )


def _attachments(msg: dict[str, Any]) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    if "photo" in msg:
        sizes = msg["photo"]
        if not isinstance(sizes, list) or not sizes:
            raise PayloadError("Telegram update: message.photo must be a non-empty array")
        found.append(_file({"photo": sizes[-1]}, "photo", "image"))  # Telegram lists largest last
    # `animation` is skipped on purpose: Telegram duplicates it into `document` for old clients.
    for key, kind, name_key in (("document", "file", "file_name"), ("voice", "audio", None),
                                ("audio", "audio", "file_name"), ("video", "video", "file_name"),
                                ("video_note", "video", None), ("sticker", "sticker", None)):
        if key in msg:
            found.append(_file(msg, key, kind, name_key))
    if "location" in msg:
        loc = _obj(msg["location"], "message.location")
        lat, lon = loc.get("latitude"), loc.get("longitude")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon)):
            raise PayloadError("Telegram update: message.location needs numeric latitude/longitude")
        found.append(Attachment(kind="location", ref=f"{lat},{lon}"))
    if "contact" in msg:
        contact = _obj(msg["contact"], "message.contact")
        phone = contact.get("phone_number")
        if not isinstance(phone, str) or not phone:
            raise PayloadError("Telegram update: message.contact.phone_number must be a string")
        found.append(Attachment(kind="other", ref=phone, name=_opt(contact, "first_name", str, "contact"),
                                mime_type="text/vcard" if contact.get("vcard") else None))
    return tuple(found)


def _render(message: OutboundMessage) -> tuple[str, InlineKeyboardMarkup | None]:
    replies = message.quick_replies
    if not replies:
        return message.text, None
    if all(len(r.payload.encode()) <= MAX_CALLBACK_DATA_BYTES for r in replies):
        rows = [[InlineKeyboardButton(text=r.title, callback_data=r.payload)] for r in replies]
        return message.text, InlineKeyboardMarkup(inline_keyboard=rows)
    # callback_data cannot carry this payload: fall back to the numbered options every channel has.
    return text_parts.with_numbered_options(message), None


def _failed(
    sent: list[str], index: int, total: int, exc: BaseException, *, retry_after: float | None = None,
    permanent: bool = False,
) -> DeliveryResult:
    # external_ids lists the chunks that did go out, so an operator (or a smarter retry) can see them.
    return DeliveryResult(ok=False, external_ids=tuple(sent), retry_after=retry_after, permanent=permanent,
                          error=f"chunk {index + 1}/{total}: {type(exc).__name__}: {exc}")


def _classify(sent: list[str], index: int, total: int, exc: BaseException) -> DeliveryResult:
    if isinstance(exc, TelegramEntityTooLarge):  # subclass of TelegramNetworkError, yet permanent
        return _failed(sent, index, total, exc, permanent=True)
    if isinstance(exc, TelegramNetworkError | TelegramServerError) or not isinstance(exc, TelegramAPIError):
        return _failed(sent, index, total, exc, retry_after=_TRANSIENT_RETRY)  # incl. undecodable answers
    if isinstance(exc, TelegramUnauthorizedError | TelegramNotFound):
        return _failed(sent, index, total, exc, retry_after=_CONFIG_RETRY)  # bad token: fixable config
    if isinstance(exc, TelegramMigrateToChat):
        return _failed(sent, index, total, exc, permanent=True)  # group moved: conversation key is stale
    # TelegramForbiddenError (blocked/kicked), TelegramBadRequest (chat not found...) and the rest:
    # retrying the same request cannot succeed.
    return _failed(sent, index, total, exc, permanent=True)
