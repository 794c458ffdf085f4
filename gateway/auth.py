"""Who is calling the staff API: the bootstrap admin token, or an agent/supervisor/admin API token.

Roles are ordered (agent < supervisor < admin); ``require`` checks the minimum role an endpoint
needs, and handlers apply the finer rule "an agent sees only their tickets and their skills' queues".
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aiohttp import web

from gateway.http_errors import ApiError, Handler


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

    def at_least(self, role: Role) -> bool:
        return self.role.rank >= role.rank


_REQUEST_KEY: web.RequestKey[Principal] = web.RequestKey("principal", Principal)

Authenticate = Callable[[str], Awaitable[Principal | None]]


def bearer(request: web.Request, *, allow_query: bool = False) -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip()
    # EventSource (SSE) cannot send headers; the events endpoint alone accepts ?access_token=.
    return request.query.get("access_token", "") if allow_query else ""


def auth_middleware(admin_token: str, authenticate: Authenticate, *, exempt: tuple[str, ...]) -> Any:
    """Resolve the caller for every ``/api/`` path outside ``exempt`` (customer-facing routes)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/") and not request.path.startswith(exempt):
            token = bearer(request, allow_query=request.path == "/api/agent/events")
            principal: Principal | None = None
            if token and admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
                principal = Principal("admin", Role.ADMIN, name="admin")
            elif token:
                principal = await authenticate(token)
            if principal is None:
                raise ApiError(401, "unauthorized", "missing or wrong API token (Authorization: Bearer <token>)")
            request[_REQUEST_KEY] = principal
        return await handler(request)

    return middleware


def caller(request: web.Request) -> Principal:
    principal = request.get(_REQUEST_KEY)
    if not isinstance(principal, Principal):
        raise ApiError(401, "unauthorized", "not authenticated")
    return principal


def require(request: web.Request, role: Role) -> Principal:
    """The caller, if their role is at least ``role``; else 403."""
    principal = caller(request)
    if not principal.at_least(role):
        raise ApiError(403, "forbidden", f"this needs the {role.value} role; you are {principal.role.value}")
    return principal
