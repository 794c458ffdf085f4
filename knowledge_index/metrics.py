"""Retrieval and escalation metrics, as defined in the shared eval README ("What to report").

Pure functions over per-query outcomes so they can be checked by hand in tests and reused by the
threshold tuner without re-running any model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    """What the system did with one query: its ranked article ids and its best fused score."""

    expected: str | None
    ranked: tuple[str, ...]
    top_score: float


@dataclass(frozen=True, slots=True)
class Metrics:
    """All reported figures for one set at one threshold (fractions in 0..1)."""

    queries_in_scope: int
    queries_oos: int
    top1: float
    recall_at_5: float
    mrr: float
    escalation_precision: float
    escalation_recall: float
    escalation_f1: float
    answered_right: float
    answered_wrong: float
    oos_answered: float
    escalated: int


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def ranking_metrics(outcomes: Sequence[QueryOutcome], list_length: int = 10) -> tuple[float, float, float]:
    """top-1, recall@5 and MRR over in-scope queries; MRR counts ranks beyond ``list_length`` as 0."""
    in_scope = [o for o in outcomes if o.expected is not None]
    top1 = recall5 = rr = 0.0
    for outcome in in_scope:
        ranked = outcome.ranked[:list_length]
        if outcome.expected in ranked:
            rank = ranked.index(outcome.expected) + 1
            rr += 1.0 / rank
            recall5 += rank <= 5
            top1 += rank == 1
    n = len(in_scope)
    return _ratio(top1, n), _ratio(recall5, n), _ratio(rr, n)


def compute_metrics(outcomes: Sequence[QueryOutcome], threshold: float, list_length: int = 10) -> Metrics:
    """Every metric at ``threshold``: a query is escalated when it has no result or top score < threshold.

    Escalation is the positive prediction and out of scope (``expected is None``) the positive
    label. ``answered_right``/``answered_wrong`` are shares of in-scope queries answered with the
    expected/another article; ``oos_answered`` is the share of OOS queries answered at all.
    """
    top1, recall5, mrr = ranking_metrics(outcomes, list_length)
    tp = fp = fn = 0
    right = wrong = 0
    for outcome in outcomes:
        escalated = not outcome.ranked or outcome.top_score < threshold
        if outcome.expected is None:
            tp += escalated
            fn += not escalated
        else:
            fp += escalated
            if not escalated:
                right += outcome.ranked[0] == outcome.expected
                wrong += outcome.ranked[0] != outcome.expected
    n_in = sum(1 for o in outcomes if o.expected is not None)
    n_oos = len(outcomes) - n_in
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return Metrics(
        queries_in_scope=n_in,
        queries_oos=n_oos,
        top1=top1,
        recall_at_5=recall5,
        mrr=mrr,
        escalation_precision=precision,
        escalation_recall=recall,
        escalation_f1=f1,
        answered_right=_ratio(right, n_in),
        answered_wrong=_ratio(wrong, n_in),
        oos_answered=_ratio(fn, n_oos),
        escalated=tp + fp,
    )
