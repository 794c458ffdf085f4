"""Knowledge base export and import over HTTP, as JSONL in the shared kb format.

One article per line: ``{"id", "title", "questions", "answer"}`` (the shared format) plus our own
``tags``, ``language``, ``status`` and ``updated_at``. The shared format tells readers to ignore keys
they do not know, so an export is also a valid input for anything that reads that format, and our
importer (``knowledge_index.article.article_from_record``) reads every key we write: export -> import
gives back the same articles.

An import is all or nothing: every line is validated before anything is written, and the writes go
through ``KnowledgeService.import_articles`` (one transaction, one index rebuild, one change-log
announcement per article so every other process reloads them), like ``huiliu kb import``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from gateway.auth import Role, require
from gateway.http_errors import ApiError
from gateway.knowledge import KnowledgeService
from gateway.services import Services
from knowledge_index.article import Article, ArticleStatus, article_from_record

MAX_ERRORS = 50  # lines reported in a 400: enough to fix a file, small enough to show
MODES = ("merge", "replace")
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
ID_RULE = "article id must be 1-128 characters of A-Z a-z 0-9 - _ ."


def valid_article_id(article_id: str) -> bool:
    """The id rule of the article editor; imports follow it too, so every imported article stays
    addressable (and editable) at ``/api/kb/articles/{id}``."""
    return 0 < len(article_id) <= 128 and set(article_id) <= _ID_CHARS


# --- export ------------------------------------------------------------------------------------------
def export_jsonl(articles: Sequence[Article]) -> bytes:
    """One JSON object per line, non-ASCII as-is (the shared format), keys in the model's order."""
    # json.dumps escapes "\n" and "\r" inside strings, so a line is always one article; U+2028 and
    # similar stay raw, which is why the importer splits on "\n" only.
    return "".join(json.dumps(a.model_dump(mode="json"), ensure_ascii=False) + "\n" for a in articles).encode()


# --- parsing -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LineError:
    line: int  # 1-based
    message: str


@dataclass(slots=True)
class Parsed:
    articles: list[Article] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)  # the first MAX_ERRORS
    bad_lines: int = 0  # all of them


def parse_kb(body: bytes) -> Parsed:
    """Validate every line of a kb JSONL body; blank lines are skipped.

    A line fails when it is not a JSON object, not a valid article, breaks the id rule, or repeats an
    earlier id (a silently overwritten article is very hard to spot later).
    """
    out = Parsed()

    def bad(line: int, message: str) -> None:
        out.bad_lines += 1
        if len(out.errors) < MAX_ERRORS:
            out.errors.append(LineError(line, message))

    try:
        text = body.decode("utf-8-sig")  # editors on Windows like to add a BOM
    except UnicodeDecodeError as exc:
        bad(body[: exc.start].count(b"\n") + 1, "不是 UTF-8 编码 / not UTF-8 text")
        return out
    first_line: dict[str, int] = {}
    # Split on "\n" only: str.splitlines would also split on U+2028 etc., which JSON allows raw.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            bad(lineno, f"JSON 格式错误 / invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(record, dict):
            bad(lineno, f"每行必须是一个 JSON 对象 / expected a JSON object, got {type(record).__name__}")
            continue
        try:
            article = article_from_record(record)
        except (ValidationError, TypeError) as exc:
            bad(lineno, f"文章无效 / invalid article: {_problems(exc)}")
            continue
        if not valid_article_id(article.id):
            bad(lineno, f"文章 id 无效 / {ID_RULE}: {article.id!r}")
            continue
        if article.id in first_line:
            bad(lineno, f"文章 id 重复 / duplicate article id {article.id!r} (first on line {first_line[article.id]})")
            continue
        first_line[article.id] = lineno
        out.articles.append(article)
    return out


def _problems(exc: ValidationError | TypeError) -> str:
    if isinstance(exc, TypeError):
        return str(exc)
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors())


# --- import ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int  # identical to the stored article: not rewritten (re-importing an export is a no-op)
    unpublished: int  # replace mode: published articles missing from the file, now drafts
    total: int  # articles in the file


def _content(a: Article) -> dict[str, Any]:
    # updated_at is the database's write stamp, not content: the store sets it on every write.
    return a.model_dump(exclude={"updated_at"})


def plan_import(existing: Sequence[Article], incoming: Sequence[Article], *,
                replace: bool) -> tuple[list[Article], ImportResult]:
    """The articles to write and the counts to report. Replace mode unpublishes (never deletes) the
    published articles the file does not mention: a draft loses nothing and can be published again."""
    stored = {a.id: a for a in existing}
    created = [a for a in incoming if a.id not in stored]
    updated = [a for a in incoming if a.id in stored and _content(stored[a.id]) != _content(a)]
    unpublish: list[Article] = []
    if replace:
        named = {a.id for a in incoming}
        unpublish = [a.model_copy(update={"status": ArticleStatus.DRAFT}) for a in existing
                     if a.id not in named and a.status is ArticleStatus.PUBLISHED]
    result = ImportResult(created=len(created), updated=len(updated),
                          unchanged=len(incoming) - len(created) - len(updated),
                          unpublished=len(unpublish), total=len(incoming))
    return [*created, *updated, *unpublish], result


async def import_kb(kb: KnowledgeService, incoming: Sequence[Article], *, replace: bool) -> ImportResult:
    """Write the changes in one go and make the index (here and in every other process) see them."""
    writes, result = plan_import(await kb.store.list_articles(), incoming, replace=replace)
    if writes:
        # Unpublishing goes through the same upsert (status draft): all writes share one transaction.
        await kb.import_articles(writes)
    return result


# --- routes ------------------------------------------------------------------------------------------
def setup_kb_io(app: web.Application, services: Services) -> None:
    """``GET /api/kb/export`` and ``POST /api/kb/import?mode=merge|replace`` (admins)."""
    kb = services.kb

    async def export(request: web.Request) -> web.Response:
        require(request, Role.ADMIN)
        body = export_jsonl(await kb.store.list_articles())
        filename = f"huiliu-kb-{services.clock():%Y%m%d}.jsonl"
        return web.Response(body=body, content_type="application/x-ndjson", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    async def import_(request: web.Request) -> web.Response:
        require(request, Role.ADMIN)
        mode = request.query.get("mode", "merge")
        if mode not in MODES:
            raise ApiError(400, "bad_request", "mode must be merge or replace")
        parsed = parse_kb(await request.read())  # read() enforces max_body_bytes (413)
        if parsed.bad_lines:
            return web.json_response({
                "error": "invalid_kb",
                "message": f"{parsed.bad_lines} 行有错误，未导入任何文章 / "
                           f"{parsed.bad_lines} bad lines, nothing was imported",
                "errors": [asdict(e) for e in parsed.errors],
            }, status=400)
        if not parsed.articles:
            # Refused rather than a no-op: in replace mode an empty file would unpublish everything.
            return web.json_response({"error": "invalid_kb", "message": "文件中没有文章 / the file holds no articles",
                                      "errors": []}, status=400)
        result = await import_kb(kb, parsed.articles, replace=mode == "replace")
        return web.json_response({"mode": mode, **asdict(result)})

    app.router.add_get("/api/kb/export", export)
    app.router.add_post("/api/kb/import", import_)
