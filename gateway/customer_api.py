"""Agent API: one customer across channels -- the customer view, verified identities, unlink, merge.

Who may do what. Supervisors and admins: everything, on every profile. Agents: a profile is theirs to
see and change when one of its conversations has a ticket they may see (``ticketing.queues.visible_to``:
assigned to them or waiting in their skills' queues); any other profile is a 404, as for tickets, so
ids cannot be probed. Agents may merge too -- they are the ones talking to the customer when the proof
turns up ("I also wrote to you by e-mail"), a merge is audited (who, when, why) and undone by unlinking
-- but only profiles they can see both of, or two profiles an order proof suggested linking.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.agent_api import viewer
from gateway.api_common import int_param, json_body, jsonable, text_field
from gateway.auth import Principal, Role, caller
from gateway.http_errors import ApiError
from gateway.services import Services
from ticketing.agent_links import AgentLinks
from ticketing.customer_view import customer_view, identities_with_proof, tickets_of
from ticketing.customers import CustomerError, Identity
from ticketing.identity_links import LinkConflict, ProfileNotFound, live_profile, profile_of
from ticketing.identity_rules import normalize_identity
from ticketing.queues import held_skills, visible_to

MAX_REASON = 500


def _optional_text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_REASON:
        raise ApiError(400, "bad_request", f"{name} must be a string of at most {MAX_REASON} characters")
    return value.strip() or None


def setup_customer_api(app: web.Application, s: Services) -> None:
    links = AgentLinks(s.engine, s.clock)

    async def may_see(p: Principal, ids: list[Identity]) -> bool:
        """Agents: some ticket on these identities' conversations is visible to them."""
        if p.at_least(Role.SUPERVISOR):
            return True
        held = await held_skills(s.engine)  # before our connection: SQLite has only one
        async with s.engine.connect() as conn:
            rows = await tickets_of(conn, ids)
        v = viewer(p)
        return any(visible_to(v, r, held) for r in rows)

    async def profile_ids(customer_id: int) -> tuple[int, list[Identity]]:
        async with s.engine.connect() as conn:
            pid = await live_profile(conn, customer_id)
            if pid is None:
                raise ApiError(404, "not_found", "no such customer")
            idents = await identities_with_proof(conn, pid)
        return pid, [Identity(i["channel"], i["external_id"]) for i in idents]

    async def visible_profile(request: web.Request) -> tuple[Principal, int]:
        """The caller and the live profile id from the path (a merged-away id follows the merge)."""
        p = caller(request)
        pid, ids = await profile_ids(int_param(request, "id"))
        if not await may_see(p, ids):
            raise ApiError(404, "not_found", "no such customer")
        return p, pid

    async def view(customer_id: int | None, identity: Identity | None = None) -> dict[str, Any]:
        async with s.engine.connect() as conn:
            data = await customer_view(conn, customer_id, identity)
        if data is None:
            raise ApiError(404, "not_found", "no such customer")
        result: dict[str, Any] = jsonable(data)
        return result

    async def get_customer(request: web.Request) -> web.Response:
        _p, pid = await visible_profile(request)
        return web.json_response(await view(pid))

    async def visible_conversation(request: web.Request) -> tuple[Principal, Identity, int | None]:
        """The caller, the conversation's customer identity and its profile id (None: no profile yet)."""
        p = caller(request)
        conv = await s.conversations.get(request.match_info["conversation_id"])
        if conv is None:
            raise ApiError(404, "not_found", "no such conversation")
        identity = Identity(conv["channel"], conv["customer_external_id"])
        async with s.engine.connect() as conn:
            pid = await profile_of(conn, identity)
        ids = (await profile_ids(pid))[1] if pid is not None else [identity]
        if not await may_see(p, ids):
            raise ApiError(404, "not_found", "no such conversation")
        return p, identity, pid

    async def conversation_customer(request: web.Request) -> web.Response:
        _p, identity, pid = await visible_conversation(request)
        return web.json_response(await view(pid, identity))

    async def verified_identity(request: web.Request) -> tuple[Identity, str | None]:
        data = await json_body(request)
        try:
            identity = normalize_identity(text_field(data, "channel", 32), text_field(data, "external_id", 256))
        except CustomerError as exc:
            raise ApiError(400, "bad_request", str(exc)) from exc
        return identity, _optional_text(data, "note")

    async def add_identity(request: web.Request) -> web.Response:
        p, pid = await visible_profile(request)
        identity, note = await verified_identity(request)
        async with s.engine.connect() as conn:
            already = await profile_of(conn, identity) == pid
        pid = await _guard(links.add_identity(pid, identity, actor=p.id, note=note))
        return web.json_response(await view(pid), status=200 if already else 201)

    async def add_identity_from_conversation(request: web.Request) -> web.Response:
        p, anchor, pid = await visible_conversation(request)
        identity, note = await verified_identity(request)
        async with s.engine.connect() as conn:
            already = pid is not None and await profile_of(conn, identity) == pid
        pid = await _guard(links.add_identity_for(anchor, identity, actor=p.id, note=note))
        return web.json_response(await view(pid), status=200 if already else 201)

    async def unlink(request: web.Request) -> web.Response:
        p, pid = await visible_profile(request)
        data = await json_body(request)
        reason = _optional_text(data, "reason") or _optional_text(dict(request.query), "reason")
        identity = Identity(request.match_info["channel"], request.match_info["external_id"])
        pid = await _guard(links.unlink(pid, identity, actor=p.id, reason=reason))
        return web.json_response(await view(pid))

    async def merge(request: web.Request) -> web.Response:
        p, pid = await visible_profile(request)
        data = await json_body(request)
        other = data.get("other_id")
        if isinstance(other, str) and other.isdigit():
            other = int(other)
        if not isinstance(other, int) or isinstance(other, bool) or other < 1:
            raise ApiError(400, "bad_request", "other_id must be a customer id")
        reason = text_field(data, "reason", MAX_REASON)
        other_pid, other_ids = await profile_ids(other)
        if not p.at_least(Role.SUPERVISOR) and not await may_see(p, other_ids):
            # ...unless an order proof suggested exactly this link (the agent confirms it)
            suggestions = (await view(pid))["suggestions"]
            if other_pid not in {x[side]["customer_id"] for x in suggestions for side in ("identity", "other")}:
                raise ApiError(404, "not_found", "no such customer")
        pid = await _guard(links.merge(pid, other_pid, actor=p.id, reason=reason))
        return web.json_response(await view(pid))

    r = app.router
    r.add_get("/api/customers/{id}", get_customer)
    r.add_post("/api/customers/{id}/identities", add_identity)
    r.add_delete("/api/customers/{id}/identities/{channel}/{external_id}", unlink)
    r.add_post("/api/customers/{id}/merge", merge)
    r.add_get("/api/conversations/{conversation_id}/customer", conversation_customer)
    r.add_post("/api/conversations/{conversation_id}/customer/identities", add_identity_from_conversation)


async def _guard(call: Any) -> int:
    try:
        result: int = await call
    except ProfileNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except LinkConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    except CustomerError as exc:
        raise ApiError(400, "bad_request", str(exc)) from exc
    return result
