"""Sentiment/anger/urgency scoring: hand-written cases (no eval data), metric maths, eval JSON contract."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from knowledge_index.embedder import Embedder, load_embedder
from ticketing.sentiment import LEXICON_WEIGHTS, USE_WEIGHTS, SentimentScore, SentimentScorer, extract_lexicon_features
from ticketing.sentiment_eval import auroc, best_f1, evaluate_sentiment, f1_at, fit_logistic, load_messages, main

NEUTRAL_QUESTIONS = ("怎么退货", "请问什么时候发货？", "可以开发票吗", "How do I return an item?")


@pytest.fixture(scope="module")
def use_embedder() -> Embedder:
    return load_embedder("use-multilingual")


@pytest.fixture(scope="module", params=["lexicon", "use"])
def scorer(request: pytest.FixtureRequest, use_embedder: Embedder) -> SentimentScorer:
    return SentimentScorer(use_embedder if request.param == "use" else None)


# --- flags and reasons ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "flag", "reason_part"),
    [
        ("我要打12315投诉你们", "threat", "12315"),
        ("再不处理我就去消协投诉", "threat", "consumer association"),
        ("I'm filing a chargeback with my bank", "threat", "chargeback"),
        ("我会找律师起诉你们", "threat", "legal action"),
        ("水壶底座冒烟了", "safety", "fire/smoke"),
        ("插上电源就漏电，手被电了一下", "safety", "electrical"),
        ("用了这个面霜脸上红肿过敏", "safety", "allergic"),
        ("The heater started smoking and there was a burning smell", "safety", "fire/smoke"),
        ("THIS IS UNACCEPTABLE!!!", "caps", "all caps"),
        ("真是太'好'了，第三次发错货", "sarcasm", "sarcasm"),
        ("真是太'好'了，第三次发错货", "repeated_failure", "第三次"),
        ("Great, another delay. Thanks for nothing.", "sarcasm", "sarcasm"),
        ("我已经等了一个星期了，请问还要等多久？", "waiting", "wait"),
        ("急用，请马上发货", "urgent", "urgent"),
    ],
)
def test_flags_and_reasons(scorer: SentimentScorer, text: str, flag: str, reason_part: str) -> None:
    result = scorer.score(text)
    assert flag in result.flags, result
    assert any(reason_part in reason for reason in result.reasons), result.reasons


@pytest.mark.parametrize("text", [*NEUTRAL_QUESTIONS, "这个不错", "第二次购买了，很好用", "Thanks, it works great"])
def test_no_alarm_flags_on_calm_messages(scorer: SentimentScorer, text: str) -> None:
    flags = scorer.score(text).flags
    assert not flags & {"threat", "safety", "sarcasm", "repeated_failure", "waiting", "caps", "angry"}, flags


def test_threat_and_safety_raise_urgency(scorer: SentimentScorer) -> None:
    calm = max(scorer.score(t).urgency for t in NEUTRAL_QUESTIONS)
    for text in ("我要打12315投诉你们", "水壶底座冒烟了", "I will contact my lawyer"):
        result = scorer.score(text)
        assert result.urgency > 0.6 > calm, (text, result, calm)
        assert result.negative >= scorer.negative_threshold


# --- polarity ------------------------------------------------------------------------------------


def test_negation(scorer: SentimentScorer) -> None:
    assert scorer.score("这个不错").negative < scorer.negative_threshold
    assert scorer.score("一点都不好").negative >= scorer.negative_threshold
    assert scorer.score("不满意，质量不行").negative >= scorer.negative_threshold
    assert scorer.score("一点都不好").negative > scorer.score("这个很好").negative
    assert scorer.score("not good at all").negative > scorer.score("really good").negative


def test_negation_features_are_pure_lexicon() -> None:
    good, bad = extract_lexicon_features("这个不错"), extract_lexicon_features("一点都不好")
    assert good.positive > 0 and good.negative == 0
    assert bad.negative > 0
    assert extract_lexicon_features("不是很满意").negated_praise == ("很满意",)
    assert extract_lexicon_features("not happy").negated_praise == ("happy",)


@pytest.mark.parametrize(
    "text",
    [
        "我已经等了一个星期了，请问还要等多久？",
        "真是太'好'了，第三次发错货",
        "呵呵，这就是你们的服务",
        "Great, another delay. Thanks for nothing.",
    ],
)
def test_polite_anger_and_sarcasm_beat_neutral_questions(scorer: SentimentScorer, text: str) -> None:
    result = scorer.score(text)
    neutral = [scorer.score(q) for q in NEUTRAL_QUESTIONS]
    assert result.negative > max(n.negative for n in neutral)
    assert result.anger > max(n.anger for n in neutral)
    assert result.negative >= scorer.negative_threshold


def test_english_shouting_is_angry(scorer: SentimentScorer) -> None:
    result = scorer.score("THIS IS UNACCEPTABLE!!!")
    assert {"caps", "angry", "negative"} <= result.flags
    assert result.anger >= scorer.anger_threshold


def test_neutral_shop_questions_are_low(use_embedder: Embedder) -> None:
    scorer = SentimentScorer(use_embedder)
    for text in NEUTRAL_QUESTIONS:
        result = scorer.score(text)
        assert result.negative < scorer.negative_threshold, (text, result)
        assert result.anger < 0.2 and result.urgency < 0.3, (text, result)


def test_scores_are_probabilities(scorer: SentimentScorer) -> None:
    for result in scorer.score_many(["", "   ", "!!!", "好", "a" * 2000, "垃圾" * 50]):
        assert isinstance(result, SentimentScore)
        for value in (result.negative, result.anger, result.urgency):
            assert 0.0 <= value <= 1.0 and not math.isnan(value)


def test_score_many_equals_score(scorer: SentimentScorer) -> None:
    texts = ["我要打12315投诉你们", "这个不错", "怎么退货", "THIS IS UNACCEPTABLE!!!", "还没收到货"]
    batch = scorer.score_many(texts)
    for text, batched in zip(texts, batch, strict=True):
        single = scorer.score(text)
        assert single.reasons == batched.reasons and single.flags == batched.flags
        # The quantized USE graph quantizes activations per batch, so a vector depends slightly on its
        # batch mates (measured: ~1e-3 on these probabilities); lexicon-only scores are identical.
        tolerance = 5e-3 if scorer.embedder is not None else 0.0
        for a, b in (
            (single.negative, batched.negative),
            (single.anger, batched.anger),
            (single.urgency, batched.urgency),
        ):
            assert a == pytest.approx(b, abs=tolerance)
    assert scorer.score_many([]) == []


def test_default_weights_follow_embedder(use_embedder: Embedder) -> None:
    assert SentimentScorer().weights is LEXICON_WEIGHTS
    assert SentimentScorer(use_embedder).weights is USE_WEIGHTS
    with pytest.raises(ValueError):
        SentimentScorer(weights=USE_WEIGHTS)


# --- metrics -------------------------------------------------------------------------------------


def test_auroc_hand_cases() -> None:
    assert auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5  # all tied
    # pairs (pos, neg): (0.5 vs 0.5) tie = 1/2, (0.5 vs 0.1) = 1, (0.9 vs both) = 2 -> 3.5 / 4
    assert auroc([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1]) == pytest.approx(0.875)
    # brute force on a small tied example
    scores = [0.3, 0.3, 0.7, 0.1, 0.7, 0.3, 0.9]
    labels = [1, 0, 1, 0, 0, 1, 1]
    pairs = [
        1.0 if p > n else 0.5 if p == n else 0.0
        for p, lp in zip(scores, labels, strict=True)
        for n, ln in zip(scores, labels, strict=True)
        if lp == 1 and ln == 0
    ]
    assert auroc(scores, labels) == pytest.approx(sum(pairs) / len(pairs))
    assert math.isnan(auroc([0.1, 0.2], [1, 1]))


def test_f1_hand_cases() -> None:
    f1, precision, recall = f1_at([0.9, 0.6, 0.4, 0.1], [1, 0, 1, 0], 0.5)
    assert (precision, recall) == (0.5, 0.5) and f1 == 0.5
    assert f1_at([0.1, 0.2], [1, 0], 0.5) == (0.0, 0.0, 0.0)
    best, threshold = best_f1([0.9, 0.6, 0.4, 0.1], [1, 0, 1, 0])
    assert best == pytest.approx(0.8) and threshold == 0.4


def test_fit_logistic_recovers_direction() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 2))
    y = (rng.random(2000) < 1 / (1 + np.exp(-(0.5 + 2 * x[:, 0] - x[:, 1])))).astype(int)
    coef = fit_logistic(np.c_[np.ones(2000), x], y, l2=0.0)
    assert coef == pytest.approx([0.5, 2.0, -1.0], abs=0.25)


# --- eval contract (tiny hand-made set) ----------------------------------------------------------

TINY_SET = [
    {"text": "质量太差了，用两天就坏了", "negative": 1, "anger": 0},
    {"text": "垃圾商家，气死我了，我要投诉！！", "negative": 1, "anger": 1},
    {"text": "非常满意，物流很快", "negative": 0, "anger": 0},
    {"text": "味道不错，下次还来", "negative": 0, "anger": 0},
    {"text": "THIS IS UNACCEPTABLE!!!", "negative": 1, "anger": 1, "extra": "ignored"},
    {"text": "Thanks, great service", "negative": 0, "anger": 0},
]


def _write_set(folder: Path, rows: list[dict[str, object]]) -> Path:
    folder.mkdir()
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    (folder / "messages.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_eval_json_contract(tmp_path: Path, scorer: SentimentScorer) -> None:
    set_dir = _write_set(tmp_path / "tiny", TINY_SET)
    report = evaluate_sentiment(set_dir, scorer)
    assert list(report) == ["set", "messages", "negative", "anger"]
    assert report["set"] == "tiny" and report["messages"] == 6
    for label in ("negative", "anger"):
        assert list(report[label]) == ["auroc", "f1", "threshold"]
    assert report["negative"]["auroc"] == 1.0 and report["negative"]["threshold"] == scorer.negative_threshold
    assert report["anger"]["auroc"] == 1.0


def test_cli_json_without_anger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"text": r["text"], "negative": r["negative"]} for r in TINY_SET]
    set_dir = _write_set(tmp_path / "no_anger", rows)
    out = tmp_path / "report.json"
    assert main([str(set_dir), "--json", str(out), "--no-embedder"]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert list(report) == ["set", "messages", "negative"]
    assert set(report["negative"]) == {"auroc", "f1", "threshold"}
    assert "AUROC" in capsys.readouterr().out
    assert main([str(tmp_path / "missing")]) == 2


def test_limit_is_an_evenly_spaced_sample(tmp_path: Path) -> None:
    set_dir = _write_set(tmp_path / "ordered", [{"text": str(i), "negative": int(i >= 5)} for i in range(10)])
    sample = load_messages(set_dir / "messages.jsonl", limit=4)
    assert len(sample) == 4 and {m.negative for m in sample} == {0, 1}
