"""Admin API (bearer token): knowledge articles CRUD + publish, search preview, tickets, transcripts."""

from __future__ import annotations

import dataclasses
import hmac
import json
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from gateway.http_errors import ApiError, Handler
from gateway.models import utcnow
from gateway.services import Services
from knowledge_index.article import Article, ArticleStatus
from ticketing.lifecycle import InvalidTransition
from ticketing.service import TicketNotFound

_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def _require_admin(services: Services) -> Any:
    expected = f"Bearer {services.settings.admin_token}".encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/") and not request.path.startswith("/api/webchat/"):
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise ApiError(401, "unauthorized", "missing or wrong admin token (Authorization: Bearer ...)")
        return await handler(request)

    return middleware


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value.isoformat() if isinstance(value, datetime) else value


def _article_json(a: Article) -> dict[str, Any]:
    return a.model_dump(mode="json")


async def _json_body(request: web.Request) -> dict[str, Any]:
    data = json.loads(await request.read() or b"null")
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "body must be a JSON object")
    return data


def _article_from(data: dict[str, Any], article_id: str) -> Article:
    if not article_id or len(article_id) > 128 or not set(article_id) <= _ID_CHARS:
        raise ApiError(400, "bad_request", "article id must be 1-128 characters of A-Z a-z 0-9 - _ .")
    try:
        return Article(
            id=article_id,
            title=data.get("title", ""),
            questions=tuple(data.get("questions") or ()),
            answer=data.get("answer", ""),
            tags=tuple(data.get("tags") or ()),
            language=data.get("language") or "zh",
            status=data.get("status") or ArticleStatus.DRAFT,
            updated_at=utcnow(),
        )
    except (ValidationError, TypeError) as exc:
        raise ApiError(400, "invalid_article", str(exc)) from exc


def setup_admin_api(app: web.Application, services: Services) -> None:
    app.middlewares.append(_require_admin(services))
    kb = services.kb

    async def list_articles(request: web.Request) -> web.Response:
        status = request.query.get("status")
        try:
            wanted = ArticleStatus(status) if status else None
        except ValueError as exc:
            raise ApiError(400, "bad_request", "status must be draft or published") from exc
        return web.json_response({"articles": [_article_json(a) for a in await kb.store.list_articles(wanted)]})

    async def get_article(request: web.Request) -> web.Response:
        article = await kb.store.get(request.match_info["id"])
        if article is None:
            raise ApiError(404, "not_found", "no such article")
        return web.json_response(_article_json(article))

    async def create_article(request: web.Request) -> web.Response:
        data = await _json_body(request)
        article_id = str(data.get("id") or "")
        if await kb.store.get(article_id) is not None:
            raise ApiError(409, "exists", f"article {article_id!r} exists; use PUT to change it")
        saved = await kb.save_article(_article_from(data, article_id))
        return web.json_response(_article_json(saved), status=201)

    async def put_article(request: web.Request) -> web.Response:
        data = await _json_body(request)
        saved = await kb.save_article(_article_from(data, request.match_info["id"]))
        return web.json_response(_article_json(saved))

    async def delete_article(request: web.Request) -> web.Response:
        if not await kb.delete_article(request.match_info["id"]):
            raise ApiError(404, "not_found", "no such article")
        return web.json_response({"deleted": request.match_info["id"]})

    def _status_setter(status: ArticleStatus) -> Any:
        async def handler(request: web.Request) -> web.Response:
            saved = await kb.set_status(request.match_info["id"], status)
            if saved is None:
                raise ApiError(404, "not_found", "no such article")
            return web.json_response(_article_json(saved))

        return handler

    async def search(request: web.Request) -> web.Response:
        data = await _json_body(request)
        text = data.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > 2000:
            raise ApiError(400, "bad_request", "text must be a non-empty string of at most 2000 characters")
        k = data.get("k", 5)
        if not isinstance(k, int) or not 1 <= k <= 50:
            raise ApiError(400, "bad_request", "k must be an integer from 1 to 50")
        hits = await kb.search(text, k)
        decision = kb.decide(hits)
        return web.json_response({
            "hits": [
                {**h.model_dump(mode="json"), "title": (a.title if (a := kb.article(h.article_id)) else None)}
                for h in hits
            ],
            "answer": decision.answer.article_id if decision.answer else None,
            "declined": decision.declined,
            "reason": decision.reason,
            "threshold": decision.threshold,
        })

    async def list_tickets(_request: web.Request) -> web.Response:
        tickets = await services.tickets.list_open()
        return web.json_response({"tickets": [
            _jsonable(dataclasses.asdict(t)) for t in tickets
        ]})

    async def conversation(request: web.Request) -> web.Response:
        conv_id = request.match_info["id"]
        conv = await services.conversations.get(conv_id)
        if conv is None:
            raise ApiError(404, "not_found", "no such conversation")
        lines = await services.conversations.transcript(conv_id)
        return web.json_response({
            "conversation": _jsonable(conv),
            "messages": [_jsonable(dataclasses.asdict(line)) for line in lines],
        })

    # --- agent actions on tickets (the agent console arrives with the web console issue) ----------
    svc = services.ticket_service

    def _agent(data: dict[str, Any]) -> str:
        agent = data.get("agent_id")
        if not isinstance(agent, str) or not 1 <= len(agent) <= 64:
            raise ApiError(400, "bad_request", "agent_id (1-64 characters) is required")
        return agent

    def _ticket_action(action: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            try:
                ticket_id = int(request.match_info["id"])
            except ValueError as exc:
                raise ApiError(404, "not_found", "no such ticket") from exc
            data = await _json_body(request)
            agent = _agent(data)
            try:
                if action == "assign":
                    result: dict[str, Any] = await svc.assign(ticket_id, agent, actor=agent)
                elif action == "resolve":
                    result = await svc.resolve(ticket_id, actor=agent)
                elif action == "hand-back":
                    result = await svc.hand_back(ticket_id, actor=agent)
                else:
                    text = data.get("text")
                    if not isinstance(text, str) or not text.strip() or len(text) > 4000:
                        raise ApiError(400, "bad_request", "text must be 1-4000 characters")
                    out = await svc.reply(ticket_id, agent_id=agent, text=text.strip())
                    result = {"message_id": out.message_id}
            except TicketNotFound as exc:
                raise ApiError(404, "not_found", str(exc)) from exc
            except InvalidTransition as exc:
                raise ApiError(409, "invalid_transition", str(exc)) from exc
            return web.json_response(_jsonable(result))

        return handler

    async def get_ticket(request: web.Request) -> web.Response:
        try:
            return web.json_response(_jsonable(await svc.get(int(request.match_info["id"]))))
        except (ValueError, TicketNotFound) as exc:
            raise ApiError(404, "not_found", "no such ticket") from exc

    r = app.router
    r.add_get("/api/tickets/{id}", get_ticket)
    for action in ("assign", "reply", "resolve", "hand-back"):
        r.add_post(f"/api/tickets/{{id}}/{action}", _ticket_action(action))
    r.add_get("/api/kb/articles", list_articles)
    r.add_post("/api/kb/articles", create_article)
    r.add_get("/api/kb/articles/{id}", get_article)
    r.add_put("/api/kb/articles/{id}", put_article)
    r.add_delete("/api/kb/articles/{id}", delete_article)
    r.add_post("/api/kb/articles/{id}/publish", _status_setter(ArticleStatus.PUBLISHED))
    r.add_post("/api/kb/articles/{id}/unpublish", _status_setter(ArticleStatus.DRAFT))
    r.add_post("/api/kb/search", search)
    r.add_get("/api/tickets", list_tickets)
    r.add_get("/api/conversations/{id}", conversation)
