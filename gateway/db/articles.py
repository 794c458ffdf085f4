"""Knowledge articles in the database (the source of truth; the faiss index is derived from it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.db.schema import articles
from gateway.models import utcnow
from knowledge_index.article import Article, ArticleStatus


def _article(m: Any) -> Article:
    return Article(
        id=m["id"],
        title=m["title"],
        questions=tuple(m["questions"] or ()),
        answer=m["answer"],
        tags=tuple(m["tags"] or ()),
        language=m["language"],
        status=ArticleStatus(m["status"]),
        updated_at=m["updated_at"],
    )


async def _upsert_in(conn: AsyncConnection, article: Article, now: datetime) -> None:
    values = {
        "title": article.title,
        "questions": list(article.questions),
        "answer": article.answer,
        "tags": list(article.tags),
        "language": article.language,
        "status": article.status.value,
        "updated_at": now,
    }
    result = await conn.execute(update(articles).where(articles.c.id == article.id).values(**values))
    if not result.rowcount:
        await conn.execute(articles.insert().values(id=article.id, created_at=now, **values))


class ArticleStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def list_articles(self, status: ArticleStatus | None = None) -> list[Article]:
        query = select(articles).order_by(articles.c.id)
        if status is not None:
            query = query.where(articles.c.status == status.value)
        async with self.engine.connect() as conn:
            return [_article(r._mapping) for r in await conn.execute(query)]

    async def get(self, article_id: str) -> Article | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(articles).where(articles.c.id == article_id))).first()
        return _article(row._mapping) if row else None

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(articles.c.id))
            return len(rows.all())

    async def upsert(self, article: Article) -> Article:
        """Create or replace; ``updated_at`` is set here, so the index sees every change as new."""
        now = utcnow()
        async with self.engine.begin() as conn:
            await _upsert_in(conn, article, now)
        return article.model_copy(update={"updated_at": now})

    async def upsert_many(self, items: list[Article]) -> int:
        """Create or replace every item in one transaction: a bulk import lands whole or not at all."""
        now = utcnow()
        async with self.engine.begin() as conn:
            for item in items:
                await _upsert_in(conn, item, now)
        return len(items)

    async def set_status(self, article_id: str, status: ArticleStatus) -> Article | None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(articles).where(articles.c.id == article_id).values(status=status.value, updated_at=utcnow())
            )
        return await self.get(article_id) if result.rowcount else None

    async def delete(self, article_id: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(articles).where(articles.c.id == article_id))
        return bool(result.rowcount)
