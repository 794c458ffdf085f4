from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge_index.article import (
    Article,
    ArticleStatus,
    KnowledgeBaseError,
    cjk_ratio,
    guess_language,
    load_kb_jsonl,
)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_shared_format_ignores_unknown_keys_and_fills_defaults(tmp_path: Path) -> None:
    kb = write_lines(
        tmp_path / "kb.jsonl",
        [
            json.dumps({"id": "a1", "title": "怎么退货", "questions": ["退货流程"], "answer": "", "source": "x"}),
            "",
            json.dumps({"id": "a2", "title": "Where is my parcel?", "questions": [], "answer": "Track it here."}),
            json.dumps(
                {
                    "id": "a3",
                    "title": "Promo",
                    "questions": [],
                    "answer": "",
                    "tags": ["promo"],
                    "language": "zh",
                    "status": "draft",
                    "updated_at": "2024-11-11T00:00:00+08:00",
                }
            ),
        ],
    )
    articles = load_kb_jsonl(kb)
    assert [a.id for a in articles] == ["a1", "a2", "a3"]
    assert articles[0].language == "zh" and articles[0].questions == ("退货流程",)
    assert articles[1].language == "en" and articles[1].status is ArticleStatus.PUBLISHED
    assert articles[2].tags == ("promo",) and articles[2].status is ArticleStatus.DRAFT
    assert articles[2].language == "zh"  # explicit value wins over guessing
    assert articles[2].updated_at.utcoffset() is not None


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "invalid JSON"),
        ('["a list"]', "expected a JSON object"),
        ('{"id": "x"}', "title"),
        ('{"id": "x", "title": "t", "status": "archived"}', "status"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path: Path, bad_line: str, message: str) -> None:
    kb = write_lines(tmp_path / "kb.jsonl", ['{"id": "ok", "title": "fine"}', "", bad_line])
    with pytest.raises(KnowledgeBaseError) as info:
        load_kb_jsonl(kb)
    assert f"{kb}:3:" in str(info.value)
    assert message in str(info.value)


def test_duplicate_id_is_an_error(tmp_path: Path) -> None:
    kb = write_lines(tmp_path / "kb.jsonl", ['{"id": "a", "title": "x"}', '{"id": "a", "title": "y"}'])
    with pytest.raises(KnowledgeBaseError, match=r":2: duplicate article id 'a'"):
        load_kb_jsonl(kb)


def test_phrasings_dedupe_and_drop_empty() -> None:
    article = Article(id="a", title=" 怎么退货 ", questions=("怎么退货", "", "  ", "退货流程", "退货流程"))
    assert article.phrasings() == ("怎么退货", "退货流程")


def test_article_is_frozen() -> None:
    article = Article(id="a", title="t")
    with pytest.raises(ValueError):
        article.title = "changed"  # type: ignore[misc]


def test_language_guess() -> None:
    assert guess_language(["iPhone 15 Pro 怎么退货"]) == "zh"
    assert guess_language(["How do I return my iPhone?"]) == "en"
    assert cjk_ratio("123 !!") == 0.0
