from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import numpy as np
from ki_helpers import make_article

from knowledge_index.article import Article, ArticleStatus
from knowledge_index.embedder import Embedder
from knowledge_index.retriever import Decision, Hit, Retriever, fingerprint_articles


def build(embedder: Embedder, kb: list[Article], **kwargs: float) -> Retriever:
    retriever = Retriever(embedder, **kwargs)  # type: ignore[arg-type]
    retriever.build(kb)
    return retriever


def test_embedder_contract(use_embedder: Embedder) -> None:
    vectors = use_embedder.encode(["怎么退款", "how do I get a refund"])
    assert vectors.shape == (2, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert use_embedder.encode([]).shape == (0, 512)


def test_search_ranks_articles_and_skips_drafts(use_embedder: Embedder, small_kb: list[Article]) -> None:
    retriever = build(use_embedder, small_kb)
    assert len(retriever) == 6  # the draft is not indexed
    hits = retriever.search("退款多久能到账", k=3)
    assert hits[0].article_id == "refund"
    assert hits[0].matched == "退款多久到账"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len({h.article_id for h in hits}) == 3
    assert retriever.search("how can I track my order", k=1)[0].article_id == "track_en"
    assert all(h.article_id != "draft" for h in retriever.search("双11预售规则", k=10))


def test_fused_score_combines_dense_and_lexical(use_embedder: Embedder, small_kb: list[Article]) -> None:
    retriever = build(use_embedder, small_kb, fusion_weight=0.25)
    hit = retriever.search("什么时候发货", k=1)[0]
    assert hit.article_id == "shipping"
    assert hit.lexical > 0.99 and hit.dense > 0.99
    assert abs(hit.score - (0.75 * hit.dense + 0.25 * hit.lexical)) < 1e-9


def test_incremental_upsert_and_remove(use_embedder: Embedder, small_kb: list[Article]) -> None:
    retriever = build(use_embedder, small_kb)
    query = "支持七天无理由退换吗"
    assert all(h.article_id != "seven_day" for h in retriever.search(query))

    retriever.upsert(make_article("seven_day", "支持七天无理由退换吗", "七天无理由"))
    assert retriever.search(query, k=1)[0].article_id == "seven_day"

    # Editing an article re-embeds only it: its new phrasing is found, the old one is gone.
    retriever.upsert(make_article("seven_day", "质量问题包退换"))
    assert retriever.search("质量问题包退换", k=1)[0].article_id == "seven_day"
    assert retriever.search(query, k=1)[0].matched != "支持七天无理由退换吗"

    assert retriever.remove("seven_day") is True
    assert retriever.remove("seven_day") is False
    assert all(h.article_id != "seven_day" for h in retriever.search(query))

    # Unpublishing via upsert removes the article too.
    retriever.upsert(make_article("refund", "怎么申请退款", status=ArticleStatus.DRAFT))
    assert all(h.article_id != "refund" for h in retriever.search("怎么申请退款"))


def test_decide_declines_below_threshold(use_embedder: Embedder, small_kb: list[Article]) -> None:
    retriever = build(use_embedder, small_kb, threshold=0.6)
    answered = retriever.decide(retriever.search("怎么申请退款"))
    assert not answered.declined and answered.answer is not None
    assert answered.answer.article_id == "refund" and answered.reason == "confident"

    hits = retriever.search("明天北京天气怎么样")
    assert hits and hits[0].score < 0.6
    declined = retriever.decide(hits)
    assert declined == Decision(answer=None, declined=True, reason="low_confidence", threshold=0.6)

    assert retriever.decide([]).reason == "no_articles"
    manual = Hit(article_id="x", score=0.59, dense=0.59, lexical=0.0, matched="x")
    assert retriever.decide([manual]).declined


def test_empty_retriever_declines(use_embedder: Embedder) -> None:
    retriever = build(use_embedder, [])
    hits = retriever.search("anything")
    assert hits == [] and retriever.decide(hits).reason == "no_articles"


def test_persistence_round_trip_and_rebuild_when_stale(
    use_embedder: Embedder, small_kb: list[Article], tmp_path: Path
) -> None:
    first = Retriever.load_or_build(tmp_path, use_embedder, small_kb)
    assert not first.loaded_from_disk
    assert (tmp_path / "meta.json").is_file() and (tmp_path / "vectors.faiss").is_file()

    second = Retriever.load_or_build(tmp_path, use_embedder, small_kb)
    assert second.loaded_from_disk
    assert second.fingerprint == first.fingerprint
    for query in ("退款多久到账", "Where is my package?", "开发票"):
        assert second.search(query) == first.search(query)

    # A newer updated_at on one article changes the fingerprint: rebuild, then the change is served.
    edited = [
        a.model_copy(update={"questions": ("我要退钱",), "updated_at": a.updated_at + timedelta(hours=1)})
        if a.id == "refund"
        else a
        for a in small_kb
    ]
    assert fingerprint_articles(edited, use_embedder.name) != first.fingerprint
    third = Retriever.load_or_build(tmp_path, use_embedder, edited)
    assert not third.loaded_from_disk
    assert third.search("我要退钱", k=1)[0].matched == "我要退钱"
    assert Retriever.load_or_build(tmp_path, use_embedder, edited).loaded_from_disk

    # Drafts do not count: adding one keeps the saved index valid.
    with_draft = [*edited, make_article("new_draft", "草稿", status=ArticleStatus.DRAFT)]
    assert Retriever.load_or_build(tmp_path, use_embedder, with_draft).loaded_from_disk


def test_corrupt_index_is_rebuilt(use_embedder: Embedder, small_kb: list[Article], tmp_path: Path) -> None:
    Retriever.load_or_build(tmp_path, use_embedder, small_kb)
    (tmp_path / "vectors.faiss").write_bytes(b"garbage")
    retriever = Retriever.load_or_build(tmp_path, use_embedder, small_kb)
    assert not retriever.loaded_from_disk
    assert retriever.search("怎么申请退款", k=1)[0].article_id == "refund"


async def test_concurrent_search_and_upsert(use_embedder: Embedder, small_kb: list[Article]) -> None:
    retriever = build(use_embedder, small_kb)

    async def edits() -> None:
        for i in range(20):
            await asyncio.to_thread(retriever.upsert, make_article(f"extra{i}", f"第{i}个问题"))
            await asyncio.to_thread(retriever.remove, f"extra{i - 1}")

    searches = [asyncio.to_thread(retriever.search, "怎么申请退款", 3) for _ in range(40)]
    results = await asyncio.gather(edits(), *searches)
    assert all(hits[0].article_id == "refund" for hits in results[1:])
