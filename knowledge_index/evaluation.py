"""Retrieval evaluation on the shared eval sets: report model, ``huiliu eval retrieval`` and ``make eval``.

The eval data is read at run time from a path given by the caller and never copied anywhere
(see ../shared/eval/README.md: most sets have no redistribution license).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from knowledge_index.article import load_kb_jsonl
from knowledge_index.embedder import Embedder, EmbedderUnavailable, load_embedder
from knowledge_index.metrics import compute_metrics
from knowledge_index.retriever import Retriever
from knowledge_index.thresholds import DEFAULT_EMBEDDER, fusion_weight_for, threshold_for
from knowledge_index.tuning import Pool, collect_pools, outcomes_at, tune_threshold

# The fixed contract other tools parse; extra keys may only follow these.
REPORT_KEYS = (
    "set",
    "articles",
    "queries_in_scope",
    "queries_oos",
    "top1",
    "recall_at_5",
    "mrr",
    "threshold",
    "escalation_precision",
    "escalation_recall",
    "escalation_f1",
)
# Chinese sets that get a second row with the out-of-domain zh_oos_dev queries appended.
ZH_OOS_SETS = ("bq_dev", "atec_dev")
ZH_OOS_DIR = "zh_oos_dev"


class RetrievalReport(BaseModel):
    """Every figure for one retrieval set at one configuration (fractions in 0..1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    set: str
    articles: int
    queries_in_scope: int
    queries_oos: int
    top1: float
    recall_at_5: float
    mrr: float
    threshold: float
    escalation_precision: float
    escalation_recall: float
    escalation_f1: float
    answered_right: float
    answered_wrong: float
    oos_answered: float
    model: str
    fusion_weight: float
    list_length: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The contract keys in contract order, then the extras."""
        data = self.model_dump()
        ordered = {key: data.pop(key) for key in REPORT_KEYS}
        ordered.update(data)
        return ordered

    def to_json(self, path: str | Path | None = None) -> str:
        """Serialize (contract keys first); also write to ``path`` when given."""
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=2)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text


def load_queries(path: Path) -> list[tuple[str, str | None]]:
    """``(text, expected)`` pairs from a queries.jsonl; unknown keys are ignored."""
    queries: list[tuple[str, str | None]] = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text, expected = record["text"], record.get("expected")
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{lineno}: bad query line: {exc}") from exc
            if not isinstance(text, str) or not (expected is None or isinstance(expected, str)):
                raise ValueError(f"{path}:{lineno}: 'text' must be a string and 'expected' a string or null")
            queries.append((text, expected))
    return queries


def run_set(
    set_dir: Path, *, oos_path: Path | None, embedder: Embedder, fusion_weight: float
) -> tuple[int, list[Pool], int, float]:
    """Index the set's KB and run every query once.

    Returns (articles, candidate pools, number of the set's own queries, seconds); the pools of
    the appended OOS queries, if any, follow the set's own.
    """
    started = time.perf_counter()
    articles = load_kb_jsonl(set_dir / "kb.jsonl")
    queries = load_queries(set_dir / "queries.jsonl")
    n_own = len(queries)
    if oos_path is not None:
        queries += [(text, None) for text, _ in load_queries(oos_path)]
    retriever = Retriever(embedder, fusion_weight=fusion_weight, threshold=0.0)
    retriever.build(articles)
    pools = collect_pools(retriever, [t for t, _ in queries], [e for _, e in queries])
    return len(articles), pools, n_own, time.perf_counter() - started


def evaluate_retrieval(
    set_dir: Path,
    *,
    oos_path: Path | None,
    embedder: Embedder,
    threshold: float | None,
    k: int = 10,
    fusion_weight: float | None = None,
    set_name: str | None = None,
) -> RetrievalReport:
    """Evaluate one retrieval set (``kb.jsonl`` + ``queries.jsonl``), optionally with extra OOS queries.

    ``threshold``/``fusion_weight`` default to the tuned values for the embedder. Rankings are
    articles by fused score, ``k`` long (MRR counts an expected article outside the list as 0).
    """
    weight = fusion_weight_for(embedder.name) if fusion_weight is None else fusion_weight
    n_articles, pools, _, seconds = run_set(set_dir, oos_path=oos_path, embedder=embedder, fusion_weight=weight)
    return report_from_pools(
        set_name or _set_label(set_dir, oos_path),
        n_articles,
        pools,
        embedder_name=embedder.name,
        fusion_weight=weight,
        threshold=threshold_for(embedder.name)[0] if threshold is None else threshold,
        k=k,
        seconds=seconds,
    )


def report_from_pools(
    name: str,
    n_articles: int,
    pools: Sequence[Pool],
    *,
    embedder_name: str,
    fusion_weight: float,
    threshold: float,
    k: int = 10,
    seconds: float = 0.0,
) -> RetrievalReport:
    """Compute the report for already-collected candidate pools."""
    metrics = compute_metrics(outcomes_at(pools, fusion_weight, k), threshold, k)
    return RetrievalReport(
        set=name,
        articles=n_articles,
        queries_in_scope=metrics.queries_in_scope,
        queries_oos=metrics.queries_oos,
        top1=metrics.top1,
        recall_at_5=metrics.recall_at_5,
        mrr=metrics.mrr,
        threshold=threshold,
        escalation_precision=metrics.escalation_precision,
        escalation_recall=metrics.escalation_recall,
        escalation_f1=metrics.escalation_f1,
        answered_right=metrics.answered_right,
        answered_wrong=metrics.answered_wrong,
        oos_answered=metrics.oos_answered,
        model=embedder_name,
        fusion_weight=fusion_weight,
        list_length=k,
        seconds=round(seconds, 2),
    )


def _set_label(set_dir: Path, oos_path: Path | None) -> str:
    if oos_path is None:
        return set_dir.name
    return f"{set_dir.name}+{oos_path.parent.name if oos_path.name == 'queries.jsonl' else oos_path.stem}"


def format_table(reports: Sequence[RetrievalReport]) -> str:
    """A markdown table of reports, percentages with one decimal."""
    header = (
        "| set | model | w | thr | articles | in-scope | OOS | top1 | R@5 | MRR "
        "| esc P | esc R | esc F1 | right | wrong |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in reports:
        pct = [f"{100 * v:.1f}" for v in (r.top1, r.recall_at_5, r.mrr)]
        esc = (
            [f"{100 * v:.1f}" for v in (r.escalation_precision, r.escalation_recall, r.escalation_f1)]
            if r.queries_oos
            else ["n/a"] * 3
        )
        ans = [f"{100 * v:.1f}" for v in (r.answered_right, r.answered_wrong)]
        lines.append(
            f"| {r.set} | {r.model} | {r.fusion_weight:.2f} | {r.threshold:.3f} | {r.articles} | "
            f"{r.queries_in_scope} | {r.queries_oos} | " + " | ".join([*pct, *esc, *ans]) + " |"
        )
    return "\n".join(lines)


def default_model() -> str:
    """The embedder the product uses: ``$EMBEDDING_MODEL`` or the built-in default."""
    return os.environ.get("EMBEDDING_MODEL") or DEFAULT_EMBEDDER


def main_retrieval(argv: list[str]) -> int:
    """``huiliu eval retrieval PATH [--json OUT] [--oos PATH] [--model NAME] [--threshold X] [--tune]``."""
    parser = argparse.ArgumentParser(prog="huiliu eval retrieval", description="Evaluate FAQ retrieval on one set.")
    parser.add_argument("path", type=Path, help="set folder with kb.jsonl and queries.jsonl")
    parser.add_argument("--json", type=Path, help="write the report as JSON here")
    parser.add_argument("--oos", type=Path, help="extra out-of-scope queries.jsonl (or its folder) to append")
    parser.add_argument(
        "--model", default=default_model(), help="embedder name (default: $EMBEDDING_MODEL or %(default)s)"
    )
    parser.add_argument("--threshold", type=float, help="decline threshold (default: tuned value for the model)")
    parser.add_argument("--fusion-weight", type=float, help="lexical weight w in (1-w)*dense + w*lexical")
    parser.add_argument(
        "--tune", action="store_true", help="also print the best threshold on this set (information only)"
    )
    args = parser.parse_args(argv)
    oos: Path | None = args.oos
    if oos is not None and oos.is_dir():
        oos = oos / "queries.jsonl"
    for needed in (args.path / "kb.jsonl", args.path / "queries.jsonl", *([oos] if oos else [])):
        if not needed.is_file():
            print(f"error: {needed} not found", file=sys.stderr)
            return 2
    try:
        embedder = load_embedder(args.model)
    except EmbedderUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.threshold is None:
        threshold, source = threshold_for(embedder.name)
        source = f"default for {embedder.name} ({source}, knowledge_index/thresholds.py)"
    else:
        threshold, source = args.threshold, "--threshold"
    weight = fusion_weight_for(embedder.name) if args.fusion_weight is None else args.fusion_weight
    n_articles, pools, _, seconds = run_set(args.path, oos_path=oos, embedder=embedder, fusion_weight=weight)
    report = report_from_pools(
        _set_label(args.path, oos),
        n_articles,
        pools,
        embedder_name=embedder.name,
        fusion_weight=weight,
        threshold=threshold,
        seconds=seconds,
    )
    print(format_table([report]))
    print(f"threshold {threshold:.3f}: {source}; fusion weight {weight:.2f}; list length 10; {seconds:.1f}s")
    if args.tune:
        if report.queries_oos == 0:
            print("--tune: this set has no out-of-scope queries, nothing to tune")
        else:
            tuned = tune_threshold([outcomes_at(pools, weight)])
            m = tuned.per_set[0]
            print(
                f"--tune (information only, tuned ON this set): best threshold {tuned.threshold:.3f} "
                f"-> escalation F1 {m.escalation_f1:.3f} "
                f"(P {m.escalation_precision:.3f}, R {m.escalation_recall:.3f}), "
                f"answered right {m.answered_right:.3f}, wrong {m.answered_wrong:.3f}"
            )
    if args.json is not None:
        report.to_json(args.json)
        print(f"wrote {args.json}")
    return 0


def retrieval_set_dirs(eval_root: Path) -> list[Path]:
    """Folders under ``eval_root`` holding a retrieval set (kb.jsonl + queries.jsonl), sorted by name."""
    return sorted(p for p in eval_root.iterdir() if (p / "kb.jsonl").is_file() and (p / "queries.jsonl").is_file())


def main_eval_all(eval_root: Path, *, model: str | None = None) -> int:
    """``make eval``: every retrieval set under ``eval_root`` (+ zh_oos rows), printed as one table."""
    if not eval_root.is_dir():
        print(f"eval: {eval_root} not found, skipping retrieval evaluation")
        return 0
    try:
        embedder = load_embedder(model or default_model())
    except EmbedderUnavailable as exc:
        print(f"eval: {exc}", file=sys.stderr)
        return 2
    weight = fusion_weight_for(embedder.name)
    threshold, source = threshold_for(embedder.name)
    zh_oos = eval_root / ZH_OOS_DIR / "queries.jsonl"
    reports: list[RetrievalReport] = []
    for set_dir in retrieval_set_dirs(eval_root):
        print(f"eval: {set_dir.name} ...", file=sys.stderr, flush=True)
        extra = zh_oos if set_dir.name in ZH_OOS_SETS and zh_oos.is_file() else None
        # One run serves both rows: the set alone is the prefix of the pools.
        n_articles, pools, n_own, seconds = run_set(set_dir, oos_path=extra, embedder=embedder, fusion_weight=weight)
        names = [(set_dir.name, pools[:n_own])] + ([(f"{set_dir.name}+{ZH_OOS_DIR}", pools)] if extra else [])
        for name, subset in names:
            reports.append(
                report_from_pools(
                    name,
                    n_articles,
                    subset,
                    embedder_name=embedder.name,
                    fusion_weight=weight,
                    threshold=threshold,
                    seconds=seconds,
                )
            )
    if not reports:
        print(f"eval: no retrieval sets (kb.jsonl + queries.jsonl) under {eval_root}, skipping")
        return 0
    print(format_table(reports))
    print(
        f"threshold {threshold:.3f} ({source}, knowledge_index/thresholds.py); list length 10; "
        "afqmc_train is the Chinese tuning set, not a headline figure"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main_retrieval(sys.argv[1:]))
