"""Who is calling the staff API: the bootstrap admin token, an agent/supervisor/admin API token, or
a console session cookie.

Roles are ordered (agent < supervisor < admin); ``require`` checks the minimum role an endpoint
needs, and handlers apply the finer rule "an agent sees only their tickets and their skills' queues".

Bearer tokens win when present (API clients are unchanged). Without one, the ``huiliu_session``
cookie of a console login is resolved through the app's :data:`CONSOLE_AUTH` (gateway.session_routes),
which reloads the staff record on every request, so role changes and deactivation apply at once.
Cookies are sent by the browser automatically, so every unsafe cookie request must also prove it
comes from our own page: an ``X-CSRF-Token`` header equal to the session's token, and no foreign
``Origin``.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gateway.http_errors import ApiError, Handler, error_response

SESSION_COOKIE = "huiliu_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_MESSAGE = "页面已过期，请刷新 / CSRF token missing or wrong"


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return {"agent": 0, "supervisor": 1, "admin": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Principal:
    id: str
    role: Role
    name: str = ""
    skills: frozenset[str] = frozenset()
    max_concurrent: int = 0
    bootstrap: bool = False  # the admin token (or its console login): no staff record, no password

    def at_least(self, role: Role) -> bool:
        return self.role.rank >= role.rank


@dataclass(frozen=True, slots=True)
class CookieSession:
    """A console session resolved for the current request."""

    session_id: str
    csrf: str
    principal: Principal


@dataclass(frozen=True, slots=True)
class ConsoleAuth:
    """How the middleware resolves session cookies; installed by gateway.session_routes."""

    resolve: Callable[[str], Awaitable[CookieSession | None]]
    open_routes: frozenset[tuple[str, str]]  # (method, path) served without authentication: the login


_REQUEST_KEY: web.RequestKey[Principal] = web.RequestKey("principal", Principal)
_SESSION_KEY: web.RequestKey[CookieSession] = web.RequestKey("console_session", CookieSession)
CONSOLE_AUTH: web.AppKey[ConsoleAuth] = web.AppKey("console_auth", ConsoleAuth)

Authenticate = Callable[[str], Awaitable[Principal | None]]


def bearer(request: web.Request, *, allow_query: bool = False) -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip()
    # EventSource (SSE) cannot send headers; the events endpoint alone accepts ?access_token=.
    return request.query.get("access_token", "") if allow_query else ""


def _authority(scheme: str, netloc: str) -> str:
    """``host[:port]`` lowercased, without the scheme's default port."""
    netloc = netloc.strip().lower()
    default = {"http": ":80", "https": ":443"}.get(scheme.lower())
    return netloc[: -len(default)] if default and netloc.endswith(default) else netloc


def check_origin(request: web.Request) -> None:
    """403 ``csrf`` when an ``Origin`` header names another site than the request's ``Host``.

    Browsers send ``Origin`` on cross-site requests (and on same-site unsafe ones); a page elsewhere
    cannot forge it. Requests without ``Origin`` (old browsers, curl) rely on the CSRF token alone.
    ``X-Forwarded-Host`` also counts as "this host", for reverse proxies that rewrite ``Host``: a
    foreign page cannot add that header (it is not CORS-safelisted, and we answer no preflight).
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return
    parts = urlsplit(origin)
    hosts = {request.host, request.headers.get("X-Forwarded-Host", "").split(",")[0]}
    if not parts.scheme or not parts.netloc or _authority(parts.scheme, parts.netloc) not in {
            _authority(parts.scheme, h) for h in hosts if h}:
        raise ApiError(403, "csrf", "跨站请求被拒绝，请刷新页面 / cross-site request refused (Origin is not this host)")


def _check_csrf(request: web.Request, session: CookieSession) -> None:
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise ApiError(403, "csrf", CSRF_MESSAGE)


def _session_ended() -> web.Response:
    """401 for a cookie that names no live session; also tells the browser to drop the cookie."""
    resp = error_response(401, "unauthorized", "登录已过期，请重新登录 / session expired or ended: log in again")
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


def auth_middleware(admin_token: str, authenticate: Authenticate, *, exempt: tuple[str, ...]) -> Any:
    """Resolve the caller for every ``/api/`` path outside ``exempt`` (customer-facing routes)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/") or request.path.startswith(exempt):
            return await handler(request)
        console = request.app.get(CONSOLE_AUTH)
        if console is not None and (request.method, request.path) in console.open_routes:
            check_origin(request)  # a foreign page must not log a browser in (login CSRF)
            return await handler(request)
        token = bearer(request, allow_query=request.path == "/api/agent/events")
        principal: Principal | None = None
        cookie = request.cookies.get(SESSION_COOKIE, "")
        if token and admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
            principal = Principal("admin", Role.ADMIN, name="admin", bootstrap=True)
        elif token:
            principal = await authenticate(token)
        elif cookie and console is not None:
            session = await console.resolve(cookie)
            if session is None:
                return _session_ended()
            if request.method in UNSAFE_METHODS:
                check_origin(request)
                _check_csrf(request, session)
            request[_SESSION_KEY] = session
            principal = session.principal
        if principal is None:
            raise ApiError(401, "unauthorized", "missing or wrong API token (Authorization: Bearer <token>) "
                                                "or console session")
        request[_REQUEST_KEY] = principal
        return await handler(request)

    return middleware


def caller(request: web.Request) -> Principal:
    principal = request.get(_REQUEST_KEY)
    if not isinstance(principal, Principal):
        raise ApiError(401, "unauthorized", "not authenticated")
    return principal


def current_session(request: web.Request) -> CookieSession | None:
    """The console session that authenticated this request (None for bearer callers)."""
    session = request.get(_SESSION_KEY)
    return session if isinstance(session, CookieSession) else None


def require(request: web.Request, role: Role) -> Principal:
    """The caller, if their role is at least ``role``; else 403."""
    principal = caller(request)
    if not principal.at_least(role):
        raise ApiError(403, "forbidden", f"this needs the {role.value} role; you are {principal.role.value}")
    return principal
