from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge_index.embedder import Embedder
from knowledge_index.evaluation import REPORT_KEYS, evaluate_retrieval, main_eval_all, main_retrieval
from knowledge_index.metrics import QueryOutcome, compute_metrics
from knowledge_index.tuning import tune_threshold, wrong_answer_rate

# Hand-made outcomes; the expected numbers below are worked out by hand in the comments.
OUTCOMES = [
    QueryOutcome("a", ("a", "b"), 0.9),  # rank 1, answered right
    QueryOutcome("b", ("a", "b", "c"), 0.8),  # rank 2, answered wrong
    QueryOutcome("c", ("a", "b", "d", "e", "f", "c"), 0.3),  # rank 6, escalated (in scope: false positive)
    QueryOutcome("d", ("a",), 0.7),  # not in list, answered wrong
    QueryOutcome(None, ("a",), 0.2),  # OOS escalated: true positive
    QueryOutcome(None, ("b",), 0.9),  # OOS answered: false negative
]


def test_metrics_by_hand() -> None:
    m = compute_metrics(OUTCOMES, threshold=0.5)
    assert (m.queries_in_scope, m.queries_oos, m.escalated) == (4, 2, 2)
    assert m.top1 == pytest.approx(1 / 4)
    assert m.recall_at_5 == pytest.approx(2 / 4)
    assert m.mrr == pytest.approx((1 + 1 / 2 + 1 / 6 + 0) / 4)
    assert m.escalation_precision == pytest.approx(1 / 2)  # tp=1, fp=1
    assert m.escalation_recall == pytest.approx(1 / 2)  # tp=1, fn=1
    assert m.escalation_f1 == pytest.approx(1 / 2)
    assert m.answered_right == pytest.approx(1 / 4)
    assert m.answered_wrong == pytest.approx(2 / 4)
    assert m.oos_answered == pytest.approx(1 / 2)
    assert wrong_answer_rate(m) == pytest.approx(3 / 6)


def test_mrr_list_length_cuts_off() -> None:
    assert compute_metrics(OUTCOMES, 0.5, list_length=5).mrr == pytest.approx((1 + 1 / 2) / 4)


def test_tune_threshold_picks_most_cautious_within_tolerance() -> None:
    outcomes = [
        QueryOutcome("a", ("a",), 0.9),
        QueryOutcome("b", ("x",), 0.6),  # wrong answer unless escalated
        QueryOutcome(None, ("a",), 0.4),
        QueryOutcome(None, ("a",), 0.55),
    ]
    result = tune_threshold([outcomes], grid=[0.0, 0.5, 0.58, 0.65, 0.95])
    # 0.58: P=1, R=1 -> F1 1.0. 0.65 also escalates "b": P=2/3, R=1 -> F1 0.8. 0.58 wins.
    assert result.threshold == 0.58 and result.macro_f1 == pytest.approx(1.0)
    loose = tune_threshold([outcomes], grid=[0.0, 0.5, 0.58, 0.65, 0.95], f1_tolerance=0.25)
    # Within 0.25 of the best, 0.65 has the lower wrong-answer rate (0 vs 1/4 at 0.58): cautious wins.
    assert loose.threshold == 0.65


def write_set(root: Path) -> Path:
    set_dir = root / "toy_set"
    set_dir.mkdir()
    kb = [
        {"id": "refund", "title": "怎么申请退款", "questions": ["退款多久到账"], "answer": ""},
        {"id": "ship", "title": "什么时候发货", "questions": [], "answer": "", "extra": 1},
        {"id": "track", "title": "Where is my package?", "questions": ["track my order"], "answer": ""},
    ]
    queries = [
        {"text": "怎么申请退款", "expected": "refund"},
        {"text": "什么时候发货", "expected": "ship"},
        {"text": "Where is my package?", "expected": "track"},
        {"text": "今天北京天气怎么样", "expected": None, "domain": "weather"},
        {"text": "play some jazz music", "expected": None},
    ]
    for name, rows in (("kb.jsonl", kb), ("queries.jsonl", queries)):
        (set_dir / name).write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", "utf-8")
    return set_dir


def test_evaluate_retrieval_on_tiny_set(tmp_path: Path, use_embedder: Embedder) -> None:
    set_dir = write_set(tmp_path)
    # In-scope queries restate a title exactly (fused score ~1.0); the OOS ones match nothing well.
    strict = evaluate_retrieval(set_dir, oos_path=None, embedder=use_embedder, threshold=0.99)
    assert (strict.set, strict.articles, strict.queries_in_scope, strict.queries_oos) == ("toy_set", 3, 3, 2)
    assert (strict.top1, strict.recall_at_5, strict.mrr) == (1.0, 1.0, 1.0)
    assert (strict.escalation_precision, strict.escalation_recall, strict.escalation_f1) == (1.0, 1.0, 1.0)
    assert (strict.answered_right, strict.answered_wrong) == (1.0, 0.0)

    # Above every score: all 5 escalated -> precision 2/5, recall 1, F1 = 2*0.4/1.4.
    everything = evaluate_retrieval(set_dir, oos_path=None, embedder=use_embedder, threshold=1.01)
    assert everything.escalation_precision == pytest.approx(2 / 5)
    assert everything.escalation_recall == 1.0
    assert everything.escalation_f1 == pytest.approx(0.8 / 1.4)
    assert everything.answered_right == 0.0

    # Appending extra OOS queries from another file.
    extra = tmp_path / "oos.jsonl"
    extra.write_text('{"text": "讲个笑话", "expected": null}\n', "utf-8")
    with_oos = evaluate_retrieval(set_dir, oos_path=extra, embedder=use_embedder, threshold=0.99)
    assert with_oos.queries_oos == 3 and with_oos.escalation_recall == 1.0


def test_to_json_keys_are_the_contract(tmp_path: Path, use_embedder: Embedder) -> None:
    report = evaluate_retrieval(write_set(tmp_path), oos_path=None, embedder=use_embedder, threshold=0.5)
    out = tmp_path / "report.json"
    report.to_json(out)
    data = json.loads(out.read_text("utf-8"))
    contract = [
        "set", "articles", "queries_in_scope", "queries_oos", "top1", "recall_at_5", "mrr", "threshold",
        "escalation_precision", "escalation_recall", "escalation_f1",
    ]  # fmt: skip
    assert list(REPORT_KEYS) == contract
    assert list(data)[: len(contract)] == contract  # extras only after the contract keys
    assert data["threshold"] == 0.5
    assert all(0.0 <= data[k] <= 1.0 for k in contract[4:])


def test_cli_retrieval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    set_dir = write_set(tmp_path)
    out = tmp_path / "r.json"
    assert main_retrieval([str(set_dir), "--json", str(out), "--threshold", "0.99", "--tune"]) == 0
    printed = capsys.readouterr().out
    assert "toy_set" in printed and "threshold 0.990: --threshold" in printed and "--tune" in printed
    assert json.loads(out.read_text("utf-8"))["escalation_f1"] == 1.0
    assert main_retrieval([str(tmp_path / "missing")]) == 2


def test_eval_all_skips_missing_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main_eval_all(tmp_path / "nope") == 0
    assert "skipping" in capsys.readouterr().out


def test_eval_all_one_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_set(tmp_path)
    (tmp_path / "sentiment_only").mkdir()  # not a retrieval set: ignored
    assert main_eval_all(tmp_path, model="use-multilingual") == 0
    out = capsys.readouterr().out
    assert out.count("| set |") == 1 and "| toy_set |" in out
