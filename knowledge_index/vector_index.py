"""Dense index of phrasing vectors (faiss ``IndexIDMap2(IndexFlatIP)``) keyed back to articles.

Every phrasing gets its own int64 vector id; the index keeps ``vid -> (article id, phrasing
ordinal)`` so a search over phrasings can be folded into a per-article best score. Flat inner
product on unit vectors is exact cosine; at FAQ sizes (thousands to tens of thousands of
phrasings) it answers in well under a millisecond, so an approximate index is not worth its
recall loss or training step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

INDEX_FILE = "vectors.faiss"

_faiss_configured = False


def _faiss() -> Any:
    """Import faiss, pinned to one OpenMP thread.

    The serving path searches one query at a time; faiss then spins up an OpenMP team whose
    busy-waiting threads fight the embedder's own threads for the CPU. Measured on 2 cores with a
    2,371-phrasing index: ~10 ms per search multi-threaded vs well under 1 ms single-threaded.
    """
    global _faiss_configured
    import faiss

    if not _faiss_configured:
        faiss.omp_set_num_threads(1)
        _faiss_configured = True
    return faiss


META_FILE = "meta.json"


@dataclass(frozen=True, slots=True)
class DenseMatch:
    """Best dense match of one article: cosine score and the ordinal of the phrasing that scored it."""

    article_id: str
    score: float
    ordinal: int


class VectorIndex:
    """Exact cosine search over phrasing vectors with per-article upsert/remove and persistence."""

    def __init__(self, dim: int, *, model: str = "", fingerprint: str = "") -> None:
        faiss = _faiss()
        self.dim = dim
        self.model = model
        self.fingerprint = fingerprint
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._owner: dict[int, tuple[str, int]] = {}
        self._by_article: dict[str, list[int]] = {}
        self._next_vid = 0

    def __len__(self) -> int:
        return len(self._by_article)

    @property
    def vector_count(self) -> int:
        """Number of phrasing vectors stored."""
        return int(self._index.ntotal)

    def upsert(self, article_id: str, vectors: npt.NDArray[np.float32]) -> None:
        """Replace the article's vectors; row ``i`` is the article's phrasing number ``i``."""
        self.remove(article_id)
        matrix = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if matrix.shape[0] == 0:
            return
        vids = np.arange(self._next_vid, self._next_vid + matrix.shape[0], dtype=np.int64)
        self._next_vid += matrix.shape[0]
        self._index.add_with_ids(matrix, vids)
        for ordinal, vid in enumerate(vids.tolist()):
            self._owner[vid] = (article_id, ordinal)
        self._by_article[article_id] = vids.tolist()

    def add_many(self, owners: list[tuple[str, int]], vectors: npt.NDArray[np.float32]) -> None:
        """Bulk add for a fresh build: ``owners[i]`` is (article id, ordinal) of ``vectors[i]``.

        One faiss call instead of one per article; articles must not already be present.
        """
        matrix = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if matrix.shape[0] != len(owners):
            raise ValueError("owners and vectors differ in length")
        vids = np.arange(self._next_vid, self._next_vid + len(owners), dtype=np.int64)
        self._next_vid += len(owners)
        if len(owners):
            self._index.add_with_ids(matrix, vids)
        for vid, owner in zip(vids.tolist(), owners, strict=True):
            self._owner[vid] = owner
            self._by_article.setdefault(owner[0], []).append(vid)

    def remove(self, article_id: str) -> bool:
        """Drop the article's vectors; returns whether it was present."""
        vids = self._by_article.pop(article_id, None)
        if vids is None:
            return False
        self._index.remove_ids(np.asarray(vids, dtype=np.int64))
        for vid in vids:
            del self._owner[vid]
        return True

    def search(self, qvecs: npt.NDArray[np.float32], k: int) -> list[dict[str, DenseMatch]]:
        """Per query, the ``k`` best articles by their best phrasing's cosine (fewer if the index is smaller).

        Articles own several phrasings, so we ask faiss for more phrasings than ``k`` and widen
        the search until ``k`` distinct articles come back or every phrasing has been seen.
        """
        queries = np.ascontiguousarray(qvecs, dtype=np.float32).reshape(-1, self.dim)
        total = self.vector_count
        results: list[dict[str, DenseMatch]] = [{} for _ in range(queries.shape[0])]
        if total == 0 or k <= 0:
            return results
        want = min(len(self._by_article), k)
        fetch = min(total, max(4 * k, 32))
        pending = np.arange(queries.shape[0])
        while pending.size:
            scores, ids = self._index.search(queries[pending], fetch)
            still: list[int] = []
            for row, qi in enumerate(pending.tolist()):
                found: dict[str, DenseMatch] = {}
                for score, vid in zip(scores[row].tolist(), ids[row].tolist(), strict=True):
                    if vid < 0 or len(found) >= want:
                        continue
                    article_id, ordinal = self._owner[vid]
                    if article_id not in found:  # faiss returns best first, so the first hit is the max
                        found[article_id] = DenseMatch(article_id, float(score), ordinal)
                results[qi] = found
                if len(found) < want and fetch < total:
                    still.append(qi)
            pending = np.asarray(still, dtype=np.int64)
            fetch = min(total, fetch * 4)
        return results

    def score_articles(self, qvec: npt.NDArray[np.float32], article_ids: list[str]) -> dict[str, DenseMatch]:
        """Exact best cosine of ``qvec`` against the given articles (for fusing lexical-only candidates)."""
        query = np.asarray(qvec, dtype=np.float32).reshape(self.dim)
        out: dict[str, DenseMatch] = {}
        for article_id in article_ids:
            vids = self._by_article.get(article_id)
            if not vids:
                continue
            vectors = np.vstack([self._index.reconstruct(vid) for vid in vids])
            sims = vectors @ query
            best = int(np.argmax(sims))
            out[article_id] = DenseMatch(article_id, float(sims[best]), self._owner[vids[best]][1])
        return out

    def save(self, directory: Path) -> None:
        """Write ``vectors.faiss`` and ``meta.json`` (mapping, model name, dim, fingerprint)."""
        faiss = _faiss()
        directory.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(directory / INDEX_FILE))
        meta = {
            "model": self.model,
            "dim": self.dim,
            "fingerprint": self.fingerprint,
            "next_vid": self._next_vid,
            "owners": [[vid, article_id, ordinal] for vid, (article_id, ordinal) in self._owner.items()],
        }
        # Write-then-rename so a crash mid-save never leaves a meta.json that looks valid but isn't.
        tmp = directory / (META_FILE + ".tmp")
        tmp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        tmp.replace(directory / META_FILE)

    @classmethod
    def read_meta(cls, directory: Path) -> dict[str, Any] | None:
        """The saved metadata, or None when there is no readable saved index."""
        try:
            meta: dict[str, Any] = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return meta if (directory / INDEX_FILE).is_file() else None

    @classmethod
    def load(cls, directory: Path) -> VectorIndex:
        """Read an index written by :meth:`save`; raises ``FileNotFoundError``/``ValueError`` if unusable."""
        faiss = _faiss()
        meta = cls.read_meta(directory)
        if meta is None:
            raise FileNotFoundError(f"no saved vector index in {directory}")
        index = cls(int(meta["dim"]), model=str(meta["model"]), fingerprint=str(meta["fingerprint"]))
        index._index = faiss.read_index(str(directory / INDEX_FILE))
        if index._index.d != index.dim:
            raise ValueError(f"{directory}: index dim {index._index.d} != meta dim {index.dim}")
        index._next_vid = int(meta["next_vid"])
        for vid, article_id, ordinal in meta["owners"]:
            index._owner[int(vid)] = (str(article_id), int(ordinal))
            index._by_article.setdefault(str(article_id), []).append(int(vid))
        if len(index._owner) != index.vector_count:
            raise ValueError(f"{directory}: meta lists {len(index._owner)} vectors, index holds {index.vector_count}")
        return index
