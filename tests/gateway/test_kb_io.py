"""Knowledge base export/import over HTTP (gateway.kb_io) on SQLite and PostgreSQL.

The whole product runs on the parametrised ``engine``'s database (demo knowledge base loaded), over
real HTTP; the articles used here are written for these tests (never eval data).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.app import build_app
from gateway.config import Settings
from gateway.runtime import Runtime, open_services
from knowledge_index.article import Article, ArticleStatus, load_kb_jsonl
from knowledge_index.embedder import Embedder

ADMIN = {"Authorization": "Bearer test-admin-token"}
SHARED_KEYS = {"id": str, "title": str, "questions": list, "answer": str}


@pytest.fixture
async def served(settings: Settings, embedder: Embedder, redis: aioredis.Redis, engine: AsyncEngine, db_kind: str,
                 pg_schema: str | None) -> AsyncIterator[tuple[Runtime, TestClient[Any, Any]]]:
    url = engine.url.render_as_string(hide_password=False)
    async with open_services(settings.with_(database_url=url), embedder=embedder,
                             pg_schema=pg_schema if db_kind == "postgresql" else None) as rt:
        client: TestClient[Any, Any] = TestClient(TestServer(build_app(rt.services)))
        await client.start_server()
        try:
            yield rt, client
        finally:
            await client.close()


def content(articles: list[Article]) -> dict[str, dict[str, Any]]:
    return {a.id: a.model_dump(exclude={"updated_at"}) for a in articles}


async def export(client: TestClient[Any, Any]) -> bytes:
    resp = await client.get("/api/kb/export", headers=ADMIN)
    assert resp.status == 200
    return await resp.read()


async def do_import(client: TestClient[Any, Any], body: bytes | str, mode: str | None = None) -> tuple[int, Any]:
    params = {"mode": mode} if mode else {}
    resp = await client.post("/api/kb/import", data=body, params=params, headers=ADMIN)
    return resp.status, await resp.json()


async def test_export_is_the_shared_kb_format(served: tuple[Runtime, TestClient[Any, Any]], tmp_path: Path) -> None:
    rt, client = served
    # A draft with tags and a raw U+2028 in its answer (JSON allows it unescaped; it is no line break).
    resp = await client.post("/api/kb/articles", headers=ADMIN, json={
        "id": "gift-wrap", "title": "可以礼品包装吗？", "questions": ["能包装成礼物吗"],
        "answer": "可以的\u2028下单时备注即可", "tags": ["gift", "包装"]})
    assert resp.status == 201
    resp = await client.get("/api/kb/export", headers=ADMIN)
    assert resp.status == 200
    assert resp.content_type == "application/x-ndjson"
    day = rt.services.clock().strftime("%Y%m%d")
    assert resp.headers["Content-Disposition"] == f'attachment; filename="huiliu-kb-{day}.jsonl"'
    body = await resp.read()
    text = body.decode()
    assert "礼品包装" in text  # non-ASCII as-is, as the shared format writes it
    lines = text.split("\n")
    assert lines[-1] == "" and all(lines[:-1])  # one object per line, newline-terminated
    records = [json.loads(line) for line in lines[:-1]]
    stored = await rt.services.kb.store.list_articles()
    assert [r["id"] for r in records] == [a.id for a in stored]  # every article, drafts too
    for record in records:
        for key, kind in SHARED_KEYS.items():
            assert isinstance(record[key], kind)
        assert set(record) == {*SHARED_KEYS, "tags", "language", "status", "updated_at"}
    draft = next(r for r in records if r["id"] == "gift-wrap")
    assert draft["status"] == "draft" and draft["tags"] == ["gift", "包装"]
    assert {r["status"] for r in records} == {"draft", "published"}
    # The file loader used by `huiliu kb import` reads it back to exactly the stored articles.
    path = tmp_path / "export.jsonl"
    path.write_bytes(body)
    assert load_kb_jsonl(path) == stored


async def test_round_trip_is_lossless_and_reaches_the_index(served: tuple[Runtime, TestClient[Any, Any]]) -> None:
    rt, client = served
    kb = rt.services.kb
    original = await kb.store.list_articles()
    body = await export(client)
    # Change the knowledge base behind the file's back: delete, edit, unpublish, add.
    assert (await client.delete("/api/kb/articles/shipping-time", headers=ADMIN)).status == 200
    resp = await client.put("/api/kb/articles/greeting", headers=ADMIN,
                            json={"title": "你好", "answer": "改过的回答", "status": "published"})
    assert resp.status == 200
    assert (await client.post("/api/kb/articles/logistics-not-updating/unpublish", headers=ADMIN)).status == 200
    resp = await client.post("/api/kb/articles", headers=ADMIN, json={
        "id": "moon-cake", "title": "中秋月饼什么时候开售", "questions": ["月饼礼盒哪天上架"], "answer": "九月一日",
        "status": "published"})
    assert resp.status == 201
    assert kb.article("moon-cake") is not None and kb.article("shipping-time") is None
    changes_before = await rt.services.redis.xlen(rt.services.keys.kb_changes)

    status, result = await do_import(client, body, "replace")
    assert status == 200, result
    assert result == {"mode": "replace", "created": 1, "updated": 2, "unchanged": len(original) - 3,
                      "unpublished": 1, "total": len(original)}
    after = await kb.store.list_articles()
    assert content([a for a in after if a.id != "moon-cake"]) == content(original)
    moon = await kb.store.get("moon-cake")
    assert moon is not None and moon.status is ArticleStatus.DRAFT  # unpublished, not deleted
    # The index sees it like an edit in the article editor: restored articles answer, unpublished don't.
    assert kb.article("shipping-time") is not None and kb.article("moon-cake") is None
    assert (kb.article("greeting") or Article(id="x", title="")).answer != "改过的回答"
    hits = await kb.search("拍了多久能发", 3)
    assert hits and hits[0].article_id == "shipping-time"
    assert all(h.article_id != "moon-cake" for h in await kb.search("月饼礼盒哪天上架", 5))
    # ...and other processes are told which articles changed (they reload each from the database).
    entries: Any = await rt.services.redis.xrange(rt.services.keys.kb_changes)
    announced = {f[b"id"].decode() for _, f in entries}
    assert {"shipping-time", "greeting", "logistics-not-updating", "moon-cake"} <= announced
    assert await rt.services.redis.xlen(rt.services.keys.kb_changes) == changes_before + 4

    # Importing the same file again changes nothing at all (no rewrite, no new timestamps).
    stamps = {a.id: a.updated_at for a in await kb.store.list_articles()}
    status, result = await do_import(client, body)
    assert status == 200
    assert (result["created"], result["updated"], result["unchanged"], result["unpublished"]) == (0, 0,
                                                                                                  len(original), 0)
    assert {a.id: a.updated_at for a in await kb.store.list_articles()} == stamps


async def test_merge_reads_the_plain_shared_format(served: tuple[Runtime, TestClient[Any, Any]]) -> None:
    rt, client = served
    kb = rt.services.kb
    before = await kb.store.count()
    lines = [  # only the four shared keys (no status: published; no language: guessed)
        {"id": "pw-reset", "title": "How do I reset my password?", "questions": ["forgot my password"], "answer": ""},
        {"id": "invoice-zh", "title": "怎么开电子发票", "questions": [], "answer": "在订单详情页申请"},
    ]
    body = "\ufeff" + "\r\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\r\n\r\n"  # BOM, CRLF
    status, result = await do_import(client, body.encode())
    assert status == 200, result
    assert result == {"mode": "merge", "created": 2, "updated": 0, "unchanged": 0, "unpublished": 0, "total": 2}
    assert await kb.store.count() == before + 2  # merge leaves everything else alone
    pw = await kb.store.get("pw-reset")
    assert pw is not None and pw.status is ArticleStatus.PUBLISHED and pw.language == "en"
    zh = await kb.store.get("invoice-zh")
    assert zh is not None and zh.language == "zh"
    hits = await kb.search("I forgot my password", 3)
    assert hits and hits[0].article_id == "pw-reset"


async def test_bad_lines_are_reported_and_nothing_is_imported(served: tuple[Runtime, TestClient[Any, Any]]) -> None:
    rt, client = served
    kb = rt.services.kb
    before = content(await kb.store.list_articles())
    changes = await rt.services.redis.xlen(rt.services.keys.kb_changes)
    body = "\n".join([
        json.dumps({"id": "ok-1", "title": "好的", "questions": [], "answer": "a"}),  # 1: fine
        "{not json",  # 2
        "[1, 2]",  # 3
        json.dumps({"id": "no-title"}),  # 4
        json.dumps({"id": "a/b", "title": "x"}),  # 5: the editor's id rule
        "   ",  # 6: blank, skipped
        json.dumps({"id": "ok-1", "title": "again"}),  # 7: duplicate
        json.dumps({"id": "s", "title": "x", "status": "archived"}),  # 8
        json.dumps({"id": "greeting", "title": "x", "questions": "not a list"}),  # 9
    ])
    status, result = await do_import(client, body, "replace")
    assert status == 400
    assert result["error"] == "invalid_kb"
    assert [e["line"] for e in result["errors"]] == [2, 3, 4, 5, 7, 8, 9]
    assert "title" in result["errors"][2]["message"] and "ok-1" in result["errors"][4]["message"]
    assert content(await kb.store.list_articles()) == before  # not even line 1, not even in replace mode
    assert await rt.services.redis.xlen(rt.services.keys.kb_changes) == changes
    assert kb.article("ok-1") is None

    status, result = await do_import(client, "\n".join(["nope"] * 60))
    assert status == 400 and len(result["errors"]) == 50 and "60" in result["message"]
    status, result = await do_import(client, b'{"id": "x", "title": "ok"}\n{"id": "y", "title": "\xff"}\n')
    assert status == 400 and [e["line"] for e in result["errors"]] == [2]  # not UTF-8
    status, result = await do_import(client, "\n\n")
    assert status == 400 and result["error"] == "invalid_kb"  # empty: would unpublish everything in replace
    status, result = await do_import(client, body, "overwrite")
    assert status == 400 and result["error"] == "bad_request"
    too_big = b"x" * (rt.services.settings.max_body_bytes + 1)
    resp = await client.post("/api/kb/import", data=too_big, headers=ADMIN)
    assert resp.status == 413
    assert content(await kb.store.list_articles()) == before


async def test_only_admins_export_and_import(served: tuple[Runtime, TestClient[Any, Any]]) -> None:
    rt, client = served
    _, agent_token = await rt.services.agents.create("a1", "Agent", ["returns"], 3)
    _, sup_token = await rt.services.agents.create("s1", "Sup", [], 3, role="supervisor")
    line = json.dumps({"id": "sneaky", "title": "x", "questions": [], "answer": "y"})
    for headers, expected in (({}, 401), ({"Authorization": f"Bearer {agent_token}"}, 403),
                              ({"Authorization": f"Bearer {sup_token}"}, 403)):
        resp = await client.get("/api/kb/export", headers=headers)
        assert resp.status == expected
        assert not re.search(r"\btitle\b", await resp.text())  # no article leaks in the refusal
        resp = await client.post("/api/kb/import?mode=replace", data=line, headers=headers)
        assert resp.status == expected
    assert await rt.services.kb.store.get("sneaky") is None
