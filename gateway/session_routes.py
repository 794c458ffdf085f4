"""Console login: ``POST/GET/DELETE /api/session`` and password changes, plus the cookie resolver the
auth middleware uses (gateway.auth.CONSOLE_AUTH).

Login takes a staff id and password (gateway.passwords), or -- until a staff account ``admin`` has a
password -- ``admin`` with the bootstrap admin token, so a fresh install can be set up from the
browser. Failed logins are throttled per username and per client IP (gateway.login_throttle).
Every session remembers a fingerprint of the credential it was opened with; the resolver reloads the
staff record on each request and ends the session when the account is gone, inactive, or its
password (or the admin token) changed -- whichever process or command changed it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from aiohttp import web

from gateway.api_common import json_body
from gateway.auth import (
    CONSOLE_AUTH,
    SESSION_COOKIE,
    ConsoleAuth,
    CookieSession,
    Principal,
    Role,
    caller,
    current_session,
    require,
)
from gateway.http_errors import ApiError, error_response
from gateway.login_throttle import LoginThrottle
from gateway.passwords import PasswordError
from gateway.services import Services
from gateway.sessions import SessionData, SessionStore
from ticketing.agents import AgentNotFound, AgentRecord

BOOTSTRAP_ID = "admin"
NO_STORE = {"Cache-Control": "no-store"}  # the body carries the CSRF token
BAD_CREDENTIALS = "用户名或密码错误 / wrong username or password"


def principal_of(record: AgentRecord) -> Principal:
    return Principal(record.id, Role(record.role), name=record.name, skills=record.skills,
                     max_concurrent=record.max_concurrent)


def bootstrap_principal() -> Principal:
    return Principal(BOOTSTRAP_ID, Role.ADMIN, name="admin", bootstrap=True)


def admin_token_stamp(admin_token: str) -> str:
    """Fingerprint of the admin token: bootstrap sessions end when the token is changed."""
    return hashlib.sha256(b"bootstrap-session:" + admin_token.encode()).hexdigest()[:16]


def cookie_is_secure(request: web.Request, mode: str) -> bool:
    """``console_secure_cookies``: true | false | auto (https here, or at the proxy in front of us)."""
    if mode in ("true", "false"):
        return mode == "true"
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def _too_many(retry_after: int) -> web.Response:
    resp = error_response(429, "too_many_attempts",
                          f"尝试次数过多，请 {max(1, retry_after // 60)} 分钟后再试 / "
                          f"too many failed logins; try again in {retry_after} s")
    resp.headers["Retry-After"] = str(retry_after)
    return resp


def _client_ip(request: web.Request) -> str:
    # The peer address. Behind a reverse proxy every client shares the proxy's address, so the per-IP
    # limit then counts all clients together (the per-username limit still works as intended).
    return request.remote or "unknown"


def setup_console_sessions(app: web.Application, s: Services) -> SessionStore:
    """Register the session routes and the cookie resolver; returns the session store."""
    store = SessionStore(s.redis, s.keys, s.clock)
    throttle = LoginThrottle(s.redis, s.keys)
    admin_token = s.settings.admin_token
    admin_stamp = admin_token_stamp(admin_token)

    async def bootstrap_allowed() -> bool:
        """The admin token logs in only while no staff account ``admin`` has a password (active or not:
        deactivating that account must not reopen the bootstrap door)."""
        record = await s.agents.get(BOOTSTRAP_ID)
        return bool(admin_token) and (record is None or not record.has_password)

    async def principal_for(data: SessionData) -> Principal | None:
        if data.bootstrap:
            if not hmac.compare_digest(data.stamp.encode(), admin_stamp.encode()) or not await bootstrap_allowed():
                return None
            return bootstrap_principal()
        record = await s.agents.get(data.principal_id)
        if record is None or not record.active or record.password_stamp != data.stamp:
            return None
        return principal_of(record)

    async def resolve(session_id: str) -> CookieSession | None:
        data = await store.get(session_id)
        if data is None:
            return None
        principal = await principal_for(data)
        if principal is None:
            await store.destroy(session_id)
            return None
        return CookieSession(session_id, data.csrf, principal)

    async def me_json(p: Principal) -> dict[str, Any]:
        """The shape of ``GET /api/me``."""
        presence = await s.presence.get(p.id)
        return {"id": p.id, "name": p.name, "role": p.role.value, "skills": sorted(p.skills),
                "max_concurrent": p.max_concurrent, "presence": presence.value}

    async def check_login(username: str, password: str) -> tuple[Principal, str] | None:
        """The principal and its credential stamp, or None for wrong credentials."""
        if username == BOOTSTRAP_ID and await bootstrap_allowed():
            if hmac.compare_digest(password.encode(), admin_token.encode()):
                return bootstrap_principal(), admin_stamp
            return None
        record = await s.agents.check_password(username, password)
        if record is None or record.password_stamp is None:
            return None
        return principal_of(record), record.password_stamp

    async def login(request: web.Request) -> web.Response:
        data = await json_body(request)
        username, password = data.get("username"), data.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not username.strip() or not password:
            raise ApiError(400, "bad_request", "请输入用户名和密码 / username and password are required")
        username = username.strip()
        ip = _client_ip(request)
        wait = await throttle.retry_after(username, ip)
        if wait is not None:
            return _too_many(wait)
        found = await check_login(username, password)
        if found is None:
            await throttle.failed(username, ip)
            raise ApiError(401, "bad_credentials", BAD_CREDENTIALS)
        principal, stamp = found
        await throttle.succeeded(username)
        if old := request.cookies.get(SESSION_COOKIE):
            await store.destroy(old)  # a new login never keeps an id the browser held before
        session_id, csrf = await store.create(principal.id, principal.role.value, stamp=stamp,
                                              bootstrap=principal.bootstrap)
        resp = web.json_response({"csrf": csrf, "me": await me_json(principal)}, headers=NO_STORE)
        resp.set_cookie(SESSION_COOKIE, session_id, path="/", httponly=True, samesite="Strict",
                        secure=cookie_is_secure(request, s.settings.console_secure_cookies))
        return resp

    async def get_session(request: web.Request) -> web.Response:
        """``{csrf, me}``; ``csrf`` is null for bearer-token callers (they need none)."""
        p = caller(request)
        session = current_session(request)
        return web.json_response({"csrf": session.csrf if session else None, "me": await me_json(p)},
                                 headers=NO_STORE)

    async def logout(request: web.Request) -> web.Response:
        caller(request)
        if (session := current_session(request)) is not None:
            await store.destroy(session.session_id)
        resp = web.Response(status=204)
        resp.del_cookie(SESSION_COOKIE, path="/")
        return resp

    async def change_own_password(request: web.Request) -> web.Response:
        """``{current, new}``. ``current`` may be omitted while the account has no password yet (the
        token caller proves who they are). Ends the caller's other console sessions."""
        p = caller(request)
        if p.bootstrap:
            raise ApiError(400, "no_password", "引导管理员没有密码，用管理员令牌登录；请为员工账号设置密码 / "
                                               "the bootstrap admin has no password (it logs in with the admin "
                                               "token); create a staff admin account with a password instead")
        data = await json_body(request)
        record = await s.agents.get(p.id)
        if record is None:
            raise ApiError(404, "not_found", "no such agent")
        if record.has_password:
            ip = _client_ip(request)
            wait = await throttle.retry_after(p.id, ip)
            if wait is not None:
                return _too_many(wait)
            current = data.get("current")
            if not isinstance(current, str) or await s.agents.check_password(p.id, current) is None:
                await throttle.failed(p.id, ip)
                raise ApiError(400, "wrong_password", "当前密码错误 / current password is wrong")
        updated = await _set_password(p.id, data.get("new"))
        session = current_session(request)
        await store.destroy_all_for(p.id, keep=session.session_id if session else None)
        if session is not None and updated.password_stamp:
            await store.restamp(session.session_id, updated.password_stamp)
        return web.Response(status=204)

    async def set_agent_password(request: web.Request) -> web.Response:
        """Admin sets anyone's password ``{password}``; that agent's console sessions end."""
        require(request, Role.ADMIN)
        agent_id = request.match_info["id"]
        await _set_password(agent_id, (await json_body(request)).get("password"))
        await store.destroy_all_for(agent_id)
        return web.Response(status=204)

    async def _set_password(agent_id: str, password: Any) -> AgentRecord:
        if not isinstance(password, str):
            raise ApiError(400, "weak_password", "新密码须为字符串 / the new password must be a string")
        try:
            return await s.agents.set_password(agent_id, password)
        except PasswordError as exc:
            raise ApiError(400, "weak_password", str(exc)) from exc
        except AgentNotFound as exc:
            raise ApiError(404, "not_found", "no such agent") from exc

    app[CONSOLE_AUTH] = ConsoleAuth(resolve=resolve, open_routes=frozenset({("POST", "/api/session")}))
    r = app.router
    r.add_post("/api/session", login)
    r.add_get("/api/session", get_session)
    r.add_delete("/api/session", logout)
    r.add_post("/api/me/password", change_own_password)
    r.add_post("/api/agents/{id}/password", set_agent_password)
    return store
