"""FAQ retrieval: dense cosine fused with BM25, ranked per article, with an out-of-scope decline.

``fused = (1 - w) * dense + w * lexical`` where ``dense`` is the best cosine over the article's
phrasings and ``lexical`` the best self-normalized BM25 (both per article, possibly from
different phrasings). The decision declines (escalates to a human) when the best fused score is
below the threshold. ``w`` and the threshold per embedder live in ``thresholds.py`` with how they
were tuned.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from knowledge_index.article import Article, ArticleStatus
from knowledge_index.embedder import Embedder, FloatMatrix
from knowledge_index.lexical import LexicalIndex
from knowledge_index.thresholds import fusion_weight_for, threshold_for
from knowledge_index.vector_index import VectorIndex

# Candidates are pooled from both the dense and the lexical top lists before fusing, so an
# article that only one side ranks highly can still win after fusion.
_POOL = 30
_BATCH = 256


class Hit(BaseModel):
    """One retrieved article: fused score plus its two components and the best matching phrasing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    article_id: str
    score: float
    dense: float
    lexical: float
    matched: str


class Decision(BaseModel):
    """Answer with ``answer`` or decline (escalate); ``reason`` says why it declined."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    answer: Hit | None
    declined: bool
    reason: str
    threshold: float


def fuse(dense: float, lexical: float, weight: float) -> float:
    """Linear score fusion; both inputs are in 0..1 for matches that matter, so is the output."""
    return (1.0 - weight) * dense + weight * lexical


def fingerprint_articles(articles: Iterable[Article], embedder_name: str) -> str:
    """Hash identifying what a saved index was built from.

    Covers the embedder name and, for every published article sorted by id, its id, updated_at,
    status and phrasings: the phrasings too, because KB files without timestamps would otherwise
    look unchanged after an edit.
    """
    digest = hashlib.sha256(embedder_name.encode())
    for article in sorted(articles, key=lambda a: a.id):
        if article.status is not ArticleStatus.PUBLISHED:
            continue
        digest.update(b"\x1e")
        for part in (article.id, article.updated_at.isoformat(), article.status.value, *article.phrasings()):
            digest.update(part.encode())
            digest.update(b"\x1f")
    return digest.hexdigest()


class Retriever:
    """Holds the dense and lexical indexes of the published articles and answers queries.

    Thread-safety: ``search`` may run in worker threads (``asyncio.to_thread``) while an admin
    edit calls ``upsert``/``remove``; index reads and writes are serialized by one lock, while the
    slow part (embedding) runs outside it.
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        fusion_weight: float | None = None,
        threshold: float | None = None,
        batch_size: int = _BATCH,
    ) -> None:
        self.embedder = embedder
        self.fusion_weight = fusion_weight_for(embedder.name) if fusion_weight is None else fusion_weight
        self.threshold = threshold_for(embedder.name)[0] if threshold is None else threshold
        self.batch_size = batch_size
        self._lock = threading.RLock()
        self._articles: dict[str, Article] = {}
        self._phrasings: dict[str, tuple[str, ...]] = {}
        self._vectors = VectorIndex(embedder.dim, model=embedder.name)
        self._lexical = LexicalIndex()
        # Set by load_or_build: whether the dense index came from disk (True) or was rebuilt.
        self.loaded_from_disk = False

    def __len__(self) -> int:
        return len(self._articles)

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Embed in batches so a large KB never becomes one giant model call."""
        import numpy as np

        parts = [self.embedder.encode(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return np.vstack(parts) if parts else np.zeros((0, self.embedder.dim), dtype=np.float32)

    def build(self, articles: Iterable[Article]) -> None:
        """Index the published ``articles`` from scratch (drafts are skipped)."""
        published = [a for a in articles if a.status is ArticleStatus.PUBLISHED]
        owners: list[tuple[str, int]] = []
        texts: list[str] = []
        for article in published:
            for ordinal, text in enumerate(article.phrasings()):
                owners.append((article.id, ordinal))
                texts.append(text)
        vectors = VectorIndex(self.embedder.dim, model=self.embedder.name)
        vectors.add_many(owners, self.encode(texts))
        lexical = LexicalIndex()
        for article in published:
            lexical.add(article.id, article.phrasings())
        self._install(published, vectors, lexical)

    def _install(self, published: list[Article], vectors: VectorIndex, lexical: LexicalIndex) -> None:
        with self._lock:
            self._articles = {a.id: a for a in published}
            self._phrasings = {a.id: a.phrasings() for a in published}
            vectors.fingerprint = fingerprint_articles(published, self.embedder.name)
            self._vectors = vectors
            self._lexical = lexical

    def upsert(self, article: Article) -> None:
        """Add or replace one article, re-embedding only its phrasings; a draft is removed instead."""
        if article.status is not ArticleStatus.PUBLISHED:
            self.remove(article.id)
            return
        phrasings = article.phrasings()
        vectors = self.encode(list(phrasings))
        with self._lock:
            self._vectors.upsert(article.id, vectors)
            self._lexical.add(article.id, phrasings)
            self._articles[article.id] = article
            self._phrasings[article.id] = phrasings
            self._vectors.fingerprint = fingerprint_articles(self._articles.values(), self.embedder.name)

    def remove(self, article_id: str) -> bool:
        """Remove an article from both indexes; returns whether it was indexed."""
        with self._lock:
            present = self._articles.pop(article_id, None) is not None
            self._phrasings.pop(article_id, None)
            self._vectors.remove(article_id)
            self._lexical.remove(article_id)
            if present:
                self._vectors.fingerprint = fingerprint_articles(self._articles.values(), self.embedder.name)
            return present

    def article(self, article_id: str) -> Article | None:
        """The indexed article with this id, if any."""
        return self._articles.get(article_id)

    def search(self, text: str, k: int = 10) -> list[Hit]:
        """The ``k`` best articles for ``text`` by fused score, best first."""
        return self.search_many([text], k)[0]

    def search_many(self, texts: Sequence[str], k: int | None = 10) -> list[list[Hit]]:
        """Batched :meth:`search`; ``k=None`` returns the whole fused candidate pool (for tuning)."""
        qvecs = self.encode(list(texts))
        pool = max(_POOL, k or 0)
        with self._lock:
            dense_all = self._vectors.search(qvecs, pool)
            results: list[list[Hit]] = []
            for text, qvec, dense in zip(texts, qvecs, dense_all, strict=True):
                lexical = self._lexical.match(text, pool, include=dense.keys())
                missing = [aid for aid in lexical if aid not in dense]
                if missing:
                    dense = {**dense, **self._vectors.score_articles(qvec, missing)}
                hits = []
                for article_id, dmatch in dense.items():
                    lmatch = lexical.get(article_id)
                    lscore = lmatch.score if lmatch is not None else 0.0
                    # Report the phrasing of whichever side contributes more to the fused score.
                    use_lexical = (
                        lmatch is not None and self.fusion_weight * lscore > (1 - self.fusion_weight) * dmatch.score
                    )
                    matched = (
                        lmatch.phrasing
                        if use_lexical and lmatch is not None
                        else self._phrasings[article_id][dmatch.ordinal]
                    )
                    hits.append(
                        Hit(
                            article_id=article_id,
                            score=fuse(dmatch.score, lscore, self.fusion_weight),
                            dense=dmatch.score,
                            lexical=lscore,
                            matched=matched,
                        )
                    )
                hits.sort(key=lambda h: (-h.score, h.article_id))
                results.append(hits if k is None else hits[:k])
        return results

    def decide(self, hits: Sequence[Hit]) -> Decision:
        """Answer with the best hit, or decline when there is none or it scores below the threshold."""
        if not hits:
            return Decision(answer=None, declined=True, reason="no_articles", threshold=self.threshold)
        best = max(hits, key=lambda h: h.score)
        if best.score < self.threshold:
            return Decision(answer=None, declined=True, reason="low_confidence", threshold=self.threshold)
        return Decision(answer=best, declined=False, reason="confident", threshold=self.threshold)

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the currently indexed articles (see :func:`fingerprint_articles`)."""
        return self._vectors.fingerprint

    def save(self, directory: str | Path) -> None:
        """Persist the dense index (the lexical one is rebuilt from the articles on load: it is cheap)."""
        with self._lock:
            self._vectors.save(Path(directory))

    @classmethod
    def load_or_build(
        cls,
        directory: str | Path,
        embedder: Embedder,
        articles: Iterable[Article],
        *,
        fusion_weight: float | None = None,
        threshold: float | None = None,
    ) -> Retriever:
        """Load the saved index if built from exactly these articles and embedder, else rebuild and save."""
        directory = Path(directory)
        articles = list(articles)
        retriever = cls(embedder, fusion_weight=fusion_weight, threshold=threshold)
        published = [a for a in articles if a.status is ArticleStatus.PUBLISHED]
        expected = fingerprint_articles(published, embedder.name)
        meta = VectorIndex.read_meta(directory)
        if meta is not None and meta.get("fingerprint") == expected and meta.get("model") == embedder.name:
            try:
                vectors = VectorIndex.load(directory)
            except (OSError, ValueError, RuntimeError):
                vectors = None  # unreadable or inconsistent: fall through to a rebuild
            if vectors is not None and vectors.dim == embedder.dim:
                lexical = LexicalIndex()
                for article in published:
                    lexical.add(article.id, article.phrasings())
                retriever._install(published, vectors, lexical)
                retriever.loaded_from_disk = True
                return retriever
        retriever.build(published)
        retriever.save(directory)
        return retriever
