"""Offline sentiment, anger and urgency scoring of customer messages (Chinese + English).

A message gets three scores in 0..1 and the reasons behind them::

    SentimentScorer(load_embedder("use-multilingual")).score("我已经等了一个星期了，请问还要等多久？")
    -> SentimentScore(negative=0.96, anger=0.82, urgency=0.75,
                      reasons=("long wait / no response ('已经等了', '还要等多久')",),
                      flags=frozenset({"waiting", "negative", "angry"}))

How it works (all offline, no work at import time):

1. :func:`extract_lexicon_features` scans the text with hand-written lexicons
   (:mod:`ticketing.sentiment_lexicon`): polar words with negation ("不错" positive, "不满意" and
   "一点都不好" negative), intensifiers, contrast clauses ("..., 但是 ..."), insults, escalation
   threats (12315, 投诉, chargeback ...), safety terms (冒烟, 漏电, 过敏 ...), urgency words, sarcasm
   cues (quoted praise "太'好'了", 呵呵, "great, another delay"), waiting complaints ("已经等了一个星期"),
   repeated failure ("第三次"), ALL CAPS and "!!!".
2. With an :class:`~knowledge_index.embedder.Embedder`, each message is also compared with
   hand-written prototype sentences (cosine, mean of the top 10) for negative/angry vs
   positive/neutral customer messages.
3. A logistic combination of a few features gives ``negative``; its coefficients were fitted on
   ``sent_shopping_dev`` (see :data:`USE_WEIGHTS`). Flag boosts (threat, safety, sarcasm ...) are
   hand-set business rules added to the logit. ``anger`` and ``urgency`` are hand-set combinations
   (no anger labels were used to set them; emotion_zh_dev's anger labels are held out).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from knowledge_index.embedder import Embedder
from ticketing import sentiment_lexicon as lex

FloatArray = npt.NDArray[np.float64]

# Columns of the feature matrix (see :meth:`SentimentScorer.feature_matrix`).
FEATURE_NAMES = ("bias", "neg_lex", "pos_lex", "anger_lex", "punct", "emb_neg", "emb_pos", "emb_anger")
EMBEDDING_FEATURES = frozenset({"emb_neg", "emb_pos", "emb_anger"})
FLAG_NAMES = ("threat", "safety", "sarcasm", "repeated_failure", "waiting", "caps", "repeated_punct", "urgent")
_TOP_K = 10  # prototype similarity = mean cosine of the k most similar prototypes (k=1,3,5,10 measured; 10 best)
_EMBED_BATCH = 256


@dataclass(frozen=True, slots=True)
class SentimentScore:
    """Scores in 0..1, human-readable reasons (most important first) and machine flags."""

    negative: float
    anger: float
    urgency: float
    reasons: tuple[str, ...]
    flags: frozenset[str]


@dataclass(frozen=True, slots=True)
class SentimentWeights:
    """Coefficients of the score combination; plain numbers, see :data:`USE_WEIGHTS` for their origin.

    ``negative`` maps :data:`FEATURE_NAMES` to logit coefficients (missing = 0); ``flag_boost`` adds
    to the negative logit per flag; ``anger`` combines the negative logit (key ``negative_logit``),
    ``anger_lex``, the standardized embedding anger margin (``emb_anger``) and flags.
    """

    name: str
    negative: Mapping[str, float]
    flag_boost: Mapping[str, float]
    anger: Mapping[str, float]
    negative_threshold: float = 0.5
    anger_threshold: float = 0.5
    # emb_anger is standardized as (x - center) / scale before its anger coefficient applies.
    emb_anger_center: float = 0.0
    emb_anger_scale: float = 1.0

    @property
    def uses_embedding(self) -> bool:
        """True when any negative or anger coefficient reads an embedding feature."""
        return any(self.negative.get(name, 0.0) != 0.0 for name in EMBEDDING_FEATURES) or (
            self.anger.get("emb_anger", 0.0) != 0.0
        )


# Hand-set business rules (not fitted): evidence that makes a message negative whatever its wording.
# They are added to the negative logit (also as a fixed offset while fitting the coefficients below).
_FLAG_BOOST: dict[str, float] = {
    "threat": 1.5,
    "safety": 2.5,
    "sarcasm": 2.0,
    "repeated_failure": 1.0,
    "waiting": 1.5,
    "caps": 0.7,
}

# Hand-set (NOT fitted: no anger labels were used; emotion_zh_dev anger is held out). Reasoning:
# anger needs negativity (0.6 per unit of negative logit), insults/anger words are the main cue
# (1.6 per log1p unit), shouting/threat/sarcasm are anger-specific, waiting/repeated failure add a little.
_ANGER: dict[str, float] = {
    "bias": -2.2,
    "negative_logit": 0.6,
    "anger_lex": 1.6,
    "emb_anger": 0.0,
    "caps": 1.2,
    "repeated_punct": 0.6,
    "threat": 1.2,
    "sarcasm": 1.0,
    "waiting": 0.5,
    "repeated_failure": 0.5,
}

# Lexicon only (no embedder). Negative coefficients fitted by L2-regularized logistic regression on
# sent_shopping_dev (all 31,386 messages, flag boosts as fixed offset):
#   .venv/bin/python -m ticketing.sentiment_eval /work/shared/eval/sent_shopping_dev --no-embedder --fit
LEXICON_WEIGHTS = SentimentWeights(
    name="lexicon",
    negative={"bias": 0.387, "neg_lex": 1.555, "pos_lex": -2.87, "anger_lex": -0.45, "punct": 0.465},
    flag_boost=_FLAG_BOOST,
    anger=_ANGER,
)

# With the multilingual USE embedder. Negative coefficients fitted as above on sent_shopping_dev:
#   .venv/bin/python -m ticketing.sentiment_eval /work/shared/eval/sent_shopping_dev --fit
# emb_anger center/scale: mean/std of the anger margin over sent_shopping_dev texts (unlabelled statistic).
USE_WEIGHTS = SentimentWeights(
    name="use-multilingual",
    negative={
        "bias": -1.721,
        "neg_lex": 1.42,
        "pos_lex": -2.436,
        "anger_lex": -0.583,  # negative: anger words are already counted in neg_lex (collinear)
        "punct": 0.52,
        "emb_neg": 23.257,  # cosines vary by ~0.05, hence the large coefficients
        "emb_pos": -17.935,
    },
    flag_boost=_FLAG_BOOST,
    anger={**_ANGER, "emb_anger": 0.5},
    emb_anger_center=-0.0528,
    emb_anger_scale=0.0471,
)


# --- lexicon features --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    """One polar lexicon match."""

    term: str
    start: int
    negated: bool
    weight_multiplier: float


@dataclass(frozen=True, slots=True)
class LexiconFeatures:
    """What the lexicons found in one message (pure function of the text)."""

    negative: float
    positive: float
    anger: float
    negative_terms: tuple[str, ...]
    anger_terms: tuple[str, ...]
    negated_praise: tuple[str, ...]
    threats: tuple[tuple[str, str], ...]  # (matched term, canonical label)
    safety: tuple[tuple[str, str], ...]
    urgency: tuple[str, ...]
    sarcasm: tuple[str, ...]
    repeated_failure: tuple[str, ...]
    waiting: tuple[str, ...]
    caps: bool
    repeated_punct: bool

    @property
    def flags(self) -> frozenset[str]:
        """Flag names (see :data:`FLAG_NAMES`) present in this message."""
        present = {
            "threat": bool(self.threats),
            "safety": bool(self.safety),
            "sarcasm": bool(self.sarcasm),
            "repeated_failure": bool(self.repeated_failure),
            "waiting": bool(self.waiting),
            "caps": self.caps,
            "repeated_punct": self.repeated_punct,
            "urgent": bool(self.urgency),
        }
        return frozenset(name for name, on in present.items() if on)


@dataclass(frozen=True, slots=True)
class _Polar:
    negative: float
    positive: float
    anger: float


@dataclass(frozen=True, slots=True)
class _Compiled:
    zh_polar: re.Pattern[str]
    en_polar: re.Pattern[str]
    zh_table: dict[str, _Polar]
    en_table: dict[str, _Polar]
    zh_threat: re.Pattern[str]
    en_threat: re.Pattern[str]
    zh_safety: re.Pattern[str]
    en_safety: re.Pattern[str]
    urgency: re.Pattern[str]
    repeated_failure: re.Pattern[str]
    waiting: re.Pattern[str]
    quoted_praise: re.Pattern[str]
    sarcasm_strong: re.Pattern[str]
    sarcasm_weak: re.Pattern[str]
    sarcasm_en: re.Pattern[str]
    clause_break: re.Pattern[str]
    contrast: re.Pattern[str]
    negation_exceptions: re.Pattern[str]
    noise: re.Pattern[str]
    repeated_punct: re.Pattern[str]
    cap_word: re.Pattern[str]
    letters: re.Pattern[str]


def _bounded(term: str) -> str:
    """A regex for a Chinese-lexicon term; ASCII letters/digits get boundaries so 'sb' or '315' stay whole."""
    escaped = re.escape(term)
    if term.isascii() and term.isalnum():
        return rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])"
    return escaped


def _alternation(terms: Iterable[str], *, words: bool) -> re.Pattern[str]:
    ordered = sorted(set(terms), key=lambda t: (-len(t), t))  # longest first: "不错" before "错"
    if words:
        body = "|".join(re.escape(t) for t in ordered)
        return re.compile(rf"(?<![a-z0-9'])(?:{body})(?![a-z0-9'])")
    return re.compile("|".join(_bounded(t) for t in ordered))


def _table(neg: Mapping[str, float], pos: Mapping[str, float], anger: Mapping[str, float]) -> dict[str, _Polar]:
    table: dict[str, _Polar] = {}
    for term in {*neg, *pos, *anger}:
        a = anger.get(term, 0.0)
        table[term] = _Polar(negative=max(neg.get(term, 0.0), a), positive=pos.get(term, 0.0), anger=a)
    return table


@cache
def _compiled() -> _Compiled:
    """Compile the lexicons once, on first use."""
    zh_table = _table(lex.NEGATIVE_ZH, lex.POSITIVE_ZH, lex.ANGER_ZH)
    for term in lex.NEUTRAL_ZH:
        zh_table.setdefault(term, _Polar(0.0, 0.0, 0.0))
    en_table = _table(lex.NEGATIVE_EN, lex.POSITIVE_EN, lex.ANGER_EN)
    return _Compiled(
        zh_polar=_alternation(zh_table, words=False),
        en_polar=_alternation(en_table, words=True),
        zh_table=zh_table,
        en_table=en_table,
        zh_threat=_alternation(lex.THREATS_ZH, words=False),
        en_threat=_alternation(lex.THREATS_EN, words=True),
        zh_safety=_alternation(lex.SAFETY_ZH, words=False),
        en_safety=_alternation(lex.SAFETY_EN, words=True),
        urgency=re.compile(
            "|".join([*(_bounded(t) for t in lex.URGENCY_ZH), *(rf"\b{re.escape(t)}\b" for t in lex.URGENCY_EN)])
        ),
        repeated_failure=re.compile("|".join(f"(?:{p})" for p in lex.REPEATED_FAILURE_PATTERNS)),
        waiting=re.compile("|".join(f"(?:{p})" for p in lex.WAITING_PATTERNS)),
        quoted_praise=re.compile(lex.QUOTED_PRAISE_PATTERN),
        sarcasm_strong=_alternation(lex.SARCASM_STRONG_ZH, words=False),
        sarcasm_weak=_alternation(lex.SARCASM_CUES_ZH, words=False),
        sarcasm_en=re.compile("|".join(f"(?:{p})" for p in lex.SARCASM_PATTERNS_EN)),
        clause_break=re.compile(r"[，。！？；：,.!?;:\n~～…]"),
        contrast=re.compile(
            "|".join([*(re.escape(t) for t in lex.CONTRAST_ZH), *(rf"\b{t}\b" for t in lex.CONTRAST_EN)])
        ),
        negation_exceptions=re.compile("|".join(re.escape(t) for t in lex.NEGATION_EXCEPTIONS_ZH)),
        noise=re.compile(r"https?://\S+|www\.\S+|[@#][A-Za-z0-9_]+"),
        repeated_punct=re.compile(r"[!！]{2,}|[?？]{2,}|[!！][?？]|[?？][!！]"),
        cap_word=re.compile(r"\b[A-Z]{4,}\b"),
        letters=re.compile(r"[A-Za-z]"),
    )


def _clause_start(text: str, pos: int, pattern: re.Pattern[str]) -> int:
    start = 0
    for match in pattern.finditer(text, 0, pos):
        start = match.end()
    return start


def _polar_hits(text: str, pattern: re.Pattern[str], c: _Compiled, *, english: bool) -> list[Hit]:
    hits: list[Hit] = []
    contrast_at = -1
    for match in c.contrast.finditer(text):
        contrast_at = match.start()
    for match in pattern.finditer(text):
        start = match.start()
        clause = text[_clause_start(text, start, c.clause_break) : start]
        if english:
            tokens = re.findall(r"[a-z']+", clause)
            negated = any(t in lex.NEGATORS_EN for t in tokens[-3:])
            intensified = any(t in lex.INTENSIFIERS_EN for t in tokens[-2:])
        else:
            window = c.negation_exceptions.sub("", clause[-8:])
            negated = any(n in window[-6:] for n in lex.NEGATORS_ZH)
            intensified = any(i in clause[-3:] for i in lex.INTENSIFIERS_ZH)
        multiplier = 1.5 if intensified else 1.0
        if contrast_at >= 0:
            multiplier *= 1.3 if start > contrast_at else 0.8
        hits.append(Hit(term=match.group(0), start=start, negated=negated, weight_multiplier=multiplier))
    return hits


def _caps(text: str, c: _Compiled) -> bool:
    letters = c.letters.findall(text)
    if len(letters) >= 10 and sum(ch.isupper() for ch in letters) >= 0.7 * len(letters):
        return True
    return len(c.cap_word.findall(text)) >= 2


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def extract_lexicon_features(text: str) -> LexiconFeatures:
    """Scan one message with the lexicons (pure; compiled patterns are cached)."""
    c = _compiled()
    clean = c.noise.sub(" ", text)
    lower = clean.lower()
    neg = pos = anger = 0.0
    negative_terms: list[str] = []
    anger_terms: list[str] = []
    negated_praise: list[str] = []
    for hits, table in (
        (_polar_hits(clean, c.zh_polar, c, english=False), c.zh_table),
        (_polar_hits(lower, c.en_polar, c, english=True), c.en_table),
    ):
        for hit in hits:
            polar = table[hit.term]
            m = hit.weight_multiplier
            if hit.negated:
                neg += 0.8 * polar.positive * m
                pos += 0.4 * polar.negative * m
                if polar.positive > 0:
                    negated_praise.append(hit.term)
            else:
                neg += polar.negative * m
                pos += polar.positive * m
                anger += polar.anger * m
                if polar.anger > 0:
                    anger_terms.append(hit.term)
                elif polar.negative > 0:
                    negative_terms.append(hit.term)

    threats = [(m.group(0), lex.THREATS_ZH[m.group(0)]) for m in c.zh_threat.finditer(clean)]
    threats += [(m.group(0), lex.THREATS_EN[m.group(0)]) for m in c.en_threat.finditer(lower)]
    safety = [(m.group(0), lex.SAFETY_ZH[m.group(0)]) for m in c.zh_safety.finditer(clean)]
    safety += [(m.group(0), lex.SAFETY_EN[m.group(0)]) for m in c.en_safety.finditer(lower)]
    urgency = [m.group(0) for m in c.urgency.finditer(lower)]
    waiting = [m.group(0) for m in c.waiting.finditer(lower)]
    repeated = [m.group(0) for m in c.repeated_failure.finditer(lower)]

    sarcasm = [f"quoted praise {m.group(0)}" for m in c.quoted_praise.finditer(lower)]
    sarcasm += [m.group(0) for m in c.sarcasm_strong.finditer(clean)]
    sarcasm += [m.group(0) for m in c.sarcasm_en.finditer(lower)]
    has_trouble = neg > 0 or bool(waiting) or bool(threats) or bool(safety)
    if has_trouble:
        sarcasm += [m.group(0) for m in c.sarcasm_weak.finditer(clean)]
    if not (has_trouble or sarcasm):
        repeated = []  # "第二次购买了" / "will fly again" is loyalty, not a repeated failure
    if sarcasm:
        # Praise in a sarcastic message is the complaint: "真是太'好'了，第三次发错货".
        neg += 1.0 + 0.5 * pos
        pos = 0.0
    elif repeated or waiting:
        pos *= 0.5
    return LexiconFeatures(
        negative=neg,
        positive=pos,
        anger=anger,
        negative_terms=_unique(negative_terms),
        anger_terms=_unique(anger_terms),
        negated_praise=_unique(negated_praise),
        threats=tuple(dict.fromkeys(threats)),
        safety=tuple(dict.fromkeys(safety)),
        urgency=_unique(urgency),
        sarcasm=_unique(sarcasm),
        repeated_failure=_unique(repeated),
        waiting=_unique(waiting),
        caps=_caps(clean, c),
        repeated_punct=bool(c.repeated_punct.search(clean)),
    )


def lexicon_vector(features: LexiconFeatures) -> list[float]:
    """The lexicon columns of :data:`FEATURE_NAMES` (embedding columns left at 0)."""
    punct = 1.0 if (features.repeated_punct or features.caps) else 0.0
    return [1.0, math.log1p(features.negative), math.log1p(features.positive), math.log1p(features.anger), punct]


def flag_offset(features: LexiconFeatures, weights: SentimentWeights) -> float:
    """Sum of the hand-set flag boosts present in ``features``."""
    flags = features.flags
    return sum(boost for name, boost in weights.flag_boost.items() if name in flags)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _embedding_text(text: str) -> str:
    cleaned = " ".join(_compiled().noise.sub(" ", text).split())
    return cleaned or text or " "


# --- scorer ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prototypes:
    negative: npt.NDArray[np.float32]  # negative + angry
    positive: npt.NDArray[np.float32]  # positive + neutral
    angry: npt.NDArray[np.float32]
    plain_negative: npt.NDArray[np.float32]


def _top_k_mean(similarity: npt.NDArray[np.float32], k: int = _TOP_K) -> FloatArray:
    k = min(k, similarity.shape[1])
    top = np.partition(similarity, similarity.shape[1] - k, axis=1)[:, -k:]
    return np.asarray(top.mean(axis=1), dtype=np.float64)


class SentimentScorer:
    """Scores customer messages; works lexicon-only when ``embedder`` is None.

    ``weights`` defaults to :data:`USE_WEIGHTS` with an embedder and :data:`LEXICON_WEIGHTS`
    without one (the embedding coefficients were fitted for multilingual USE; other embedders work
    but are uncalibrated).
    """

    def __init__(self, embedder: Embedder | None = None, *, weights: SentimentWeights | None = None) -> None:
        self.embedder = embedder
        self.weights = weights or (USE_WEIGHTS if embedder is not None else LEXICON_WEIGHTS)
        if self.weights.uses_embedding and embedder is None:
            raise ValueError(f"weights {self.weights.name!r} need an embedder")
        self._prototypes: _Prototypes | None = None

    @property
    def negative_threshold(self) -> float:
        """The fixed operating point for ``negative`` (same on every set)."""
        return self.weights.negative_threshold

    @property
    def anger_threshold(self) -> float:
        """The fixed operating point for ``anger``."""
        return self.weights.anger_threshold

    def _load_prototypes(self) -> _Prototypes:
        if self._prototypes is None:
            assert self.embedder is not None
            plain = self.embedder.encode(list(lex.NEGATIVE_PROTOTYPES))
            angry = self.embedder.encode(list(lex.ANGRY_PROTOTYPES))
            positive = self.embedder.encode([*lex.POSITIVE_PROTOTYPES, *lex.NEUTRAL_PROTOTYPES])
            self._prototypes = _Prototypes(
                negative=np.vstack([plain, angry]), positive=positive, angry=angry, plain_negative=plain
            )
        return self._prototypes

    def embedding_columns(self, texts: Sequence[str]) -> FloatArray:
        """``(n, 3)``: emb_neg, emb_pos, emb_anger (angry minus plain-negative similarity); zeros without embedder."""
        out = np.zeros((len(texts), 3), dtype=np.float64)
        if self.embedder is None or not texts:
            return out
        protos = self._load_prototypes()
        for start in range(0, len(texts), _EMBED_BATCH):
            chunk = [_embedding_text(t) for t in texts[start : start + _EMBED_BATCH]]
            vectors = self.embedder.encode(chunk)
            rows = slice(start, start + len(chunk))
            out[rows, 0] = _top_k_mean(vectors @ protos.negative.T)
            out[rows, 1] = _top_k_mean(vectors @ protos.positive.T)
            out[rows, 2] = _top_k_mean(vectors @ protos.angry.T) - _top_k_mean(vectors @ protos.plain_negative.T)
        return out

    def feature_matrix(self, texts: Sequence[str]) -> tuple[FloatArray, list[LexiconFeatures]]:
        """``(n, len(FEATURE_NAMES))`` feature rows and the lexicon findings per text (used for fitting)."""
        lexical = [extract_lexicon_features(t) for t in texts]
        matrix = np.zeros((len(texts), len(FEATURE_NAMES)), dtype=np.float64)
        if texts:
            matrix[:, :5] = np.array([lexicon_vector(f) for f in lexical], dtype=np.float64)
            matrix[:, 5:] = self.embedding_columns(texts)
        return matrix, lexical

    def score(self, text: str) -> SentimentScore:
        """Score one message."""
        return self.score_many([text])[0]

    def score_many(self, texts: Sequence[str]) -> list[SentimentScore]:
        """Score messages; the embedding runs batched."""
        texts = list(texts)
        matrix, lexical = self.feature_matrix(texts)
        coef = np.array([self.weights.negative.get(n, 0.0) for n in FEATURE_NAMES], dtype=np.float64)
        logits = matrix @ coef
        return [
            self._combine(float(z), row, features) for z, row, features in zip(logits, matrix, lexical, strict=True)
        ]

    def _combine(self, base_logit: float, row: FloatArray, features: LexiconFeatures) -> SentimentScore:
        w = self.weights
        flags = set(features.flags)
        neg_logit = base_logit + flag_offset(features, w)
        negative = _sigmoid(neg_logit)

        a = w.anger
        emb_anger = (float(row[FEATURE_NAMES.index("emb_anger")]) - w.emb_anger_center) / w.emb_anger_scale
        anger_logit = (
            a.get("bias", 0.0)
            + a.get("negative_logit", 0.0) * neg_logit
            + a.get("anger_lex", 0.0) * math.log1p(features.anger)
            + (a.get("emb_anger", 0.0) * emb_anger if self.embedder is not None else 0.0)
            + sum(a.get(flag, 0.0) for flag in flags)
        )
        anger = _sigmoid(anger_logit)

        # Urgency: noisy-OR of hand-set evidence strengths (no urgency labels exist to fit them).
        evidence = [
            0.9 if features.safety else 0.0,
            0.7 if features.threats else 0.0,
            0.5 if features.urgency else 0.0,
            0.3 if features.waiting else 0.0,
            0.3 if features.repeated_failure else 0.0,
            0.6 * anger,
            0.3 * negative,
        ]
        urgency = 1.0 - math.prod(1.0 - e for e in evidence)

        if negative >= w.negative_threshold:
            flags.add("negative")
        if anger >= w.anger_threshold:
            flags.add("angry")
        return SentimentScore(
            negative=negative,
            anger=anger,
            urgency=urgency,
            reasons=_reasons(features),
            flags=frozenset(flags),
        )


def _quote(terms: Iterable[str], limit: int = 3) -> str:
    return ", ".join(f"'{t}'" for t in list(terms)[:limit])


def _reasons(f: LexiconFeatures) -> tuple[str, ...]:
    reasons: list[str] = []
    for label in dict.fromkeys(label for _, label in f.safety):
        terms = [t for t, lab in f.safety if lab == label]
        reasons.append(f"safety issue: {label} ({_quote(terms)})")
    for label in dict.fromkeys(label for _, label in f.threats):
        terms = [t for t, lab in f.threats if lab == label]
        reasons.append(f"threatens {label} ({_quote(terms)})")
    if f.sarcasm:
        reasons.append(f"sarcasm ({_quote(f.sarcasm)})")
    if f.repeated_failure:
        reasons.append(f"repeated failure ({_quote(f.repeated_failure)})")
    if f.waiting:
        reasons.append(f"long wait / no response ({_quote(f.waiting)})")
    if f.urgency:
        reasons.append(f"urgent wording ({_quote(f.urgency)})")
    if f.caps:
        reasons.append("all caps")
    if f.repeated_punct:
        reasons.append("repeated punctuation (!!! / ???)")
    if f.anger_terms:
        reasons.append(f"anger/insult words ({_quote(f.anger_terms)})")
    if f.negated_praise:
        reasons.append(f"negated praise ({_quote(f.negated_praise)})")
    if f.negative_terms:
        reasons.append(f"negative words ({_quote(f.negative_terms)})")
    return tuple(reasons)
