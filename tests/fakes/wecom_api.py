"""A local fake of qyapi.weixin.qq.com for 微信客服 (kf), speaking its documented wire format over real HTTP.

Implemented (channels spec §2.2): ``GET /cgi-bin/gettoken``, ``POST /cgi-bin/kf/sync_msg`` (opaque cursors
per kf account, ``has_more``, ``limit``, callback-token check, empty pages with ``has_more=1`` on request),
``POST /cgi-bin/kf/send_msg`` (recorded; refused in session states 2-4 with 95018, or with any errcode you
queue), and the callback WeCom sends to our webhook (``notify``: encrypted ``kf_msg_or_event``, signed).

Like WeCom, ``sync_msg`` returns what customers sent, the system events and what servicers typed in the
WeCom client — never what was sent through ``send_msg``. The callback is encrypted with our
``connectors.wechat_crypto`` (itself checked against Tencent's vectors C1-C3), the one shared piece.

Usage::

    fake = FakeWeCom(corp_id="ww1", secret="s", token="t", aes_key=43 * "a")
    base = await fake.start()
    fake.customer_says("wk1", "wm1", "你好")
    await fake.notify(webhook_url, "wk1")          # what WeCom does after a customer message
    fake.sent_to("wm1")                            # texts we sent with send_msg
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from connectors.wechat_crypto import WeChatCrypto, msg_signature

from .loopback import serve_app

EMPTY_PAGE = object()  # marker in an account's log: sync_msg answers an empty page with has_more=1


@dataclass
class FakeWeCom:
    corp_id: str
    secret: str
    token: str
    aes_key: str
    token_ttl_s: int = 7200
    pull_delay_s: float = 0.02  # widens the window in which overlapping pulls would collide
    sent: list[dict[str, Any]] = field(default_factory=list)
    sync_requests: list[dict[str, Any]] = field(default_factory=list)
    sync_answers: list[dict[str, Any]] = field(default_factory=list)  # successful pages, in order
    gettoken_calls: int = 0

    def __post_init__(self) -> None:
        self.crypto = WeChatCrypto(self.token, self.aes_key, self.corp_id)
        self._access: dict[str, float] = {}  # access token -> expiry (time.time)
        self._callback_tokens: set[str] = set()
        self._log: dict[str, list[Any]] = defaultdict(list)
        self._cursors: dict[str, tuple[str, int]] = {}
        self._states: dict[tuple[str, str], int] = {}
        self._failures: dict[str, deque[tuple[int, str]]] = defaultdict(deque)
        self._in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self._seq = 0
        self._clock = 0
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        app.router.add_post("/cgi-bin/kf/sync_msg", self._sync_msg)
        app.router.add_post("/cgi-bin/kf/send_msg", self._send_msg)
        self._runner, self.base_url = await serve_app(app)
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- scripting what happens on WeCom's side ------------------------------------------------

    def _now(self) -> int:
        """send_time for a new item: WeCom's seconds, kept strictly increasing so that items scripted
        within one second keep their order in our transcript (ordered by send time)."""
        self._clock = max(int(time.time()), self._clock + 1)
        return self._clock

    def _next_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:08d}{secrets.token_hex(4)}"

    def add_item(self, open_kfid: str, item: dict[str, Any]) -> None:
        """Append a raw ``msg_list`` item (junk included) to the account's log."""
        self._log[open_kfid].append(item)

    def customer_says(self, open_kfid: str, external_userid: str, text: str, *, msgtype: str = "text",
                      payload: dict[str, Any] | None = None) -> str:
        if self._states.get((open_kfid, external_userid), 0) == 4:
            self._states[(open_kfid, external_userid)] = 0  # writing again opens a new session
        msgid = self._next_id("msg")
        body = payload if payload is not None else {"content": text}
        self.add_item(open_kfid, {"msgid": msgid, "open_kfid": open_kfid, "external_userid": external_userid,
                                  "send_time": self._now(), "origin": 3, "msgtype": msgtype, msgtype: body})
        return msgid

    def add_empty_page(self, open_kfid: str) -> None:
        self._log[open_kfid].append(EMPTY_PAGE)

    def _event(self, open_kfid: str, external_userid: str, event_type: str, **fields: Any) -> str:
        msgid = self._next_id("evt")
        self.add_item(open_kfid, {"msgid": msgid, "send_time": self._now(), "origin": 4, "msgtype": "event",
                                  "event": {"event_type": event_type, "open_kfid": open_kfid,
                                            "external_userid": external_userid, **fields}})
        return msgid

    def servicer_takes_over(self, open_kfid: str, external_userid: str, servicer: str) -> str:
        """A servicer picks the session up in the WeCom client (session_status_change, change_type 1)."""
        self._states[(open_kfid, external_userid)] = 3
        return self._event(open_kfid, external_userid, "session_status_change", change_type=1,
                           new_servicer_userid=servicer, msg_code="code")

    def servicer_says(self, open_kfid: str, external_userid: str, servicer: str, text: str) -> str:
        msgid = self._next_id("srv")
        self.add_item(open_kfid, {"msgid": msgid, "open_kfid": open_kfid, "external_userid": external_userid,
                                  "send_time": self._now(), "origin": 5, "servicer_userid": servicer,
                                  "msgtype": "text", "text": {"content": text}})
        return msgid

    def end_session(self, open_kfid: str, external_userid: str, servicer: str) -> str:
        self._states[(open_kfid, external_userid)] = 4
        return self._event(open_kfid, external_userid, "session_status_change", change_type=3,
                           old_servicer_userid=servicer, msg_code="code")

    def state(self, open_kfid: str, external_userid: str) -> int:
        return self._states.get((open_kfid, external_userid), 0)

    def expire_callback_tokens(self) -> None:
        """Callback tokens last 10 minutes: pretend they all ran out (sync_msg then answers 95007)."""
        self._callback_tokens.clear()

    def fail_next(self, api: str, errcode: int, errmsg: str = "fake failure") -> None:
        """The next call of ``api`` (``send_msg`` / ``sync_msg`` / ``gettoken``) answers this errcode."""
        self._failures[api].append((errcode, errmsg))

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now (the next call gets 42001)."""
        for token in self._access:
            self._access[token] = 0.0

    def sent_to(self, external_userid: str) -> list[str]:
        return [m["text"]["content"] for m in self.sent if m["touser"] == external_userid]

    # ---- the callback WeCom sends ----------------------------------------------------------------

    def issue_callback_token(self) -> str:
        token = self._next_id("ENCApHxn")
        self._callback_tokens.add(token)
        return token

    def callback(self, open_kfid: str) -> tuple[dict[str, str], bytes]:
        """Query and body of a fresh, correctly signed ``kf_msg_or_event`` callback."""
        token = self.issue_callback_token()
        inner = (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><CreateTime>{int(time.time())}</CreateTime>"
                 f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
                 f"<Token><![CDATA[{token}]]></Token><OpenKfId><![CDATA[{open_kfid}]]></OpenKfId></xml>")
        encrypt = self.crypto.encrypt(inner)
        timestamp, nonce = str(int(time.time())), secrets.token_hex(5)
        query = {"msg_signature": msg_signature(self.token, timestamp, nonce, encrypt),
                 "timestamp": timestamp, "nonce": nonce}
        body = (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
                f"<AgentID><![CDATA[]]></AgentID></xml>").encode()
        return query, body

    async def notify(self, webhook_url: str, open_kfid: str) -> tuple[int, str]:
        """POST a callback to our webhook like WeCom does; returns (status, body)."""
        query, body = self.callback(open_kfid)
        async with aiohttp.ClientSession() as http, http.post(webhook_url, params=query, data=body) as resp:
            return resp.status, await resp.text()

    # ---- HTTP handlers ---------------------------------------------------------------------------

    def _failure(self, api: str) -> web.Response | None:
        if self._failures[api]:
            code, msg = self._failures[api].popleft()
            return web.json_response({"errcode": code, "errmsg": msg})
        return None

    def _token_error(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token", "")
        if token not in self._access:
            return web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        if self._access[token] <= time.time():
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        return None

    async def _gettoken(self, request: web.Request) -> web.Response:
        self.gettoken_calls += 1
        if (failed := self._failure("gettoken")) is not None:
            return failed
        if request.query.get("corpid") != self.corp_id or request.query.get("corpsecret") != self.secret:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        token = self._next_id("ACCESS")
        self._access[token] = time.time() + self.token_ttl_s
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token,
                                  "expires_in": self.token_ttl_s})

    async def _sync_msg(self, request: web.Request) -> web.Response:
        if (bad := self._token_error(request)) is not None:
            return bad
        body = await request.json()
        self.sync_requests.append(body)
        if (failed := self._failure("sync_msg")) is not None:
            return failed
        open_kfid = body.get("open_kfid", "")
        if body.get("token") and body["token"] not in self._callback_tokens:
            return web.json_response({"errcode": 95007, "errmsg": "invalid msg token"})
        limit = int(body.get("limit") or 1000)
        if not 1 <= limit <= 1000:
            return web.json_response({"errcode": 44005, "errmsg": "invalid limit"})
        cursor = body.get("cursor") or ""
        if cursor:
            if self._cursors.get(cursor, ("", 0))[0] != open_kfid:
                return web.json_response({"errcode": 95020, "errmsg": "invalid cursor"})
            pos = self._cursors[cursor][1]
        else:
            pos = 0
        self._in_flight[open_kfid] += 1
        self.max_in_flight[open_kfid] = max(self.max_in_flight[open_kfid], self._in_flight[open_kfid])
        try:
            await asyncio.sleep(self.pull_delay_s)
        finally:
            self._in_flight[open_kfid] -= 1
        log = self._log[open_kfid]
        items: list[dict[str, Any]] = []
        if pos < len(log) and log[pos] is EMPTY_PAGE:
            pos += 1
        else:
            while pos < len(log) and len(items) < limit and log[pos] is not EMPTY_PAGE:
                items.append(log[pos])
                pos += 1
        next_cursor = self._next_id("cur")
        self._cursors[next_cursor] = (open_kfid, pos)
        answer = {"errcode": 0, "errmsg": "ok", "next_cursor": next_cursor, "has_more": int(pos < len(log)),
                  "msg_list": items}
        self.sync_answers.append(answer)
        return web.json_response(answer)

    async def _send_msg(self, request: web.Request) -> web.Response:
        if (bad := self._token_error(request)) is not None:
            return bad
        body = await request.json()
        if (failed := self._failure("send_msg")) is not None:
            return failed
        if body.get("msgtype") != "text" or not isinstance(body.get("text"), dict):
            return web.json_response({"errcode": 40008, "errmsg": "invalid message type"})
        content = body["text"].get("content", "")
        if not content or len(content.encode()) > 2048:
            return web.json_response({"errcode": 44004, "errmsg": "text content empty or too long"})
        if self.state(body.get("open_kfid", ""), body.get("touser", "")) not in (0, 1):
            return web.json_response({"errcode": 95018, "errmsg": "invalid service state"})
        msgid = self._next_id("sent")
        self.sent.append({**body, "msgid": msgid})
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})
