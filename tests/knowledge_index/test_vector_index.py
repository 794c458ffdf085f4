from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge_index.embedder import normalize_rows
from knowledge_index.vector_index import VectorIndex


def unit(*rows: list[float]) -> np.ndarray:
    return normalize_rows(np.array(rows, dtype=np.float32))


def test_search_returns_distinct_articles_with_their_best_phrasing() -> None:
    index = VectorIndex(3, model="toy")
    # "a" owns many near-identical phrasings: k distinct articles must still come back.
    index.upsert("a", unit(*([[1.0, 0.0, 0.0]] * 40), [1.0, 0.1, 0.0]))
    index.upsert("b", unit([0.0, 1.0, 0.0], [0.9, 0.5, 0.0]))
    index.upsert("c", unit([0.0, 0.0, 1.0]))
    (result,) = index.search(unit([1.0, 0.2, 0.0]), k=3)
    assert list(result) == ["a", "b", "c"]
    assert result["a"].ordinal == 40  # the closest phrasing of "a"
    assert result["b"].ordinal == 1
    assert result["a"].score == pytest.approx(float(unit([1.0, 0.1, 0.0])[0] @ unit([1.0, 0.2, 0.0])[0]))


def test_upsert_replaces_and_remove_drops() -> None:
    index = VectorIndex(2)
    index.upsert("a", unit([1.0, 0.0]))
    index.upsert("b", unit([0.0, 1.0]))
    index.upsert("a", unit([0.0, 1.0], [0.1, 1.0]))  # "a" now points the other way
    assert index.vector_count == 3
    (result,) = index.search(unit([1.0, 0.0]), k=1)
    assert list(result) == ["a"] and result["a"].ordinal == 1
    assert index.remove("a") and not index.remove("a")
    assert index.vector_count == 1
    (result,) = index.search(unit([1.0, 0.0]), k=5)
    assert list(result) == ["b"]


def test_save_load_round_trip(tmp_path: Path) -> None:
    index = VectorIndex(2, model="toy", fingerprint="abc")
    index.upsert("a", unit([1.0, 0.0], [1.0, 1.0]))
    index.upsert("b", unit([0.0, 1.0]))
    index.remove("a")
    index.upsert("c", unit([1.0, 0.2]))
    index.save(tmp_path)
    loaded = VectorIndex.load(tmp_path)
    assert (loaded.model, loaded.dim, loaded.fingerprint) == ("toy", 2, "abc")
    query = unit([1.0, 0.1])
    assert loaded.search(query, k=2) == index.search(query, k=2)
    loaded.upsert("d", unit([1.0, 0.1]))  # new ids must not collide with saved ones
    assert list(loaded.search(query, k=1)[0]) == ["d"]
    assert loaded.vector_count == 3


def test_load_missing_dir_raises(tmp_path: Path) -> None:
    assert VectorIndex.read_meta(tmp_path) is None
    with pytest.raises(FileNotFoundError):
        VectorIndex.load(tmp_path)
