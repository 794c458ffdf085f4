"""Admin API: knowledge articles CRUD + publish (admin; JSONL export/import in gateway.kb_io), search
preview (any staff), transcripts (supervisors; agents read transcripts through their tickets)."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from gateway.api_common import json_body, jsonable
from gateway.auth import Role, caller, require
from gateway.http_errors import ApiError
from gateway.kb_io import ID_RULE, setup_kb_io, valid_article_id
from gateway.models import utcnow
from gateway.services import Services
from knowledge_index.article import Article, ArticleStatus


def _article_json(a: Article) -> dict[str, Any]:
    return a.model_dump(mode="json")


def _article_from(data: dict[str, Any], article_id: str) -> Article:
    if not valid_article_id(article_id):
        raise ApiError(400, "bad_request", ID_RULE)
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
    kb = services.kb

    async def list_articles(request: web.Request) -> web.Response:
        require(request, Role.ADMIN)
        status = request.query.get("status")
        try:
            wanted = ArticleStatus(status) if status else None
        except ValueError as exc:
            raise ApiError(400, "bad_request", "status must be draft or published") from exc
        return web.json_response({"articles": [_article_json(a) for a in await kb.store.list_articles(wanted)]})

    async def get_article(request: web.Request) -> web.Response:
        require(request, Role.ADMIN)
        article = await kb.store.get(request.match_info["id"])
        if article is None:
            raise ApiError(404, "not_found", "no such article")
        return web.json_response(_article_json(article))

    async def create_article(request: web.Request) -> web.Response:
        require(request, Role.ADMIN)
        data = await json_body(request)
        article_id = str(data.get("id") or "")
        if await kb.store.get(article_id) is not None:
            raise ApiError(409, "exists", f"article {article_id!r} exists; use PUT to change it")
        saved = await kb.save_article(_article_from(data, article_id))
        return web.json_response(_article_json(saved), status=201)

    async def put_article(request: web.Request) -> web.Response:
        require(request, Role.ADMIN)
        data = await json_body(request)
        saved = await kb.save_article(_article_from(data, request.match_info["id"]))
        return web.json_response(_article_json(saved))

    async def delete_article(request: web.Request) -> web.Response:
        require(request, Role.ADMIN)
        if not await kb.delete_article(request.match_info["id"]):
            raise ApiError(404, "not_found", "no such article")
        return web.json_response({"deleted": request.match_info["id"]})

    def _status_setter(status: ArticleStatus) -> Any:
        async def handler(request: web.Request) -> web.Response:
            require(request, Role.ADMIN)
            saved = await kb.set_status(request.match_info["id"], status)
            if saved is None:
                raise ApiError(404, "not_found", "no such article")
            return web.json_response(_article_json(saved))

        return handler

    async def search(request: web.Request) -> web.Response:
        caller(request)  # agents use it too (agent assist), admins in the knowledge editor
        data = await json_body(request)
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

    async def conversation(request: web.Request) -> web.Response:
        require(request, Role.SUPERVISOR)
        conv_id = request.match_info["id"]
        conv = await services.conversations.get(conv_id)
        if conv is None:
            raise ApiError(404, "not_found", "no such conversation")
        lines = await services.conversations.transcript(conv_id)
        return web.json_response({
            "conversation": jsonable(conv),
            "messages": [jsonable(dataclasses.asdict(line)) for line in lines],
        })

    r = app.router
    r.add_get("/api/kb/articles", list_articles)
    r.add_post("/api/kb/articles", create_article)
    r.add_get("/api/kb/articles/{id}", get_article)
    r.add_put("/api/kb/articles/{id}", put_article)
    r.add_delete("/api/kb/articles/{id}", delete_article)
    r.add_post("/api/kb/articles/{id}/publish", _status_setter(ArticleStatus.PUBLISHED))
    r.add_post("/api/kb/articles/{id}/unpublish", _status_setter(ArticleStatus.DRAFT))
    r.add_post("/api/kb/search", search)
    r.add_get("/api/conversations/{id}", conversation)
    setup_kb_io(app, services)  # export/import (JSONL) live in gateway/kb_io.py
