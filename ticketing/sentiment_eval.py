"""Sentiment/anger evaluation on the shared eval sets: ``huiliu eval sentiment PATH [--json OUT]``.

A set is a folder with ``messages.jsonl`` (``text``, ``negative`` 0/1, optional ``anger`` 0/1). The
data is read at run time from the path given and never copied anywhere (see ../shared/eval/README.md:
most sets have no redistribution license).

Reported per label: AUROC (rank-based Mann-Whitney U, ties get average ranks) and F1 of the
positive class at the scorer's FIXED operating threshold (the same on every set, never re-tuned
here). The best-F1 threshold on the set is printed for information only.

``--fit`` refits the negative-logit coefficients on the given set and prints them as Python
(this is how :data:`ticketing.sentiment.USE_WEIGHTS` / ``LEXICON_WEIGHTS`` were obtained, on
sent_shopping_dev).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from knowledge_index.embedder import USE_NAME, EmbedderUnavailable, load_embedder
from ticketing.sentiment import FEATURE_NAMES, SentimentScorer, flag_offset

FloatArray = npt.NDArray[np.float64]

# The fixed JSON contract; "anger" is omitted when the set has no anger labels.
REPORT_KEYS = ("set", "messages", "negative", "anger")
LABEL_KEYS = ("auroc", "f1", "threshold")


@dataclass(frozen=True, slots=True)
class Message:
    text: str
    negative: int
    anger: int | None


@dataclass(frozen=True, slots=True)
class LabelMetrics:
    """Figures for one binary label; ``auroc`` is NaN when only one class is present."""

    n: int
    positives: int
    auroc: float
    f1: float
    precision: float
    recall: float
    threshold: float
    best_f1: float
    best_threshold: float

    def contract(self) -> dict[str, float | None]:
        """The ``{"auroc", "f1", "threshold"}`` part of the JSON report (NaN becomes null)."""
        return {
            "auroc": None if math.isnan(self.auroc) else round(self.auroc, 6),
            "f1": round(self.f1, 6),
            "threshold": self.threshold,
        }


def auroc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties counting 1/2.

    Computed from the Mann-Whitney U statistic with average ranks for tied scores. Returns NaN when
    the labels hold only one class.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if s.shape != y.shape:
        raise ValueError("scores and labels differ in length")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts).astype(np.float64)  # 1-based rank of the last element of each tie group
    average_rank = ends - (counts - 1) / 2.0
    ranks = average_rank[inverse]
    u = float(ranks[y].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def f1_at(scores: npt.ArrayLike, labels: npt.ArrayLike, threshold: float) -> tuple[float, float, float]:
    """(F1, precision, recall) of the positive class when predicting ``score >= threshold``."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    predicted = s >= threshold
    tp = int((predicted & y).sum())
    precision = tp / int(predicted.sum()) if predicted.any() else 0.0
    recall = tp / int(y.sum()) if y.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return f1, precision, recall


def best_f1(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[float, float]:
    """(best F1, its threshold) over every distinct score used as ``score >= threshold``."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if not y.any():
        return 0.0, math.inf
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    predicted = np.arange(1, s.size + 1)
    # only the last index of each run of equal scores is a reachable cut
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    f1 = 2 * tp / (predicted + y.sum())
    f1 = np.where(last, f1, -1.0)
    best = int(np.argmax(f1))
    return float(f1[best]), float(s_sorted[best])


def label_metrics(scores: npt.ArrayLike, labels: npt.ArrayLike, threshold: float) -> LabelMetrics:
    """All figures for one label at the fixed ``threshold``."""
    y = np.asarray(labels).astype(bool).ravel()
    f1, precision, recall = f1_at(scores, y, threshold)
    top_f1, top_threshold = best_f1(scores, y)
    return LabelMetrics(
        n=int(y.size),
        positives=int(y.sum()),
        auroc=auroc(scores, y),
        f1=f1,
        precision=precision,
        recall=recall,
        threshold=threshold,
        best_f1=top_f1,
        best_threshold=top_threshold,
    )


def load_messages(path: Path, *, limit: int | None = None) -> list[Message]:
    """Messages of a messages.jsonl (unknown keys ignored).

    ``limit`` keeps an evenly spaced deterministic sample (some files are ordered by label, so the
    first N lines would be one class).
    """
    messages: list[Message] = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text, negative = record["text"], int(record["negative"])
                anger = None if record.get("anger") is None else int(record["anger"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: bad message line: {exc}") from exc
            if not isinstance(text, str) or negative not in (0, 1) or anger not in (None, 0, 1):
                raise ValueError(f"{path}:{lineno}: 'text' must be a string and labels 0/1")
            messages.append(Message(text, negative, anger))
    if limit is not None and 0 < limit < len(messages):
        picks = np.unique(np.linspace(0, len(messages) - 1, limit).round().astype(int))
        messages = [messages[i] for i in picks]
    return messages


@dataclass(frozen=True, slots=True)
class SentimentEvaluation:
    """Scores and metrics of one set (the JSON contract is :meth:`report`)."""

    set: str
    messages: int
    negative: LabelMetrics
    anger: LabelMetrics | None
    scorer: str
    seconds: float

    def report(self) -> dict[str, Any]:
        """Exactly ``{"set", "messages", "negative": {...}, "anger": {...}}`` ("anger" only when labelled)."""
        out: dict[str, Any] = {"set": self.set, "messages": self.messages, "negative": self.negative.contract()}
        if self.anger is not None:
            out["anger"] = self.anger.contract()
        return out


def run_evaluation(set_dir: Path, scorer: SentimentScorer, *, limit: int | None = None) -> SentimentEvaluation:
    """Score every message of ``set_dir/messages.jsonl`` and compute the metrics."""
    started = time.perf_counter()
    messages = load_messages(set_dir / "messages.jsonl", limit=limit)
    scores = scorer.score_many([m.text for m in messages])
    negative = label_metrics([s.negative for s in scores], [m.negative for m in messages], scorer.negative_threshold)
    anger_rows = [(s.anger, m.anger) for s, m in zip(scores, messages, strict=True) if m.anger is not None]
    anger = (
        label_metrics([a for a, _ in anger_rows], [y for _, y in anger_rows], scorer.anger_threshold)
        if anger_rows
        else None
    )
    return SentimentEvaluation(
        set=set_dir.name,
        messages=len(messages),
        negative=negative,
        anger=anger,
        scorer=scorer.weights.name,
        seconds=round(time.perf_counter() - started, 2),
    )


def evaluate_sentiment(set_dir: str | Path, scorer: SentimentScorer, *, limit: int | None = None) -> dict[str, Any]:
    """The JSON-contract report for one set folder (see :data:`REPORT_KEYS`)."""
    return run_evaluation(Path(set_dir), scorer, limit=limit).report()


def format_report(evaluation: SentimentEvaluation) -> str:
    """A markdown table: one row per label."""
    header = "| set | label | n | positives | AUROC | F1 | P | R | threshold | best F1 @ thr (info) |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    rows = [("negative", evaluation.negative), ("anger", evaluation.anger)]
    for name, m in rows:
        if m is None:
            continue
        lines.append(
            f"| {evaluation.set} | {name} | {m.n} | {m.positives} | {m.auroc:.4f} | {m.f1:.4f} | "
            f"{m.precision:.4f} | {m.recall:.4f} | {m.threshold:.2f} | {m.best_f1:.4f} @ {m.best_threshold:.3f} |"
        )
    return "\n".join(lines)


# --- fitting (how the shipped coefficients were obtained) -----------------------------------------


def fit_logistic(
    x: FloatArray, y: npt.ArrayLike, *, offset: FloatArray | None = None, l2: float = 1e-4, iterations: int = 50
) -> FloatArray:
    """L2-regularized logistic regression by Newton's method (IRLS).

    Column 0 must be the constant bias (unpenalized). The other columns are standardized for the
    fit (so the penalty ``l2 * n * coef**2`` treats them alike) and the coefficients are returned
    on the original scale.
    """
    target = np.asarray(y, dtype=np.float64)
    off = np.zeros(x.shape[0]) if offset is None else offset
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    mean[0], std[0] = 0.0, 1.0
    std[std == 0] = 1.0
    z = (x - mean) / std
    coef = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2 * x.shape[0])
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(z @ coef + off)))
        gradient = z.T @ (p - target) + penalty * coef
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        coef -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    unscaled = coef / std
    unscaled[0] = coef[0] - float((coef[1:] * mean[1:] / std[1:]).sum())
    return np.asarray(unscaled, dtype=np.float64)


def fit_negative(set_dir: Path, scorer: SentimentScorer, *, limit: int | None = None) -> dict[str, float]:
    """Fit the negative-logit coefficients of ``scorer``'s feature set on one set (flag boosts as offset)."""
    messages = load_messages(set_dir / "messages.jsonl", limit=limit)
    matrix, lexical = scorer.feature_matrix([m.text for m in messages])
    names = [n for n in FEATURE_NAMES if n != "emb_anger" and (scorer.embedder is not None or not n.startswith("emb"))]
    columns = [FEATURE_NAMES.index(n) for n in names]
    offset = np.array([flag_offset(f, scorer.weights) for f in lexical])
    coef = fit_logistic(matrix[:, columns], [m.negative for m in messages], offset=offset)
    fitted = {n: round(float(c), 3) for n, c in zip(names, coef, strict=True)}
    anger_margin = matrix[:, FEATURE_NAMES.index("emb_anger")]
    if scorer.embedder is not None:
        fitted["emb_anger_center"] = round(float(anger_margin.mean()), 4)
        fitted["emb_anger_scale"] = round(float(anger_margin.std()), 4)
    return fitted


def main(argv: Sequence[str] | None = None) -> int:
    """``huiliu eval sentiment PATH [--json OUT] [--no-embedder] [--limit N] [--fit]``."""
    parser = argparse.ArgumentParser(
        prog="huiliu eval sentiment", description="Evaluate negative/anger scoring on one sentiment set."
    )
    parser.add_argument("path", type=Path, help="set folder with messages.jsonl")
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    parser.add_argument("--no-embedder", action="store_true", help="lexicon-only scorer (no embedding model)")
    parser.add_argument("--limit", type=int, help="evenly spaced sample of N messages (deterministic)")
    parser.add_argument(
        "--fit", action="store_true", help="refit the negative coefficients ON this set and print them (tuning)"
    )
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    path: Path = args.path
    if not (path / "messages.jsonl").is_file():
        print(f"error: {path / 'messages.jsonl'} not found", file=sys.stderr)
        return 2
    try:
        embedder = None if args.no_embedder else load_embedder(USE_NAME)
    except EmbedderUnavailable as exc:
        print(f"error: {exc} (use --no-embedder for the lexicon-only scorer)", file=sys.stderr)
        return 2
    scorer = SentimentScorer(embedder)
    if args.fit:
        fitted = fit_negative(path, scorer, limit=args.limit)
        print(f"fitted ON {path.name} (tuning, not an evaluation) for {scorer.weights.name}:")
        print(json.dumps(fitted, indent=2))
        return 0
    evaluation = run_evaluation(path, scorer, limit=args.limit)
    print(format_report(evaluation))
    sample = f"evenly spaced sample of {evaluation.messages}" if args.limit else "all messages"
    print(
        f"scorer {evaluation.scorer}; fixed operating thresholds negative {scorer.negative_threshold:.2f}, "
        f"anger {scorer.anger_threshold:.2f} (not tuned per set; best-F1 column is information only); "
        f"{sample}; {evaluation.seconds:.1f}s"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(evaluation.report(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
