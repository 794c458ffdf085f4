"""FAQ articles: the unit the knowledge index retrieves, and the JSONL loader for knowledge bases.

An article is one canonical question (``title``) plus alternate phrasings (相似问, ``questions``)
and the reply text. Retrieval matches a customer message against every phrasing and ranks
*articles*, so the phrasings are what gets embedded and tokenized.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df]")
_LETTER = re.compile(r"[A-Za-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# Keys of the shared KB format plus our own extras; anything else in a line is ignored on purpose
# (the format promises readers ignore unknown keys, so sources may add fields freely).
_KNOWN_KEYS = frozenset({"id", "title", "questions", "answer", "tags", "language", "status", "updated_at"})

# Articles read from a file without ``updated_at`` get this fixed stamp rather than "now", so the
# index fingerprint stays stable across restarts; content changes are still caught because the
# fingerprint also hashes the phrasings (see retriever.fingerprint_articles).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ArticleStatus(StrEnum):
    """Lifecycle of an article: only published articles are ever indexed or answered."""

    DRAFT = "draft"
    PUBLISHED = "published"


class Article(BaseModel):
    """One FAQ article, immutable; edits produce a new instance with a newer ``updated_at``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=256)
    title: str
    questions: tuple[str, ...] = ()
    answer: str = ""
    tags: tuple[str, ...] = ()
    language: str = Field(default="zh", max_length=16)
    status: ArticleStatus = ArticleStatus.PUBLISHED
    updated_at: datetime = _EPOCH

    def phrasings(self) -> tuple[str, ...]:
        """Title then alternate questions, whitespace-trimmed, deduplicated in order, empties dropped."""
        seen: dict[str, None] = {}
        for text in (self.title, *self.questions):
            cleaned = text.strip()
            if cleaned and cleaned not in seen:
                seen[cleaned] = None
        return tuple(seen)


def cjk_ratio(text: str) -> float:
    """Share of letters in ``text`` that are CJK ideographs (0.0 when there are no letters)."""
    letters = _LETTER.findall(text)
    if not letters:
        return 0.0
    return sum(1 for ch in letters if _CJK.match(ch)) / len(letters)


def guess_language(texts: Iterable[str]) -> str:
    """Return "zh" when CJK ideographs make up at least a fifth of the letters, else "en".

    A fifth rather than a half because Chinese e-commerce text mixes in Latin brand and product
    names (iPhone 15 Pro 怎么退货) that would otherwise outvote the Chinese.
    """
    return "zh" if cjk_ratio(" ".join(texts)) >= 0.2 else "en"


class KnowledgeBaseError(ValueError):
    """A knowledge-base file could not be read; the message names the file and line."""


def article_from_record(record: dict[str, Any]) -> Article:
    """Build an article from one decoded JSONL object, ignoring unknown keys and filling defaults."""
    data = {key: value for key, value in record.items() if key in _KNOWN_KEYS}
    if "language" not in data or not data["language"]:
        questions = data.get("questions") or []
        data["language"] = guess_language([str(data.get("title", "")), *map(str, questions)])
    return Article.model_validate(data)


def load_kb_jsonl(path: str | Path) -> list[Article]:
    """Read a knowledge base in the shared JSONL format, one article per line.

    Blank lines are skipped. A line that is not a JSON object or fails validation raises
    :class:`KnowledgeBaseError` naming the file and the 1-based line number; duplicate ids too,
    because a silently overwritten article is a bug that is very hard to spot later.
    """
    path = Path(path)
    articles: list[Article] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise KnowledgeBaseError(f"{path}:{lineno}: invalid JSON: {exc.msg}") from exc
            if not isinstance(record, dict):
                raise KnowledgeBaseError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
            try:
                article = article_from_record(record)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, err['loc'])) or '<root>'}: {err['msg']}" for err in exc.errors()
                )
                raise KnowledgeBaseError(f"{path}:{lineno}: invalid article: {problems}") from exc
            if article.id in seen:
                raise KnowledgeBaseError(f"{path}:{lineno}: duplicate article id {article.id!r}")
            seen.add(article.id)
            articles.append(article)
    return articles
