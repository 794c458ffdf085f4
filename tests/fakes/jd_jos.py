"""A local fake of JD's JOS ``routerjson`` gateway: chat logs to read and the 咚咚 push to reply.

Real HTTP on loopback speaking the documented wire format (channels spec §5.2): form or query params
``method``, ``access_token``, ``app_key``, ``timestamp`` (GMT+8, ±6 min), ``v``,
``360buy_param_json`` and ``sign`` = upper(md5(secret + sorted key+value + secret)) — implemented
here on its own — with JD's refusals (``{"error_response": {"code": "12", "zh_desc": "无效签名"}}``).

``jingdong.im.pop.chatlog.get`` answers from the chat log added with ``say`` (filtered by its
``startTime``/``endTime`` window, ``waiter``/``customer``, paged by ``page``/``pageSize``) as
``{"jingdong_im_pop_chatlog_get_responce": {"code": "0", "ChatLogPage": {"totalRecord", "chatLogList"}}}``;
``jingdong.dongdong.packet.josChatMessage.push`` records ``param1``/``param2`` and adds the reply to
the chat log as a ``waiterSend`` line, as the real history would show it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from .loopback import serve_app

CST = timezone(timedelta(hours=8))
CHATLOG = "jingdong.im.pop.chatlog.get"
PUSH = "jingdong.dongdong.packet.josChatMessage.push"


def jd_signature(params: dict[str, str], secret: str) -> str:
    concat = "".join(k + v for k, v in sorted(params.items()) if k != "sign")
    return hashlib.md5((secret + concat + secret).encode()).hexdigest().upper()


class _JdError(Exception):
    def __init__(self, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.body = {"code": code, "zh_desc": zh, "en_desc": en}


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, str]
    business: dict[str, Any]
    error: str | None


@dataclass
class FakeJos:
    """In-process JOS gateway; see the module docstring."""

    app_key: str
    app_secret: str
    access_token: str
    waiter: str = "huiliu_waiter"
    calls: list[Call] = field(default_factory=list)
    pushes: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/routerjson", self._handle)
        self._runner, base = await serve_app(app)
        self.url = f"{base}/routerjson"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def say(self, customer: str, content: str, *, at_ms: int | None = None, sid: str | None = None) -> dict[str, Any]:
        """A buyer line in the shop's chat history (time defaults to now)."""
        line = {"content": content, "sid": sid or uuid.uuid5(uuid.NAMESPACE_OID, customer).hex,
                "waiterSend": False, "time": at_ms if at_ms is not None else int(time.time() * 1000),
                "skuId": 100012043978, "customer": customer, "waiter": self.waiter, "channel": 11}
        self.log.append(line)
        return line

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def _handle(self, request: web.Request) -> web.Response:
        params: dict[str, str] = dict(request.query)
        if request.can_read_body:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        method = params.get("method", "")
        business: dict[str, Any] = {}
        try:
            self._check(params)
            try:
                business = json.loads(params.get("360buy_param_json") or "{}")
            except ValueError:
                raise _JdError("65", "参数360buy_param_json格式错误", "Invalid 360buy_param_json") from None
            answer = self._dispatch(method, business)
        except _JdError as exc:
            self.calls.append(Call(method, params, business, exc.body["code"]))
            return web.json_response({"error_response": exc.body})
        self.calls.append(Call(method, params, business, None))
        return web.json_response({method.replace(".", "_") + "_responce": answer})

    def _check(self, params: dict[str, str]) -> None:
        if not params.get("sign"):
            raise _JdError("11", "缺少签名参数", "Missing Signature")
        if not params.get("method"):
            raise _JdError("14", "缺少方法名参数", "Missing Method")
        if not params.get("timestamp"):
            raise _JdError("7", "缺少时间戳参数", "Missing Timestamp")
        if params.get("v") != "2.0":
            raise _JdError("4", "缺少版本参数", "Missing Version")
        if params.get("app_key") != self.app_key:
            raise _JdError("19", "无效的app_key", "Invalid app_key")
        try:
            sent = datetime.strptime(params["timestamp"][:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)
        except ValueError:
            raise _JdError("8", "非法的时间戳参数", "Invalid Timestamp") from None
        if abs((datetime.now(CST) - sent).total_seconds()) > 360:
            raise _JdError("8", "非法的时间戳参数", "Invalid Timestamp")
        if not hmac.compare_digest(jd_signature(params, self.app_secret), params["sign"].upper()):
            raise _JdError("12", "无效签名", "Invalid Signature")
        if params.get("access_token") != self.access_token:
            raise _JdError("19", "token已过期或者不存在，请重新授权访问", "Invalid access_token")

    def _dispatch(self, method: str, business: dict[str, Any]) -> dict[str, Any]:
        if method == CHATLOG:
            return self._chatlog(business)
        if method == PUSH:
            param2 = business.get("param2") or {}
            if not param2.get("toPin") or not (param2.get("body") or {}).get("content"):
                raise _JdError("66", "缺少必要参数toPin或body", "Missing required param")
            if (business.get("param1") or {}).get("accessToken") != self.access_token:
                raise _JdError("19", "token已过期或者不存在，请重新授权访问", "Invalid access_token")
            self.pushes.append(business)
            self.log.append({"content": param2["body"]["content"], "sid": uuid.uuid5(uuid.NAMESPACE_OID,
                             param2["toPin"]).hex, "waiterSend": True, "time": int(time.time() * 1000),
                             "customer": param2["toPin"], "waiter": param2.get("fromPin", self.waiter),
                             "channel": 21})
            return {"code": "0", "result": {"success": True}}
        raise _JdError("15", "不存在的方法名", "Invalid Method")

    def _chatlog(self, query: dict[str, Any]) -> dict[str, Any]:
        try:
            start = datetime.strptime(query["startTime"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)
            end = datetime.strptime(query["endTime"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)
            page, size = int(query.get("page") or 1), int(query.get("pageSize") or 20)
        except (KeyError, ValueError, TypeError):
            raise _JdError("66", "参数错误", "Invalid parameter") from None
        lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000) + 999  # second precision
        lines = sorted((line for line in self.log if lo <= line["time"] <= hi
                        and query.get("waiter") in (None, line["waiter"])
                        and query.get("customer") in (None, line["customer"])), key=lambda line: line["time"])
        chunk = lines[(page - 1) * size: page * size]
        return {"code": "0", "ChatLogPage": {"totalRecord": len(lines), "chatLogList": chunk}}
