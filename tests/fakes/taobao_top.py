"""A local fake of the Taobao Open Platform (TOP) REST gateway with the TMC message queue.

Real HTTP on loopback speaking the documented wire format (channels spec §5.1): form or query params,
``timestamp`` in GMT+8 within ±10 min, ``sign`` checked with TOP's algorithm (implemented here on its
own, independently of ``connectors.marketplace_sign``) and refused like TOP refuses it
(``{"error_response": {"code": 25, "msg": "Invalid signature"}}``); answers wrapped in
``<method minus 'taobao.', dots as underscores>_response``.

TMC semantics: ``taobao.tmc.messages.consume`` hands out visible messages and hides them for
``visibility_timeout_s``; ``taobao.tmc.messages.confirm`` removes them; a consumed but unconfirmed
message becomes visible again (redelivery). The configured send method records what it was asked to
send. Usage::

    fake = FakeTop(app_key="12345678", app_secret="s3cret", session="sess", send_method="x.chat.send")
    gateway = await fake.start()                 # http://127.0.0.1:<port>/router/rest
    msg_id = fake.publish("chat_topic", {"buyer_open_uid": "AAE1", "content": "hi"})
    ...
    assert fake.sent[0]["content"] == "..."
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from .loopback import serve_app

CST = timezone(timedelta(hours=8))
CONSUME = "taobao.tmc.messages.consume"
CONFIRM = "taobao.tmc.messages.confirm"


def top_signature(params: Mapping[str, str], secret: str, sign_method: str) -> str:
    """TOP's sign: sorted ``key+value`` of the non-empty params except ``sign``; md5 wraps the secret
    around it, hmac/hmac-sha256 key with it; uppercase hex."""
    concat = "".join(k + v for k, v in sorted(params.items()) if k != "sign" and v != "")
    if sign_method == "md5":
        return hashlib.md5((secret + concat + secret).encode()).hexdigest().upper()
    digest = hashlib.md5 if sign_method == "hmac" else hashlib.sha256
    return hmac.new(secret.encode(), concat.encode(), digest).hexdigest().upper()


@dataclass
class TmcMessage:
    id: int
    topic: str
    content: str
    user_id: int
    user_nick: str
    pub_time: str
    visible_at: float = 0.0
    deliveries: int = 0
    confirmed: bool = False

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "topic": self.topic, "content": self.content, "user_id": self.user_id,
                "user_nick": self.user_nick, "pub_time": self.pub_time, "pub_app_key": "12497914"}


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, str]
    error: int | None  # the TOP error code answered, None for success


class _TopError(Exception):
    def __init__(self, code: int, msg: str, sub_code: str | None = None, sub_msg: str | None = None) -> None:
        super().__init__(msg)
        self.body: dict[str, Any] = {"code": code, "msg": msg}
        if sub_code:
            self.body["sub_code"] = sub_code
        if sub_msg:
            self.body["sub_msg"] = sub_msg


@dataclass
class FakeTop:
    """In-process TOP gateway; see the module docstring."""

    app_key: str
    app_secret: str
    session: str
    send_method: str | None = None
    groups: frozenset[str] = frozenset()  # user groups besides the default one
    visibility_timeout_s: float = 2.0
    calls: list[Call] = field(default_factory=list)
    sent: list[dict[str, str]] = field(default_factory=list)
    confirmed: list[int] = field(default_factory=list)
    on_confirm: Callable[[list[int]], Awaitable[None]] | None = None  # runs before a confirm is applied

    def __post_init__(self) -> None:
        self.queue: dict[int, TmcMessage] = {}
        self._ids = itertools.count(2_160_000_000_000_000_001)  # beyond 2**53, like real TMC ids
        self._failures: dict[str, list[_TopError]] = {}
        self._hold: asyncio.Event | None = None
        self._held = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/router/rest", self._handle)
        self._runner, base = await serve_app(app)
        self.url = f"{base}/router/rest"
        return self.url

    async def stop(self) -> None:
        if self._hold is not None:
            self._hold.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- programming ------------------------------------------------------------------------------

    def publish(self, topic: str, content: Mapping[str, Any] | str, *, user_id: int = 2200000001,
                user_nick: str = "huiliu旗舰店") -> int:
        """Queue a TMC message (``content`` given as a dict is JSON-encoded, as TMC delivers it)."""
        msg_id = next(self._ids)
        body = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        pub_time = datetime.now(CST).strftime("%Y-%m-%d %H:%M:%S")
        self.queue[msg_id] = TmcMessage(msg_id, topic, body, user_id, user_nick, pub_time)
        return msg_id

    def fail_next(self, method: str, code: int, msg: str, sub_code: str | None = None,
                  sub_msg: str | None = None) -> None:
        self._failures.setdefault(method, []).append(_TopError(code, msg, sub_code, sub_msg))

    def hold_confirms(self) -> None:
        """Park every confirm call until ``drop_held_confirms`` (simulates dying before it lands)."""
        self._hold = asyncio.Event()

    def drop_held_confirms(self) -> None:
        """Release parked confirms without applying them: TMC never heard of them."""
        if self._hold is not None:
            self._hold.set()
            self._hold = None

    @property
    def held_confirms(self) -> int:
        return self._held

    def deliveries(self, msg_id: int) -> int:
        return self.queue[msg_id].deliveries

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    # ---- HTTP -------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        params: dict[str, str] = dict(request.query)
        if request.can_read_body:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        method = params.get("method", "")
        try:
            self._check(params)
            queued = self._failures.get(method)
            if queued:
                raise queued.pop(0)
            answer = await self._dispatch(method, params)
        except _TopError as exc:
            self.calls.append(Call(method, params, int(exc.body["code"])))
            return web.json_response({"error_response": {**exc.body, "request_id": "fake"}})
        self.calls.append(Call(method, params, None))
        key = method.removeprefix("taobao.").replace(".", "_") + "_response"
        return web.json_response({key: {**answer, "request_id": "fake"}})

    def _check(self, params: dict[str, str]) -> None:
        for name, code, text in (("method", 21, "Missing Method"), ("app_key", 28, "Missing App Key"),
                                 ("sign", 24, "Missing Signature"), ("timestamp", 30, "Missing Timestamp"),
                                 ("v", 32, "Missing Version")):
            if not params.get(name):
                raise _TopError(code, text)
        if params["app_key"] != self.app_key:
            raise _TopError(29, "Invalid app Key")
        try:
            sent = datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)
        except ValueError:
            raise _TopError(31, "Invalid Timestamp") from None
        if abs((datetime.now(CST) - sent).total_seconds()) > 600:
            raise _TopError(31, "Invalid Timestamp", sub_msg="时间戳超出允许范围")
        sign_method = params.get("sign_method", "md5")
        if sign_method not in ("md5", "hmac", "hmac-sha256"):
            raise _TopError(41, "Invalid Arguments", "isv.invalid-parameter", "sign_method")
        if not hmac.compare_digest(top_signature(params, self.app_secret, sign_method), params["sign"].upper()):
            raise _TopError(25, "Invalid signature")
        if not params.get("session"):
            raise _TopError(26, "Missing session")
        if params["session"] != self.session:
            raise _TopError(27, "Invalid session", "invalid-sessionkey", "SessionKey非法")

    async def _dispatch(self, method: str, params: dict[str, str]) -> dict[str, Any]:
        if method == CONSUME:
            return self._consume(params)
        if method == CONFIRM:
            return await self._confirm(params)
        if self.send_method is not None and method == self.send_method:
            if not params.get("content") or not (params.get("buyer_open_uid") or params.get("buyer_nick")):
                raise _TopError(40, "Missing Required Arguments", "isv.missing-parameter", "content/buyer")
            self.sent.append(params)
            return {"result": {"success": True, "msg_id": f"sent-{len(self.sent)}"}}
        raise _TopError(22, "Invalid method")

    def _group(self, params: dict[str, str]) -> None:
        group = params.get("group_name")
        if group and group not in self.groups:
            raise _TopError(41, "Invalid Arguments", "isv.invalid-parameter", f"group {group} does not exist")

    def _consume(self, params: dict[str, str]) -> dict[str, Any]:
        self._group(params)
        quantity = int(params.get("quantity") or 100)
        if not 10 <= quantity <= 200:
            raise _TopError(41, "Invalid Arguments", "isv.invalid-parameter", "quantity must be 10-200")
        now = time.monotonic()
        ready = [m for m in self.queue.values() if not m.confirmed and m.visible_at <= now][:quantity]
        for m in ready:
            m.visible_at = now + self.visibility_timeout_s
            m.deliveries += 1
        return {"messages": {"tmc_message": [m.wire() for m in ready]}} if ready else {}

    async def _confirm(self, params: dict[str, str]) -> dict[str, Any]:
        self._group(params)
        raw = params.get("s_message_ids", "")
        if not raw:
            raise _TopError(40, "Missing Required Arguments", "isv.missing-parameter", "s_message_ids")
        ids = [int(x) for x in raw.split(",")]
        if len(ids) > 200:
            raise _TopError(41, "Invalid Arguments", "isv.invalid-parameter", "at most 200 ids")
        hold = self._hold
        if hold is not None:
            self._held += 1
            await hold.wait()
            self._held -= 1
            raise _TopError(15, "Remote service error", "isp.top-remote-connection-timeout")
        if self.on_confirm is not None:
            await self.on_confirm(ids)
        for msg_id in ids:
            if msg_id in self.queue and not self.queue[msg_id].confirmed:
                self.queue[msg_id].confirmed = True
                self.confirmed.append(msg_id)
        return {"is_success": True}
