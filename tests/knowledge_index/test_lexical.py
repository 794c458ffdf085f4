from __future__ import annotations

import logging

import pytest

from knowledge_index.lexical import LexicalIndex, tokenize


def test_chinese_tokens_have_words_and_bigrams() -> None:
    tokens = tokenize("花呗怎么还款")
    assert "怎么" in tokens  # a jieba word
    assert "还款" in tokens
    assert "花呗" in tokens  # a bigram even where jieba's dictionary splits it
    assert "么还" in tokens  # bigrams cross jieba word boundaries


def test_english_tokens_are_lowercase_words() -> None:
    assert tokenize("Where is my iPhone 15?") == ["where", "is", "my", "iphone", "15"]


def test_mixed_text() -> None:
    tokens = tokenize("iPhone退货")
    assert "iphone" in tokens and "退货" in tokens


def test_jieba_banner_is_silenced(capsys: pytest.CaptureFixture[str]) -> None:
    tokenize("初始化一次")
    tokenize("再来一次")
    captured = capsys.readouterr()
    assert "Building prefix dict" not in captured.out
    assert logging.getLogger("jieba").level >= logging.WARNING


def test_scores_normalized_and_incremental() -> None:
    index = LexicalIndex()
    index.add("refund", ["怎么申请退款", "退款多久到账"])
    index.add("ship", ["什么时候发货"])
    index.add("invoice", ["可以开发票吗"])

    best = index.search("怎么申请退款", k=3)
    assert best[0].article_id == "refund"
    assert best[0].score == pytest.approx(1.0)  # exact restatement of a phrasing
    assert best[0].phrasing == "怎么申请退款"
    assert all(0.0 <= m.score <= 1.0 for m in best)

    partial = index.search("退款", k=1)[0]
    assert partial.article_id == "refund" and 0.0 < partial.score <= 1.0

    assert index.remove("refund") is True
    assert index.remove("refund") is False
    assert all(m.article_id != "refund" for m in index.search("怎么申请退款", k=3))

    index.add("refund2", ["退款到账时间"])
    assert index.search("退款", k=1)[0].article_id == "refund2"
    assert len(index) == 3


def test_unknown_query_terms_lower_the_score() -> None:
    index = LexicalIndex()
    index.add("a", ["发货时间"])
    index.add("b", ["退款流程"])
    known = index.match("发货时间", k=1)["a"].score
    diluted = index.match("发货时间 天气预报 北京", k=1)["a"].score
    assert diluted < known


def test_match_includes_requested_articles_with_zero() -> None:
    index = LexicalIndex()
    index.add("a", ["发货时间"])
    index.add("b", ["退款流程"])
    result = index.match("发货", k=1, include=["b"])
    assert result["a"].score > 0
    assert result["b"].score == 0.0
    assert index.match("!!!", k=5) == {}
