"""Console login over real HTTP (the whole product: Redis, SQLite, workers): cookies, CSRF, Origin,
throttling, logout, password changes, deactivation, role changes, the bootstrap admin, SSE."""

from __future__ import annotations

import asyncio
from http.cookies import SimpleCookie
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from gateway import agent_api
from gateway.runtime import Runtime
from gateway.session_routes import cookie_is_secure
from ticketing.routing import Presence

ADMIN = {"Authorization": "Bearer test-admin-token"}


class Browser:
    """One browser tab against the shared test client: its own cookie and CSRF token.

    The client's cookie jar is cleared before every request and the cookie sent by hand, so several
    "browsers" (two logins of one agent, an admin next to an agent) can share one server.
    """

    def __init__(self, client: Any, origin: str | None = None) -> None:
        self.client = client
        self.cookie: str | None = None
        self.csrf: str | None = None
        self.origin = origin

    async def login(self, username: str, password: str, headers: dict[str, str] | None = None) -> Any:
        resp = await self.request("POST", "/api/session", {"username": username, "password": password},
                                  headers=headers)
        if resp.status == 200:
            self.cookie = set_cookie(resp).value
            self.csrf = (await resp.json())["csrf"]
        return resp

    async def request(self, method: str, path: str, body: Any = None, *, csrf: str | None = "auto",
                      headers: dict[str, str] | None = None) -> Any:
        self.client.session.cookie_jar.clear()
        sent = dict(headers or {})
        if self.cookie:
            sent["Cookie"] = f"huiliu_session={self.cookie}"
        if csrf == "auto":
            csrf = self.csrf
        if csrf is not None and method != "GET":
            sent["X-CSRF-Token"] = csrf
        if self.origin:
            sent.setdefault("Origin", self.origin)
        return await self.client.request(method, path, json=body, headers=sent)

    async def status(self, method: str, path: str, body: Any = None, **kw: Any) -> int:
        resp = await self.request(method, path, body, **kw)
        await resp.read()
        return int(resp.status)


def set_cookie(resp: Any) -> Any:
    jar: SimpleCookie = SimpleCookie()
    for header in resp.headers.getall("Set-Cookie"):
        jar.load(header)
    return jar["huiliu_session"]


async def _agent(rt: Runtime, agent_id: str, password: str | None = None, **kw: Any) -> None:
    await rt.services.agents.create(agent_id, agent_id.upper(), kw.pop("skills", ["returns"]), 4,
                                    password=password, **kw)


async def test_login_cookie_and_session(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    await _agent(rt, "li", "li-password", skills=["returns", "vip"])
    await rt.services.presence.heartbeat("li", Presence.AWAY)
    tab = Browser(client)
    resp = await tab.login("li", "li-password")
    assert resp.status == 200
    body = await resp.json()
    assert body["me"] == {"id": "li", "name": "LI", "role": "agent", "skills": ["returns", "vip"],
                          "max_concurrent": 4, "presence": "away"}
    assert isinstance(body["csrf"], str) and len(body["csrf"]) >= 32
    assert resp.headers["Cache-Control"] == "no-store"
    cookie = set_cookie(resp)
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["secure"]  # plain http here; see the Secure cases below
    assert len(cookie.value) == 43 and cookie.value not in await resp.text()

    resp = await tab.request("GET", "/api/session")
    assert resp.status == 200 and await resp.json() == body  # the page can reload and find its CSRF token
    me = await tab.request("GET", "/api/me")
    assert me.status == 200 and (await me.json())["id"] == "li"
    assert await tab.status("GET", "/api/tickets") == 200
    assert await tab.status("GET", "/api/agents") == 403  # the cookie carries the agent's role, no more

    nobody = Browser(client)
    assert await nobody.status("GET", "/api/session") == 401
    nobody.cookie = "A" * 43  # a well-formed id that names no session
    resp = await nobody.request("GET", "/api/me")
    assert resp.status == 401 and set_cookie(resp)["max-age"] == "0"  # the browser drops the dead cookie


async def test_secure_flag_behind_an_https_proxy(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    await _agent(rt, "li", "li-password")
    resp = await Browser(client).login("li", "li-password", headers={"X-Forwarded-Proto": "https"})
    assert resp.status == 200 and set_cookie(resp)["secure"]


@pytest.mark.parametrize(("mode", "headers", "secure"), [
    ("auto", {}, False),
    ("auto", {"X-Forwarded-Proto": "https"}, True),
    ("auto", {"X-Forwarded-Proto": "HTTPS, http"}, True),
    ("auto", {"X-Forwarded-Proto": "http"}, False),
    ("true", {}, True),
    ("false", {"X-Forwarded-Proto": "https"}, False),
])
def test_secure_cookie_setting(mode: str, headers: dict[str, str], secure: bool) -> None:
    request = make_mocked_request("POST", "/api/session", headers=headers)
    assert cookie_is_secure(request, mode) is secure


async def test_wrong_credentials_and_throttling(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    await _agent(rt, "li", "li-password")
    await _agent(rt, "wang", "wang-password")
    tab = Browser(client)
    for username, password in [("li", "wrong-password"), ("nobody", "li-password"), ("li", "")]:
        resp = await tab.login(username, password)
        body = await resp.json()
        if password:
            assert (resp.status, body["error"], body["message"]) == (
                401, "bad_credentials", "用户名或密码错误 / wrong username or password")
            assert "Set-Cookie" not in resp.headers
        else:
            assert (resp.status, body["error"]) == (400, "bad_request")
    for _ in range(4):  # five failures for li in all
        assert (await tab.login("li", "wrong-password")).status == 401
    resp = await tab.login("li", "li-password")  # even the right password waits now
    body = await resp.json()
    assert (resp.status, body["error"]) == (429, "too_many_attempts")
    assert 0 < int(resp.headers["Retry-After"]) <= 900
    assert (await tab.login("wang", "wang-password")).status == 200  # other accounts are not locked

    for i in range(14):  # 20 failures from this address in all
        assert (await tab.login(f"guess{i}", "wrong-password")).status == 401
    resp = await tab.login("wang", "wang-password")
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0


async def test_csrf_and_origin(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    s = rt.services
    await _agent(rt, "li", "li-password")
    await _agent(rt, "sup", "sup-password", role="supervisor")
    tab = Browser(client)
    assert (await tab.login("li", "li-password")).status == 200

    for csrf in (None, "", "forged-token", "李" * 8):
        resp = await tab.request("POST", "/api/me/presence", {"status": "online"}, csrf=csrf)
        body = await resp.json()
        assert (resp.status, body["error"], body["message"]) == (
            403, "csrf", "页面已过期，请刷新 / CSRF token missing or wrong"), csrf
    assert await s.presence.get("li") is Presence.OFFLINE  # nothing changed
    assert await tab.status("POST", "/api/me/presence", {"status": "online"}) == 200
    assert await s.presence.get("li") is Presence.ONLINE

    sup = Browser(client)
    assert (await sup.login("sup", "sup-password")).status == 200
    assert await sup.status("PATCH", "/api/agents/li", {"max_concurrent": 9}, csrf=None) == 403
    assert await sup.status("PATCH", "/api/agents/li", {"max_concurrent": 9}, csrf=tab.csrf) == 403  # not theirs
    record = await s.agents.get("li")
    assert record is not None and record.max_concurrent == 4

    host = client.server.host, client.server.port
    for origin in ("https://evil.example", f"http://{host[0]}:{host[1] + 1}", "null"):
        resp = await sup.request("PATCH", "/api/agents/li", {"max_concurrent": 9}, headers={"Origin": origin})
        assert (resp.status, (await resp.json())["error"]) == (403, "csrf"), origin
        resp = await Browser(client).login("sup", "sup-password", headers={"Origin": origin})
        assert resp.status == 403  # no logging a browser in from a foreign page either
    same = {"Origin": f"http://{host[0]}:{host[1]}"}
    assert await sup.status("PATCH", "/api/agents/li", {"max_concurrent": 9}, headers=same) == 200
    record = await s.agents.get("li")
    assert record is not None and record.max_concurrent == 9
    proxied = {"Origin": "https://shop.example", "X-Forwarded-Host": "shop.example"}  # proxy rewrote Host
    assert await sup.status("PATCH", "/api/agents/li", {"max_concurrent": 8}, headers=proxied) == 200

    # Bearer clients are unchanged: no CSRF token, and a stray cookie is ignored.
    resp = await client.patch("/api/agents/li", json={"max_concurrent": 7}, headers=ADMIN)
    assert resp.status == 200


async def test_logout(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    await _agent(rt, "li", "li-password")
    tab = Browser(client)
    await tab.login("li", "li-password")
    old_cookie = tab.cookie
    assert await tab.status("DELETE", "/api/session", csrf=None) == 403  # logout is unsafe too
    resp = await tab.request("DELETE", "/api/session")
    assert resp.status == 204 and set_cookie(resp)["max-age"] == "0"
    assert await tab.status("GET", "/api/session") == 401
    assert await tab.status("GET", "/api/me") == 401

    await tab.login("li", "li-password")
    assert tab.cookie != old_cookie
    assert await tab.status("GET", "/api/me") == 200


async def test_password_changes_end_sessions(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    await _agent(rt, "li", "li-password")
    first, second = Browser(client), Browser(client)
    await first.login("li", "li-password")
    await second.login("li", "li-password")

    for body, code in [({"current": "wrong-password", "new": "new-password"}, "wrong_password"),
                       ({"current": "li-password", "new": "short"}, "weak_password"),
                       ({"current": "li-password"}, "weak_password")]:
        resp = await first.request("POST", "/api/me/password", body)
        assert (resp.status, (await resp.json())["error"]) == (400, code)
    assert await second.status("GET", "/api/me") == 200  # failed attempts change nothing

    assert await first.status("POST", "/api/me/password", {"current": "li-password", "new": "new-password"}) == 204
    assert await first.status("GET", "/api/me") == 200  # the caller stays in ...
    assert await first.status("POST", "/api/me/presence", {"status": "away"}) == 200  # ... with the same CSRF
    assert await second.status("GET", "/api/me") == 401  # ... every other session ended
    assert (await Browser(client).login("li", "li-password")).status == 401
    assert (await Browser(client).login("li", "new-password")).status == 200

    # An admin resetting the password ends all of them, the caller's own included.
    resp = await client.post("/api/agents/li/password", json={"password": "reset-by-admin"}, headers=ADMIN)
    assert resp.status == 204
    assert await first.status("GET", "/api/me") == 401
    assert (await Browser(client).login("li", "reset-by-admin")).status == 200
    resp = await client.post("/api/agents/li/password", json={"password": "short"}, headers=ADMIN)
    assert (resp.status, (await resp.json())["error"]) == (400, "weak_password")
    resp = await client.post("/api/agents/ghost/password", json={"password": "long-enough"}, headers=ADMIN)
    assert resp.status == 404

    # A password changed behind the API's back (the CLI) also ends sessions: they carry its stamp.
    third = Browser(client)
    await third.login("li", "reset-by-admin")
    await rt.services.agents.set_password("li", "set-from-the-cli")
    assert await third.status("GET", "/api/me") == 401


async def test_token_agent_sets_a_first_password_then_logs_in(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    _, token = await rt.services.agents.create("zhao", "赵", [], 3)
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await Browser(client).login("zhao", "anything-at-all")).status == 401  # no password yet
    resp = await client.post("/api/me/password", json={"new": "zhao-password"}, headers=bearer)
    assert resp.status == 204
    tab = Browser(client)
    assert (await tab.login("zhao", "zhao-password")).status == 200
    resp = await client.post("/api/me/password", json={"new": "other-password"}, headers=bearer)
    assert (resp.status, (await resp.json())["error"]) == (400, "wrong_password")  # now it needs `current`


async def test_create_with_password_deactivation_and_role_change(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    admin = Browser(client)
    assert (await admin.login("admin", "test-admin-token")).status == 200
    resp = await admin.request("POST", "/api/agents", {"id": "li", "skills": ["returns"], "password": "li-password"})
    assert resp.status == 201
    created = await resp.json()
    assert created["has_password"] is True and created["token"].startswith("hl_")
    resp = await admin.request("POST", "/api/agents", {"id": "wu", "password": "short"})
    assert (resp.status, (await resp.json())["error"]) == (400, "weak_password")

    tab, other_tab = Browser(client), Browser(client)
    await tab.login("li", "li-password")
    await other_tab.login("li", "li-password")
    assert await tab.status("GET", "/api/agents") == 403
    assert await admin.status("PATCH", "/api/agents/li", {"role": "supervisor"}) == 200
    assert await tab.status("GET", "/api/agents") == 200  # the new role applies without logging in again
    resp = await tab.request("GET", "/api/session")
    assert (await resp.json())["me"]["role"] == "supervisor"

    assert await admin.status("PATCH", "/api/agents/li", {"active": False}) == 200
    assert await tab.status("GET", "/api/me") == 401
    assert await other_tab.status("GET", "/api/me") == 401
    sessions_of = rt.services.keys.console_sessions_of("li")
    assert await rt.services.redis.scard(sessions_of) == 0  # ended in Redis, not just refused
    resp = await Browser(client).login("li", "li-password")  # inactive accounts never log in
    assert (resp.status, (await resp.json())["error"]) == (401, "bad_credentials")

    assert await admin.status("PATCH", "/api/agents/li", {"active": True}) == 200
    assert (await Browser(client).login("li", "li-password")).status == 200


async def test_bootstrap_admin(live: tuple[Runtime, Any]) -> None:
    _rt, client = live
    assert (await Browser(client).login("admin", "not-the-token")).status == 401
    boot = Browser(client)
    resp = await boot.login("admin", "test-admin-token")
    assert resp.status == 200
    me = (await resp.json())["me"]
    assert (me["id"], me["role"]) == ("admin", "admin")
    assert await boot.status("GET", "/api/agents") == 200
    resp = await boot.request("POST", "/api/me/password", {"current": "test-admin-token", "new": "new-password"})
    assert (resp.status, (await resp.json())["error"]) == (400, "no_password")

    # A staff account "admin" without a password does not take the bootstrap login away ...
    assert await boot.status("POST", "/api/agents", {"id": "admin", "role": "admin"}) == 201
    assert await boot.status("GET", "/api/me") == 200
    # ... one with a password does: the bootstrap session ends and the token no longer logs in.
    assert await boot.status("POST", "/api/agents/admin/password", {"password": "staff-admin-password"}) == 204
    assert await boot.status("GET", "/api/me") == 401
    assert (await Browser(client).login("admin", "test-admin-token")).status == 401
    staff = Browser(client)
    resp = await staff.login("admin", "staff-admin-password")
    assert resp.status == 200 and (await resp.json())["me"]["role"] == "admin"
    # The admin token as a bearer keeps working for API clients.
    assert (await client.get("/api/agents", headers=ADMIN)).status == 200


async def test_sse_with_the_cookie(live: tuple[Runtime, Any]) -> None:
    rt, client = live
    await _agent(rt, "li", "li-password")
    tab = Browser(client)
    await tab.login("li", "li-password")
    resp = await tab.request("GET", "/api/agent/events")
    try:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert (await resp.content.readline()).startswith(b": connected")
    finally:
        resp.close()
    assert await Browser(client).status("GET", "/api/agent/events") == 401


async def test_logout_ends_an_open_event_stream(live: tuple[Runtime, Any],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the stream was authenticated once, at connect, and outlived the logout."""
    monkeypatch.setattr(agent_api, "KEEPALIVE_S", 0.2)
    rt, client = live
    await _agent(rt, "li", "li-password")
    tab = Browser(client)
    await tab.login("li", "li-password")
    resp = await tab.request("GET", "/api/agent/events")
    try:
        assert (await resp.content.readline()).startswith(b": connected")
        assert await tab.status("DELETE", "/api/session") == 204
        await asyncio.wait_for(resp.content.read(), timeout=10)  # returns when the server ends it
        assert resp.content.at_eof()
    finally:
        resp.close()
