"""Shared fixtures: the real (fast) USE embedder and a tiny hand-written bilingual KB."""

from __future__ import annotations

import pytest
from ki_helpers import make_article

from knowledge_index.article import Article, ArticleStatus
from knowledge_index.embedder import UseOnnxEmbedder, load_embedder


@pytest.fixture(scope="session")
def use_embedder() -> UseOnnxEmbedder:
    embedder = load_embedder("use-multilingual")
    assert isinstance(embedder, UseOnnxEmbedder)
    return embedder


@pytest.fixture
def small_kb() -> list[Article]:
    return [
        make_article("refund", "怎么申请退款", "退款多久到账", "钱什么时候退回来"),
        make_article("shipping", "什么时候发货", "下单后多久发货", "快递几天能到"),
        make_article("invoice", "可以开发票吗", "怎么开增值税发票"),
        make_article("size", "衣服尺码怎么选", "身高170穿什么码"),
        make_article("return_en", "How do I return an item?", "Can I send my order back?", language="en"),
        make_article("track_en", "Where is my package?", "How can I track my order?", language="en"),
        make_article("draft", "双11预售规则", status=ArticleStatus.DRAFT),
    ]
