"""Supervisor/admin API: agents and their skills, customer tiers, canned responses, the peak-season
SLA switch, the supervisor alert queue, and service metrics (JSON and Prometheus)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from aiohttp import web

from gateway.api_common import int_param, json_body, jsonable, text_field
from gateway.auth import Role, caller, require
from gateway.http_errors import ApiError
from gateway.passwords import PasswordError
from gateway.services import Services
from gateway.sessions import SessionStore
from ticketing.agents import AgentError, AgentExists, AgentRecord
from ticketing.canned import CannedError
from ticketing.customers import CustomerError, Identity
from ticketing.priority import Tier
from ticketing.reports import CONTENT_TYPE, build_report, report_args, scrape
from ticketing.sla_settings import SlaSettingsError, parse_change


def agent_json(a: AgentRecord) -> dict[str, Any]:
    data: dict[str, Any] = jsonable({
        "id": a.id, "name": a.name, "skills": sorted(a.skills), "max_concurrent": a.max_concurrent,
        "role": a.role, "team": a.team, "active": a.active, "created_at": a.created_at,
        "has_password": a.has_password})
    return data


def setup_staff_api(app: web.Application, s: Services) -> None:
    sessions = SessionStore(s.redis, s.keys, s.clock)  # only to end a deactivated agent's console sessions

    async def list_agents(request: web.Request) -> web.Response:
        require(request, Role.SUPERVISOR)
        agents = await s.agents.list(active_only=request.query.get("all") != "1")
        presence = await s.presence.snapshot([a.id for a in agents])
        return web.json_response({"agents": [{**agent_json(a), "presence": presence[a.id].value} for a in agents]})

    async def colleagues(request: web.Request) -> web.Response:
        """Any staff member: who else is active, with skills and presence (the transfer dialog's list).
        No roles, teams, capacity or token state: that stays with supervisors."""
        caller(request)
        agents = await s.agents.list(active_only=True)
        presence = await s.presence.snapshot([a.id for a in agents])
        return web.json_response({"agents": [{"id": a.id, "name": a.name, "skills": sorted(a.skills),
                                              "presence": presence[a.id].value} for a in agents]})

    async def create_agent(request: web.Request) -> web.Response:
        p = require(request, Role.SUPERVISOR)
        data = await json_body(request)
        role = data.get("role", "agent")
        if role != "agent" and not p.at_least(Role.ADMIN):
            raise ApiError(403, "forbidden", "only an admin can create supervisors or admins")
        password = data.get("password")  # optional: console login; without it the token only
        if password is not None and not isinstance(password, str):
            raise ApiError(400, "weak_password", "密码须为字符串 / password must be a string")
        try:
            record, token = await s.agents.create(
                text_field(data, "id", 64), str(data.get("name") or data["id"]), data.get("skills") or [],
                int(data.get("max_concurrent", 5)), role=role, team=str(data.get("team") or "default"),
                password=password)
        except AgentExists as exc:
            raise ApiError(409, "exists", str(exc)) from exc
        except PasswordError as exc:
            raise ApiError(400, "weak_password", str(exc)) from exc
        except (AgentError, TypeError, ValueError) as exc:
            raise ApiError(400, "invalid_agent", str(exc)) from exc
        return web.json_response({**agent_json(record), "token": token}, status=201)

    async def update_agent(request: web.Request) -> web.Response:
        p = require(request, Role.SUPERVISOR)
        data = await json_body(request)
        allowed = {"name", "skills", "max_concurrent", "team", "active", "role"}
        if unknown := set(data) - allowed:
            raise ApiError(400, "bad_request", f"unknown fields: {', '.join(sorted(unknown))}")
        if "role" in data and not p.at_least(Role.ADMIN):
            raise ApiError(403, "forbidden", "only an admin can change roles")
        try:
            record = await s.agents.update(request.match_info["id"], **data)
        except LookupError as exc:
            raise ApiError(404, "not_found", "no such agent") from exc
        except (AgentError, TypeError, ValueError) as exc:
            raise ApiError(400, "invalid_agent", str(exc)) from exc
        if not record.active:
            await sessions.destroy_all_for(record.id)
        return web.json_response(agent_json(record))

    async def rotate_token(request: web.Request) -> web.Response:
        require(request, Role.ADMIN)
        try:
            token = await s.agents.rotate_token(request.match_info["id"])
        except LookupError as exc:
            raise ApiError(404, "not_found", "no such agent") from exc
        return web.json_response({"id": request.match_info["id"], "token": token})

    async def get_customer(request: web.Request) -> web.Response:
        require(request, Role.SUPERVISOR)
        ident = Identity(request.match_info["channel"], request.match_info["external_id"])
        profile = await s.profiles.get(ident)
        return web.json_response(profile or {"id": None, "tier": Tier.NORMAL.value, "identities": [
            {"channel": ident.channel, "external_id": ident.external_id}]})

    async def put_customer(request: web.Request) -> web.Response:
        require(request, Role.SUPERVISOR)
        data = await json_body(request)
        try:
            tier = Tier(data.get("tier", "normal"))
        except ValueError as exc:
            raise ApiError(400, "bad_request", "tier must be normal or vip") from exc
        name = data.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > 256):
            raise ApiError(400, "bad_request", "name must be a string of at most 256 characters")
        ident = Identity(request.match_info["channel"], request.match_info["external_id"])
        try:
            return web.json_response(await s.profiles.set_tier(ident, tier, now=s.clock(), name=name))
        except CustomerError as exc:
            raise ApiError(400, "bad_request", str(exc)) from exc

    async def list_canned(request: web.Request) -> web.Response:
        caller(request)
        items = await s.canned.list(language=request.query.get("language"), query=request.query.get("q"))
        return web.json_response({"canned": jsonable([vars_of(c) for c in items])})

    async def create_canned(request: web.Request) -> web.Response:
        p = require(request, Role.SUPERVISOR)
        data = await json_body(request)
        try:
            c = await s.canned.create(text_field(data, "title", 128), text_field(data, "text", 4000),
                                      str(data.get("language") or "zh"), p.id)
        except CannedError as exc:
            raise ApiError(400, "bad_template", str(exc)) from exc
        return web.json_response(jsonable(vars_of(c)), status=201)

    async def update_canned(request: web.Request) -> web.Response:
        require(request, Role.SUPERVISOR)
        data = await json_body(request)
        try:
            c = await s.canned.update(int_param(request, "id"), **{k: v for k, v in data.items()
                                                                    if k in {"title", "text", "language"}})
        except CannedError as exc:
            raise ApiError(400, "bad_template", str(exc)) from exc
        if c is None:
            raise ApiError(404, "not_found", "no such canned response")
        return web.json_response(jsonable(vars_of(c)))

    async def delete_canned(request: web.Request) -> web.Response:
        require(request, Role.SUPERVISOR)
        if not await s.canned.delete(int_param(request, "id")):
            raise ApiError(404, "not_found", "no such canned response")
        return web.json_response({"deleted": int_param(request, "id")})

    async def get_sla(request: web.Request) -> web.Response:
        require(request, Role.SUPERVISOR)
        return web.json_response(await s.policies.describe())

    async def put_sla(request: web.Request) -> web.Response:
        """Any subset of ``{"profile", "targets": {"P0": {"first_response_s", ...}}, "peak_factor",
        "warn_before_s"}``, merged onto the policy in force and validated whole before anything is
        written; a 400 names the bad input in ``field``. New tickets only (ticketing.policy)."""
        p = require(request, Role.ADMIN)
        body = await json_body(request)
        try:
            change = parse_change(body, (await s.policies.state()).settings)
        except SlaSettingsError as exc:
            # ApiError's shape plus the field, so the console can point at the input.
            return web.json_response({"error": "bad_request", "message": exc.message, "field": exc.field},
                                     status=400)
        await s.policies.set_policy(change.settings, profile=change.profile, actor=p.id, now=s.clock())
        return web.json_response(await s.policies.describe())

    async def reset_sla_policy(request: web.Request) -> web.Response:
        """Back to the configured targets, peak factor and warning lead (the profile stays)."""
        p = require(request, Role.ADMIN)
        await s.policies.reset_policy(actor=p.id)
        return web.json_response(await s.policies.describe())

    async def alerts(request: web.Request) -> web.Response:
        require(request, Role.SUPERVISOR)
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await s.redis.xrevrange(  # type: ignore[assignment]
            s.keys.supervisor_alerts, count=100)
        return web.json_response({"alerts": [
            {"id": eid.decode(), **{k.decode(): v.decode() for k, v in fields.items()}} for eid, fields in entries]})

    async def metrics_json(request: web.Request) -> web.Response:
        """``?period=today|7d|30d`` (China-time days) or ``?start=&end=``; ``&group=agent|team|channel|day|hour``."""
        require(request, Role.SUPERVISOR)
        try:
            report = await build_report(s.engine, **report_args(dict(request.query), s.clock()))
        except ValueError as exc:
            raise ApiError(400, "bad_request", str(exc)) from exc
        return web.json_response(report)

    scraped: dict[str, Any] = {"at": None, "body": b""}

    async def prometheus(_request: web.Request) -> web.Response:
        """Prometheus text format, the last 24 h by channel. Each scrape scans tables, so the body is
        cached for 30 s; expose /metrics only on the internal network (see the README)."""
        now = s.clock()
        if scraped["at"] is None or now - scraped["at"] > timedelta(seconds=30):
            scraped["body"], scraped["at"] = await scrape(s.engine, now=now), now
        return web.Response(body=scraped["body"], headers={"Content-Type": CONTENT_TYPE})

    r = app.router
    r.add_get("/api/agents", list_agents)
    r.add_get("/api/colleagues", colleagues)
    r.add_post("/api/agents", create_agent)
    r.add_patch("/api/agents/{id}", update_agent)
    r.add_post("/api/agents/{id}/token", rotate_token)
    r.add_get("/api/customers/{channel}/{external_id}", get_customer)
    r.add_put("/api/customers/{channel}/{external_id}", put_customer)
    r.add_get("/api/canned", list_canned)
    r.add_post("/api/canned", create_canned)
    r.add_put("/api/canned/{id}", update_canned)
    r.add_delete("/api/canned/{id}", delete_canned)
    r.add_get("/api/sla", get_sla)
    r.add_put("/api/sla", put_sla)
    r.add_delete("/api/sla/policy", reset_sla_policy)
    r.add_get("/api/supervisor/alerts", alerts)
    r.add_get("/api/metrics", metrics_json)
    r.add_get("/metrics", prometheus)


def vars_of(item: Any) -> dict[str, Any]:
    """A frozen dataclass (slots) as a dict."""
    return asdict(item)
