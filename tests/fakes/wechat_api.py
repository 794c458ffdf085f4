"""A local fake of ``api.weixin.qq.com`` (access_token + customer-service send), over real HTTP.

We fake the *transport*, never our own classes: the connector talks to this server with real aiohttp
exactly as it would to WeChat (channels spec §1.5). WeChat answers errors as HTTP 200 with
``{"errcode": N, "errmsg": "..."}``, and so does the fake.

Usage::

    fake = FakeWeChatApi(app_id="wx...", app_secret="...")
    base_url = await fake.start()                 # http://127.0.0.1:<port>
    fake.fail_next_send(45015)                    # the next custom/send answers 45015
    fake.revoke_tokens()                          # every issued token now gets 40001
    assert fake.sent("openid")[0]["text"]["content"] == "..."
    await fake.stop()

Implemented: ``GET /cgi-bin/token`` (issues numbered tokens, counts calls; old tokens stay valid like
WeChat's 5-minute overlap unless revoked/expired) and ``POST /cgi-bin/message/custom/send`` (needs a
live token, records text messages, can be told to fail). ``max_content_bytes`` models the kf text
limit we *assume* (WeChat documents none); set it to None to accept anything.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .loopback import serve_app

_ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40008: "invalid message type",
    40013: "invalid appid",
    40125: "invalid appsecret",
    41001: "access_token missing",
    42001: "access_token expired",
    44002: "empty post data",
    45002: "content size out of limit",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    47001: "data format error",
}


@dataclass(frozen=True)
class SendCall:
    """One custom/send request as received (also the failed ones)."""

    access_token: str
    body: dict[str, Any] | None
    errcode: int


@dataclass
class FakeWeChatApi:
    """In-process WeChat API server; see the module docstring."""

    app_id: str
    app_secret: str
    expires_in: int = 7200
    max_content_bytes: int | None = 2048
    token_calls: int = 0
    send_calls: list[SendCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._tokens: dict[str, str] = {}  # token -> "live" | "expired" | "revoked"
        self._send_failures: deque[list[int]] = deque()  # [errcode, http status, successes to let through]
        self._sent: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self._token)
        app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)
        self._runner, self.base_url = await serve_app(app)
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- programming the fake --------------------------------------------------------------------

    def fail_next_send(self, errcode: int, times: int = 1, *, http_status: int = 200, after: int = 0) -> None:
        """The next ``times`` valid custom/send calls answer ``errcode`` (after letting ``after`` succeed);
        ``http_status`` other than 200 answers that status with a plain-text body instead (a 502)."""
        for i in range(times):
            self._send_failures.append([errcode, http_status, after if i == 0 else 0])

    def expire_tokens(self) -> None:
        """Every token issued so far answers 42001 (access_token expired)."""
        self._tokens = dict.fromkeys(self._tokens, "expired")

    def revoke_tokens(self) -> None:
        """Every token issued so far answers 40001 (e.g. someone else called /cgi-bin/token)."""
        self._tokens = dict.fromkeys(self._tokens, "revoked")

    # ---- inspecting ------------------------------------------------------------------------------

    @property
    def issued(self) -> list[str]:
        return list(self._tokens)

    def sent(self, openid: str | None = None) -> list[dict[str, Any]]:
        """Bodies of the custom/send calls WeChat accepted (errcode 0)."""
        return [m for m in self._sent if openid is None or m["touser"] == openid]

    # ---- HTTP ------------------------------------------------------------------------------------

    @staticmethod
    def _error(errcode: int) -> web.Response:
        return web.json_response({"errcode": errcode, "errmsg": _ERRMSG.get(errcode, "error")})

    async def _token(self, request: web.Request) -> web.Response:
        self.token_calls += 1
        q = request.query
        if q.get("grant_type") != "client_credential":
            return web.json_response({"errcode": 40002, "errmsg": "invalid grant_type"})
        if q.get("appid") != self.app_id:
            return self._error(40013)
        if q.get("secret") != self.app_secret:
            return self._error(40125)
        token = f"ACCESS_TOKEN_{self.token_calls}_{self.app_id}"
        self._tokens[token] = "live"
        return web.json_response({"access_token": token, "expires_in": self.expires_in})

    async def _custom_send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        raw = await request.read()
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        errcode = self._check(token, body)
        self.send_calls.append(SendCall(token, body if isinstance(body, dict) else None, errcode))
        if errcode == 0 and self._send_failures and self._send_failures[0][2] > 0:
            self._send_failures[0][2] -= 1
        elif errcode == 0 and self._send_failures:
            errcode, status, _ = self._send_failures.popleft()
            if status != 200:
                self.send_calls[-1] = SendCall(token, body, -status)
                return web.Response(status=status, text="upstream unavailable")
            self.send_calls[-1] = SendCall(token, body, errcode)
        if errcode:
            return self._error(errcode)
        assert isinstance(body, dict)
        self._sent.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def _check(self, token: str, body: Any) -> int:
        if not token:
            return 41001
        state = self._tokens.get(token)
        if state is None or state == "revoked":
            return 40001
        if state == "expired":
            return 42001
        if not isinstance(body, dict):
            return 44002 if body is None else 47001
        if not isinstance(body.get("touser"), str) or not body["touser"]:
            return 40003
        if body.get("msgtype") != "text":
            return 40008
        text = body.get("text")
        content = text.get("content") if isinstance(text, dict) else None
        if not isinstance(content, str) or not content.strip():
            return 44002
        if self.max_content_bytes is not None and len(content.encode()) > self.max_content_bytes:
            return 45002
        return 0
