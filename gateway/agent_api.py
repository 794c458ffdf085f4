"""Agent API: queues, claim, assign, reply (with canned responses), notes, transfer, resolve, reopen,
hand back to the bot, agent-assist suggestions, presence, and a live event stream (SSE).

Authorization: every route needs a staff token (gateway.auth). Agents see and act on their own
tickets and their skills' queues only (ticketing.queues.visible_to); supervisors and admins on all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from gateway.api_common import int_param, json_body, jsonable, text_field
from gateway.auth import CONSOLE_AUTH, Principal, Role, caller, current_session, require
from gateway.http_errors import ApiError
from gateway.models import ConversationEvent
from gateway.queue_cards import with_card_facts
from gateway.services import Services
from ticketing.canned import CannedError, MissingVariables, order_number_from, render
from ticketing.customers import Identity
from ticketing.dispatcher import CLAIM_HTTP_STATUS, ClaimRejected, RoutingBusy
from ticketing.lifecycle import InvalidTransition
from ticketing.queues import VIEWS, Viewer, held_skills, in_queue_of, list_tickets, visible_to
from ticketing.routing import Presence
from ticketing.service import TicketConflict, TicketNotFound

KEEPALIVE_S = 15.0  # SSE comment every this often when idle; also how often a cookie session is rechecked


def viewer(p: Principal) -> Viewer:
    return Viewer(p.id, p.skills, p.at_least(Role.SUPERVISOR))


def setup_agent_api(app: web.Application, s: Services) -> None:
    svc = s.ticket_service

    async def visible_ticket(request: web.Request, *, act: bool = False) -> tuple[Principal, dict[str, Any]]:
        """The ticket if the caller may see it (404 otherwise: no probing other agents' tickets).
        ``act``: agents may only act on tickets assigned to them."""
        p = caller(request)
        ticket_id = int_param(request, "id")
        try:
            row = await svc.get(ticket_id)
        except TicketNotFound as exc:
            raise ApiError(404, "not_found", "no such ticket") from exc
        if not visible_to(viewer(p), row, await held_skills(s.engine)):
            raise ApiError(404, "not_found", "no such ticket")
        if act and not p.at_least(Role.SUPERVISOR) and row["assignee_id"] != p.id:
            raise ApiError(403, "forbidden", "this ticket is not assigned to you; claim it first")
        return p, row

    @contextlib.asynccontextmanager
    async def routing_lock() -> AsyncIterator[None]:
        try:
            async with s.dispatcher.locked():
                yield
        except RoutingBusy as exc:
            raise ApiError(503, "busy", "分配繁忙，请稍后重试 / routing is busy, retry in a moment") from exc

    async def me(request: web.Request) -> web.Response:
        p = caller(request)
        presence = await s.presence.get(p.id)
        return web.json_response({"id": p.id, "name": p.name, "role": p.role.value, "skills": sorted(p.skills),
                                  "max_concurrent": p.max_concurrent, "presence": presence.value})

    async def set_presence(request: web.Request) -> web.Response:
        p = caller(request)
        status = (await json_body(request)).get("status")
        if status == "offline":
            await s.presence.go_offline(p.id)
        elif status in ("online", "away"):
            await s.presence.heartbeat(p.id, Presence(status))
        else:
            raise ApiError(400, "bad_request", "status must be online, away or offline")
        return web.json_response({"id": p.id, "presence": status})

    async def tickets(request: web.Request) -> web.Response:
        p = caller(request)
        view = request.query.get("view", "active")
        if view not in VIEWS:
            raise ApiError(400, "bad_request", f"view must be one of {', '.join(VIEWS)}")
        priority = request.query.get("priority")
        if priority is not None and priority not in {"0", "1", "2", "3", "P0", "P1", "P2", "P3"}:
            raise ApiError(400, "bad_request", "priority must be 0-3 (or P0-P3)")
        statuses = [x for x in request.query.get("status", "").split(",") if x]
        rows = await list_tickets(s.engine, viewer(p), view=view, statuses=statuses,
                                  priority=int(priority[-1]) if priority else None,
                                  limit=min(int_query(request, "limit", 200), 1000))
        rows = await with_card_facts(s.engine, rows)  # profile name + last message for the console's cards
        return web.json_response({"tickets": jsonable(rows)})

    async def ticket(request: web.Request) -> web.Response:
        _p, row = await visible_ticket(request)
        transcript = await s.conversations.transcript_with_sentiment(row["conversation_id"])
        conv = await s.conversations.get(row["conversation_id"]) or {}
        profile = await s.profiles.get(Identity(conv.get("channel", ""), conv.get("customer_external_id", "")))
        return web.json_response(jsonable({**row, "conversation": conv, "messages": transcript,
                                           "customer": profile}))

    async def claim(request: web.Request) -> web.Response:
        p, row = await visible_ticket(request)
        try:
            row = await s.dispatcher.claim(p.id, row["id"])
        except ClaimRejected as exc:
            raise ApiError(CLAIM_HTTP_STATUS.get(exc.code, 409), exc.code, str(exc)) from exc
        except RoutingBusy as exc:
            raise ApiError(503, "busy", "分配繁忙，请稍后重试 / routing is busy, retry in a moment") from exc
        return web.json_response(jsonable(row))

    async def assign(request: web.Request) -> web.Response:
        require(request, Role.SUPERVISOR)
        p, row = await visible_ticket(request)
        agent_id = text_field(await json_body(request), "agent_id", 64)
        if await s.agents.get(agent_id) is None:
            raise ApiError(400, "unknown_agent", f"no agent {agent_id!r}")
        async with routing_lock():  # serialised with the router: capacities are read fresh
            return await _guard(svc.assign(row["id"], agent_id, actor=p.id))

    async def transfer(request: web.Request) -> web.Response:
        p, row = await visible_ticket(request, act=True)
        data = await json_body(request)
        agent_id, skills = data.get("agent_id"), data.get("skills")
        if bool(agent_id) == (skills is not None):
            raise ApiError(400, "bad_request", "give either agent_id or skills (a list) to transfer to")
        if agent_id and (not isinstance(agent_id, str) or await s.agents.get(agent_id) is None):
            raise ApiError(400, "unknown_agent", f"no agent {agent_id!r}")
        if skills is not None and (not isinstance(skills, list) or not all(isinstance(x, str) and 0 < len(x) <= 32
                                                                            for x in skills)):
            raise ApiError(400, "bad_request", "skills must be a list of skill names")
        async with routing_lock():
            return await _guard(svc.transfer(row["id"], actor=p.id, agent_id=agent_id or None, skills=skills))

    async def reply(request: web.Request) -> web.Response:
        p, row = await visible_ticket(request, act=True)
        data = await json_body(request)
        text = await _reply_text(p, row, data)
        try:
            out = await svc.reply(row["id"], agent_id=p.id, text=text)
        except InvalidTransition as exc:
            raise ApiError(409, "invalid_transition", str(exc)) from exc
        return web.json_response({"message_id": out.message_id, "text": out.text})

    async def _reply_text(p: Principal, row: dict[str, Any], data: dict[str, Any]) -> str:
        if data.get("canned_id") is None:
            return text_field(data, "text", 4000)
        canned = await s.canned.get(int(data["canned_id"])) if str(data["canned_id"]).isdigit() else None
        if canned is None:
            raise ApiError(400, "unknown_canned", "no such canned response")
        variables = await _variables(p, row)
        extra = data.get("variables") or {}
        if not isinstance(extra, dict):
            raise ApiError(400, "bad_request", "variables must be an object")
        variables.update({k: str(v) for k, v in extra.items() if isinstance(v, str | int)})
        try:
            return render(canned.text, variables, language=canned.language)
        except MissingVariables as exc:
            raise ApiError(422, "missing_variables", str(exc)) from exc
        except CannedError as exc:
            raise ApiError(400, "bad_template", str(exc)) from exc

    async def _variables(p: Principal, row: dict[str, Any]) -> dict[str, str | None]:
        conv = await s.conversations.get(row["conversation_id"]) or {}
        profile = await s.profiles.get(Identity(conv.get("channel", ""), conv.get("customer_external_id", "")))
        texts = await s.conversations.recent_customer_texts(row["conversation_id"])
        return {"customer_name": (profile or {}).get("name") or conv.get("customer_name"),
                "agent_name": p.name or p.id, "ticket_id": str(row["id"]), "order_number": order_number_from(texts)}

    async def preview(request: web.Request) -> web.Response:
        p, row = await visible_ticket(request)
        return web.json_response({"text": await _reply_text(p, row, await json_body(request))})

    async def note(request: web.Request) -> web.Response:
        p, row = await visible_ticket(request)
        text = text_field(await json_body(request), "text", 4000)
        return await _guard(svc.note(row["id"], actor=p.id, text=text))

    def simple(action: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            p, row = await visible_ticket(request, act=action != "reopen")
            if action == "reopen" and not p.at_least(Role.SUPERVISOR) and row["assignee_id"] != p.id:
                raise ApiError(403, "forbidden", "only the ticket's agent or a supervisor can reopen it")
            call = {"resolve": svc.resolve, "hand-back": svc.hand_back, "reopen": svc.reopen}[action]
            return await _guard(call(row["id"], actor=p.id))
        return handler

    async def suggestions(request: web.Request) -> web.Response:
        _p, row = await visible_ticket(request)
        lines = await s.conversations.transcript(row["conversation_id"])
        last = next((ln.text for ln in reversed(lines) if ln.direction == "in" and ln.text.strip()), "")
        if not last:
            return web.json_response({"query": "", "suggestions": []})
        hits = await s.kb.search(last, 5)
        decision = s.kb.decide(hits)
        out = []
        for h in hits[:3]:
            article = s.kb.article(h.article_id)
            if article is not None:
                out.append({"article_id": article.id, "title": article.title, "answer": article.answer,
                            "score": round(h.score, 4), "tags": list(article.tags)})
        return web.json_response({"query": last, "confident": not decision.declined, "suggestions": out})

    async def events(request: web.Request) -> web.StreamResponse:
        """Live events for the caller: their tickets, their queues (supervisors: everything)."""
        p = caller(request)
        v = viewer(p)
        held = await held_skills(s.engine)
        session = current_session(request)
        loop = asyncio.get_running_loop()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        await resp.write(b": connected\n\n")
        pubsub = s.redis.pubsub()
        try:
            await pubsub.subscribe(s.keys.events_channel())
            checked = loop.time()
            while True:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=KEEPALIVE_S)
                if session is not None and loop.time() - checked >= KEEPALIVE_S:
                    # Authentication happened once, at connect: a logout, password change or
                    # deactivation must also end a stream that stays open for hours.
                    checked = loop.time()
                    if await request.app[CONSOLE_AUTH].resolve(session.session_id) is None:
                        break
                if msg is None:
                    await resp.write(b": keep-alive\n\n")
                    continue
                event = ConversationEvent.model_validate_json(msg["data"])
                if _wanted(v, event, held):
                    await resp.write(f"event: {event.kind.value}\ndata: {event.model_dump_json()}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError, aioredis.RedisError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
        return resp

    r = app.router
    r.add_get("/api/me", me)
    r.add_post("/api/me/presence", set_presence)
    r.add_get("/api/agent/events", events)
    r.add_get("/api/tickets", tickets)
    r.add_get("/api/tickets/{id}", ticket)
    r.add_get("/api/tickets/{id}/suggestions", suggestions)
    r.add_post("/api/tickets/{id}/claim", claim)
    r.add_post("/api/tickets/{id}/assign", assign)
    r.add_post("/api/tickets/{id}/transfer", transfer)
    r.add_post("/api/tickets/{id}/reply", reply)
    r.add_post("/api/tickets/{id}/reply-preview", preview)
    r.add_post("/api/tickets/{id}/note", note)
    for action in ("resolve", "reopen", "hand-back"):
        r.add_post(f"/api/tickets/{{id}}/{action}", simple(action))


def _wanted(v: Viewer, event: ConversationEvent, held: frozenset[str]) -> bool:
    """Whether the viewer may see this event: the ``visible_to`` rule applied to the ticket facts the
    event carries. Every kind an agent needs per conversation carries them — message_received once a
    human owns the chat (bot worker, from ``on_customer_message``) and customer_typing (only published
    for a conversation with an open ticket, see gateway.typing_indicator) — so no kind needs a special
    case; events without a ticket_id (bot-only chats) reach supervisors and admins only."""
    if v.sees_all:
        return True
    data = event.data
    if "ticket_id" not in data:
        return False
    if data.get("assignee_id") == v.id:
        return True
    row = {"status": data.get("status") or "new", "assignee_id": data.get("assignee_id"),
           "skills": data.get("skills") or []}
    return in_queue_of(row, v.skills, held)


def int_query(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ApiError(400, "bad_request", f"{name} must be a positive integer")
    return int(raw)


async def _guard(call: Any) -> web.Response:
    try:
        result = await call
    except TicketNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except InvalidTransition as exc:
        raise ApiError(409, "invalid_transition", str(exc)) from exc
    except TicketConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    return web.json_response(jsonable(result))
