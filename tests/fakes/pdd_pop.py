"""A local fake of Pinduoduo's message service (WebSocket) and its ``/api/router`` gateway.

Real HTTP/WebSocket on loopback speaking the wire format of channels spec §5.3:

* ``GET /message/{client_id}/{timestamp_ms}/{sign}`` upgrades only when the client id is known, the
  timestamp is within 10 min and ``sign`` is base64 of MD5(client_id + timestamp + secret) — of the
  lowercase hex digest (``digest="hex"``, what the community ports send) or the raw one
  (``digest="raw"``); otherwise it answers HTTP 401 with a JSON body and never upgrades;
* frames: the server sends ``{"id", "commandType": "Common", "time", "sendTime", "message": {"type",
  "mallID", "content"}}`` and answers each ``HeartBeat`` with one; the client's ``Ack`` (``id``,
  ``sendTime``, ``type``, ``mallID``) settles a message; every message not acked is sent again on the
  next connection (redelivery), and ``drop_connections`` closes the sockets like a network blip;
* ``POST /api/router`` takes a JSON object of string params, checks ``client_id``, ``timestamp``
  (seconds, ±10 min), ``access_token`` and ``sign`` (upper MD5 of secret + sorted key+value + secret),
  and records calls of the configured send ``type``; errors are ``{"error_response": {...}}``.

The signing here is written out on its own, independently of ``connectors.marketplace_sign``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .loopback import serve_app


def ws_signature(client_id: str, timestamp: str, secret: str, digest: str) -> str:
    md5 = hashlib.md5(f"{client_id}{timestamp}{secret}".encode())
    return base64.b64encode(md5.hexdigest().encode() if digest == "hex" else md5.digest()).decode()


def router_signature(params: dict[str, str], secret: str) -> str:
    concat = "".join(k + v for k, v in sorted(params.items()) if k != "sign")
    return hashlib.md5((secret + concat + secret).encode()).hexdigest().upper()


@dataclass
class Delivery:
    frame: dict[str, Any]
    deliveries: int = 0
    acked: bool = False


@dataclass
class FakePdd:
    """In-process message service + API gateway; see the module docstring."""

    client_id: str
    client_secret: str
    access_token: str
    send_type: str | None = None
    digest: str = "hex"
    ignore_acks: bool = False  # drop acks on the floor (as if the client died before sending them)
    connections: list[str] = field(default_factory=list)  # paths of accepted connections
    rejected: list[str] = field(default_factory=list)  # paths refused at the handshake
    heartbeats: int = 0
    acks: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, str]] = field(default_factory=list)
    api_errors: list[dict[str, Any]] = field(default_factory=list)
    on_ack: Callable[[dict[str, Any]], Awaitable[None]] | None = None  # runs before an ack is applied

    def __post_init__(self) -> None:
        self.messages: dict[int, Delivery] = {}
        self._ids = itertools.count(9_007_199_254_740_993)  # beyond 2**53: ids must survive exactly
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self.http_url = ""
        self.ws_url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/message/{client_id}/{timestamp}/{sign:.+}", self._socket)  # base64 may hold "/"
        app.router.add_post("/api/router", self._router)
        self._runner, self.http_url = await serve_app(app)
        self.ws_url = "ws://" + self.http_url.removeprefix("http://")

    async def stop(self) -> None:
        await self.drop_connections()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- programming ------------------------------------------------------------------------------

    async def publish(self, msg_type: str, mall_id: int, content: dict[str, Any] | str) -> int:
        """Create a message and push it to the open connection (if any; else it waits for one)."""
        msg_id = next(self._ids)
        now = int(time.time() * 1000)
        body = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        frame = {"id": msg_id, "commandType": "Common", "time": now, "sendTime": now,
                 "message": {"type": msg_type, "mallID": mall_id, "content": body}}
        self.messages[msg_id] = Delivery(frame)
        for ws in list(self._sockets)[-1:]:
            await self._deliver(ws, self.messages[msg_id])
        return msg_id

    async def drop_connections(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        self._sockets.clear()

    @property
    def open_connections(self) -> int:
        return len(self._sockets)

    # ---- WebSocket --------------------------------------------------------------------------------

    async def _deliver(self, ws: web.WebSocketResponse, delivery: Delivery) -> None:
        delivery.deliveries += 1
        await ws.send_str(json.dumps(delivery.frame, ensure_ascii=False))

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        client_id, timestamp, sign = (request.match_info[k] for k in ("client_id", "timestamp", "sign"))
        fresh = timestamp.isdigit() and abs(time.time() * 1000 - int(timestamp)) <= 600_000
        expected = ws_signature(client_id, timestamp, self.client_secret, self.digest)
        if client_id != self.client_id or not fresh or not hmac.compare_digest(expected.encode(), sign.encode()):
            self.rejected.append(request.path)
            return web.json_response({"error_code": 40001, "error_msg": "签名校验失败 sign check failed"}, status=401)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections.append(request.path)
        self._sockets.append(ws)
        for delivery in list(self.messages.values()):
            if not delivery.acked:
                await self._deliver(ws, delivery)  # redelivery of everything not acked
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            if frame.get("commandType") == "HeartBeat":
                self.heartbeats += 1
                await ws.send_str(json.dumps({"commandType": "HeartBeat", "time": int(time.time() * 1000)}))
            elif frame.get("commandType") == "Ack" and not self.ignore_acks:
                await self._ack(frame)
        if ws in self._sockets:
            self._sockets.remove(ws)
        return ws

    async def _ack(self, frame: dict[str, Any]) -> None:
        delivery = self.messages.get(frame.get("id"))  # type: ignore[arg-type]
        if delivery is None:
            return
        original = delivery.frame
        if (frame.get("sendTime"), frame.get("type"), frame.get("mallID")) != (
                original["sendTime"], original["message"]["type"], original["message"]["mallID"]):
            return  # an ack that does not echo the message is not an ack
        if self.on_ack is not None:
            await self.on_ack(frame)
        delivery.acked = True
        self.acks.append(frame)

    # ---- API gateway ------------------------------------------------------------------------------

    def _error(self, code: int, msg: str, sub_code: str = "") -> web.Response:
        body = {"error_code": code, "error_msg": msg, "sub_code": sub_code, "sub_msg": msg, "request_id": "fake"}
        self.api_errors.append(body)
        return web.json_response({"error_response": body})

    async def _router(self, request: web.Request) -> web.Response:
        try:
            params = await request.json()
        except ValueError:
            return self._error(10000, "参数错误: body is not JSON")
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            return self._error(10000, "参数错误: params must be strings")
        if params.get("client_id") != self.client_id:
            return self._error(10001, "client_id不存在")
        ts = params.get("timestamp", "")
        if not ts.isdigit() or abs(time.time() - int(ts)) > 600:
            return self._error(10002, "timestamp已过期")
        if not hmac.compare_digest(router_signature(params, self.client_secret), params.get("sign", "").upper()):
            return self._error(10003, "签名校验失败")
        if params.get("access_token") != self.access_token:
            return self._error(10019, "access_token已过期", "access_token_invalid")
        if self.send_type is None or params.get("type") != self.send_type:
            return self._error(10004, "接口不存在")
        if not params.get("content") or not params.get("buyer_id"):
            return self._error(10000, "参数错误: content/buyer_id")
        self.sent.append(params)
        key = params["type"].replace(".", "_") + "_response"
        return web.json_response({key: {"success": True, "request_id": "fake"}})

