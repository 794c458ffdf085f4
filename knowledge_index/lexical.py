"""Chinese-aware BM25 over article phrasings, with incremental add/remove by article id.

Tokens: jieba search-mode words plus overlapping character bigrams for CJK runs (bigrams catch
domain words jieba's dictionary splits wrongly, e.g. 借呗/花呗), lowercase words and numbers
for everything else.

Scores are normalized to 0..1 by *self-score*: a phrasing's BM25 score divided by the score the
query would get against a copy of itself (every query term present once, document length = query
length), clipped to 1. So 1.0 means "as good as an exact restatement", and query terms the KB has
never seen (high IDF) pull every score down, which is what the decline decision wants. The
article score is the best score over its phrasings.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*")

_jieba_lock = threading.Lock()
_jieba_ready = False


def _jieba() -> object:
    """Import and initialize jieba once; its dictionary load takes ~1 s and logs a banner."""
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        with _jieba_lock:
            if not _jieba_ready:
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_ready = True
    return jieba


def tokenize(text: str) -> list[str]:
    """Tokens for BM25: jieba words and character bigrams of CJK runs, lowercase Latin words/numbers."""
    tokens: list[str] = []
    lowered = text.lower()
    jieba = _jieba()
    for run in _CJK_RUN.findall(lowered):
        words = [w for w in jieba.cut_for_search(run) if w.strip()]  # type: ignore[attr-defined]
        tokens.extend(words)
        # Bigrams duplicate two-character words jieba already found; skipping those keeps a
        # common word from counting twice.
        found = set(words)
        tokens.extend(bg for bg in (run[i : i + 2] for i in range(len(run) - 1)) if bg not in found)
    tokens.extend(_WORD.findall(_CJK_RUN.sub(" ", lowered)))
    return tokens


@dataclass(frozen=True, slots=True)
class LexicalMatch:
    """Best lexical match of one article: normalized score and the phrasing that scored it."""

    article_id: str
    score: float
    phrasing: str


class LexicalIndex:
    """BM25 (k1, b) over phrasings; each article owns the phrasings added with it.

    Not thread-safe by itself: the retriever serializes mutations against searches.
    """

    def __init__(self, *, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._postings: dict[str, dict[int, int]] = {}
        self._doc_len: list[int] = []
        self._doc_article: list[str | None] = []
        self._doc_text: list[str] = []
        self._free: list[int] = []
        self._by_article: dict[str, list[int]] = {}
        self._total_len = 0
        self._live = 0
        # numpy views of the postings, rebuilt lazily per term after a mutation touches it
        self._cache: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}

    def __len__(self) -> int:
        return len(self._by_article)

    def add(self, article_id: str, phrasings: Iterable[str]) -> None:
        """Index ``phrasings`` under ``article_id``, replacing whatever the article had before."""
        self.remove(article_id)
        slots: list[int] = []
        for text in phrasings:
            counts = Counter(tokenize(text))
            slot = self._free.pop() if self._free else len(self._doc_len)
            if slot == len(self._doc_len):
                self._doc_len.append(0)
                self._doc_article.append(None)
                self._doc_text.append("")
            length = sum(counts.values())
            self._doc_len[slot] = length
            self._doc_article[slot] = article_id
            self._doc_text[slot] = text
            self._total_len += length
            self._live += 1
            for term, tf in counts.items():
                self._postings.setdefault(term, {})[slot] = tf
                self._cache.pop(term, None)
            slots.append(slot)
        self._by_article[article_id] = slots

    def remove(self, article_id: str) -> bool:
        """Drop every phrasing of ``article_id``; returns whether it was present."""
        slots = self._by_article.pop(article_id, None)
        if slots is None:
            return False
        for slot in slots:
            for term in set(tokenize(self._doc_text[slot])):
                posting = self._postings.get(term)
                if posting is not None:
                    posting.pop(slot, None)
                    if not posting:
                        del self._postings[term]
                self._cache.pop(term, None)
            self._total_len -= self._doc_len[slot]
            self._live -= 1
            self._doc_len[slot] = 0
            self._doc_article[slot] = None
            self._doc_text[slot] = ""
            self._free.append(slot)
        return True

    def _idf(self, df: int) -> float:
        # BM25+ style idf (always positive) so very common terms never subtract.
        return math.log(1.0 + (self._live - df + 0.5) / (df + 0.5))

    def _term_arrays(self, term: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        cached = self._cache.get(term)
        if cached is None:
            posting = self._postings.get(term, {})
            cached = (
                np.fromiter(posting.keys(), dtype=np.int64, count=len(posting)),
                np.fromiter(posting.values(), dtype=np.float64, count=len(posting)),
            )
            self._cache[term] = cached
        return cached

    def _slot_scores(self, text: str) -> npt.NDArray[np.float64]:
        """Normalized score of every phrasing slot (freed slots score 0)."""
        scores = np.zeros(len(self._doc_len), dtype=np.float64)
        counts = Counter(tokenize(text))
        if not counts or self._live == 0:
            return scores
        avgdl = self._total_len / self._live or 1.0
        doc_len = np.asarray(self._doc_len, dtype=np.float64)
        q_len = sum(counts.values())
        self_score = 0.0
        for term, qtf in counts.items():
            idx, tf = self._term_arrays(term)
            idf = self._idf(len(idx))
            # Repeated query terms count once per repetition, like classic BM25 with query tf.
            self_score += qtf * idf * (self.k1 + 1) / (1 + self.k1 * (1 - self.b + self.b * q_len / avgdl))
            if len(idx):
                norm = self.k1 * (1 - self.b + self.b * doc_len[idx] / avgdl)
                scores[idx] += qtf * idf * tf * (self.k1 + 1) / (tf + norm)
        return np.minimum(scores / self_score, 1.0)

    def match(self, text: str, k: int = 10, include: Iterable[str] = ()) -> dict[str, LexicalMatch]:
        """Best match of the ``k`` top-scoring articles plus of every article in ``include``.

        Articles in ``include`` without any shared token are reported with score 0 so callers can
        fuse without special cases.
        """
        scores = self._slot_scores(text)
        result: dict[str, LexicalMatch] = {}
        if k > 0 and scores.size:
            nonzero = np.flatnonzero(scores)
            order = nonzero[np.argsort(-scores[nonzero], kind="stable")]
            for slot in order.tolist():
                article_id = self._doc_article[slot]
                if article_id is None or article_id in result:
                    continue
                result[article_id] = LexicalMatch(article_id, float(scores[slot]), self._doc_text[slot])
                if len(result) >= k:
                    break
        for article_id in include:
            if article_id in result:
                continue
            slots = self._by_article.get(article_id)
            if not slots:
                continue
            best = max(slots, key=lambda slot: scores[slot])
            result[article_id] = LexicalMatch(article_id, float(scores[best]), self._doc_text[best])
        return result

    def search(self, text: str, k: int = 10) -> list[LexicalMatch]:
        """The ``k`` best articles for ``text`` by normalized score, best first."""
        matches = sorted(self.match(text, k).values(), key=lambda m: (-m.score, m.article_id))
        return matches[:k]

    def article_ids(self) -> Sequence[str]:
        """Ids of the indexed articles."""
        return list(self._by_article)
