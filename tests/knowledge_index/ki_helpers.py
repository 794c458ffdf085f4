"""Helpers for the knowledge index tests (`tests/knowledge_index` is on sys.path via its conftest)."""

from __future__ import annotations

from datetime import UTC, datetime

from knowledge_index.article import Article, ArticleStatus

T0 = datetime(2024, 11, 1, tzinfo=UTC)


def make_article(
    article_id: str,
    title: str,
    *questions: str,
    language: str = "zh",
    status: ArticleStatus = ArticleStatus.PUBLISHED,
    updated_at: datetime = T0,
) -> Article:
    return Article(
        id=article_id,
        title=title,
        questions=questions,
        answer=f"answer of {article_id}",
        language=language,
        status=status,
        updated_at=updated_at,
    )
