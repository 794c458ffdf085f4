"""A local fake of the Telegram Bot API, speaking its documented wire format over real HTTP.

We fake the *transport*, never our own classes: the connector under test talks to this server through
real aiogram and real aiohttp, exactly as it would talk to ``api.telegram.org`` (aiogram builds
``{base}/bot{token}/{method}`` from ``TelegramAPIServer.from_base(base)``).

Usage::

    fake = FakeTelegram(token="123:abc")
    base_url = await fake.start()            # http://127.0.0.1:<port>
    connector = TelegramConnector("123:abc", api_base=base_url, webhook_secret="s")
    ...
    fake.fail_next("sendMessage", 429, retry_after=1)
    assert fake.sent_messages(42)[0]["text"] == "hi"
    await fake.stop()

Only the methods the connector uses are implemented: ``getMe``, ``sendMessage``, ``getUpdates``,
``setWebhook``, ``deleteWebhook``. Unknown methods answer 404 like the real server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .loopback import serve_app

# Form-encoded requests (aiogram always sends multipart/form-data) carry every value as a string; the
# real server decodes these fields as JSON and these as integers/booleans, so the fake does too.
_JSON_FIELDS = frozenset(
    {"reply_markup", "allowed_updates", "entities", "caption_entities", "link_preview_options",
     "reply_parameters"}
)
_INT_FIELDS = frozenset({"offset", "limit", "timeout", "message_thread_id", "max_connections"})
_BOOL_FIELDS = frozenset({"drop_pending_updates", "disable_notification", "protect_content"})
_INT_RE = re.compile(r"-?\d+")

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units: astral characters count twice)."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


@dataclass(frozen=True)
class RecordedRequest:
    """One API call as the fake received it (``params`` already decoded to Bot API types)."""

    method: str
    params: dict[str, Any]
    token: str
    at: float  # time.monotonic() on arrival, for measuring retry back-off


@dataclass
class _Failure:
    error_code: int
    description: str
    retry_after: int | None
    after: int  # successful calls still to let through before this failure fires


class _ApiError(Exception):
    def __init__(self, error_code: int, description: str) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description


@dataclass
class FakeTelegram:
    """In-process Bot API server; see the module docstring."""

    token: str | None = None  # when set, any other token gets 401 like a revoked token would
    bot_user: dict[str, Any] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    webhook: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.bot_user:
            bot_id = int(self.token.split(":", 1)[0]) if self.token else 1
            self.bot_user = {"id": bot_id, "is_bot": True, "first_name": "Huiliu Test Bot",
                             "username": "huiliu_test_bot"}
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._updates: list[dict[str, Any]] = []
        self._update_arrived = asyncio.Event()
        self._sent: list[dict[str, Any]] = []
        self._next_message_id = 1
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> str:
        """Listen on 127.0.0.1 on a free port; returns the base URL to give the connector."""
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner, self.base_url = await serve_app(app)
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- programming the fake --------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        error_code: int,
        description: str | None = None,
        retry_after: int | None = None,
        *,
        after: int = 0,
    ) -> None:
        """Make the next call of ``method`` fail, or the one after ``after`` successes.

        Failures queue up per method: call twice to fail twice.
        """
        if description is None:
            if error_code == 429:
                description = f"Too Many Requests: retry after {retry_after or 1}"
            else:
                description = _DEFAULT_DESCRIPTIONS.get(error_code, "Error")
        self._failures[method.lower()].append(_Failure(error_code, description, retry_after, after))

    def queue_update(self, update: dict[str, Any]) -> None:
        """Add an update for ``getUpdates`` to serve (as Telegram stores them until confirmed)."""
        self._updates.append(update)
        self._update_arrived.set()

    # ---- inspecting ------------------------------------------------------------------------------

    def calls(self, method: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method.lower() == method.lower()]

    def sent_messages(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """The Message objects the fake returned for successful ``sendMessage`` calls."""
        return [m for m in self._sent if chat_id is None or m["chat"]["id"] == chat_id]

    # ---- HTTP ------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        try:
            params = await self._read_params(request)
        except _ApiError as exc:
            return self._error(exc.error_code, exc.description)
        self.requests.append(RecordedRequest(method, params, token, time.monotonic()))
        if self.token is not None and token != self.token:
            return self._error(401, "Unauthorized")
        queued = self._failures.get(method.lower())
        if queued and queued[0].after > 0:
            queued[0].after -= 1
        elif queued:
            failure = queued.popleft()
            return self._error(failure.error_code, failure.description, failure.retry_after)
        handler = {
            "getme": self._get_me,
            "sendmessage": self._send_message,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
        }.get(method.lower())  # the real Bot API matches method names case-insensitively
        if handler is None:
            return self._error(404, "Not Found")
        try:
            result = await handler(params)
        except _ApiError as exc:
            return self._error(exc.error_code, exc.description)
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    async def _read_params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise _ApiError(400, "Bad Request: request body must be an object")
            params.update(body)
            return params
        if request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                params[key] = value.filename if isinstance(value, web.FileField) else value
        for key, value in list(params.items()):
            if not isinstance(value, str):
                continue
            if key in _JSON_FIELDS:
                try:
                    params[key] = json.loads(value)
                except ValueError:
                    raise _ApiError(400, f"Bad Request: can't parse {key} JSON object") from None
            elif (key in _INT_FIELDS or key == "chat_id") and _INT_RE.fullmatch(value):
                params[key] = int(value)
            elif key in _BOOL_FIELDS:
                params[key] = value.lower() == "true"
        return params

    @staticmethod
    def _error(error_code: int, description: str, retry_after: int | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": error_code, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return web.json_response(body, status=error_code)

    # ---- methods ---------------------------------------------------------------------------------

    async def _get_me(self, params: dict[str, Any]) -> Any:
        return self.bot_user

    async def _send_message(self, params: dict[str, Any]) -> Any:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise _ApiError(400, "Bad Request: chat not found")
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        if markup is not None:
            rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
            if not isinstance(rows, list):
                raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
            for button in (b for row in rows for b in row):
                if len(str(button.get("callback_data", "")).encode()) > 64:
                    raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        message: dict[str, Any] = {
            "message_id": self._next_message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": self.bot_user,
            "text": text,
        }
        if markup is not None:
            message["reply_markup"] = markup
        self._next_message_id += 1
        self._sent.append(message)
        return message

    async def _get_updates(self, params: dict[str, Any]) -> Any:
        if self.webhook is not None:
            raise _ApiError(
                409, "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first"
            )
        offset = params.get("offset")
        if isinstance(offset, int):
            # Telegram semantics: an offset confirms (and forgets) every update below it.
            self._updates = [u for u in self._updates if u.get("update_id", 0) >= offset]
        timeout = params.get("timeout")
        if not self._updates and isinstance(timeout, int) and timeout > 0:
            self._update_arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._update_arrived.wait(), timeout)
        limit = params.get("limit")
        limit = limit if isinstance(limit, int) and 1 <= limit <= 100 else 100
        return self._updates[:limit]

    async def _set_webhook(self, params: dict[str, Any]) -> Any:
        url = params.get("url")
        if not isinstance(url, str) or not url.startswith("https://"):
            raise _ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = params
        return True

    async def _delete_webhook(self, params: dict[str, Any]) -> Any:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True
