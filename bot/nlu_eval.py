"""``huiliu eval nlu``: Rasa's own NLU cross-validation on our training data, summarized.

Runs ``rasa test nlu --cross-validation`` in the Rasa venv (never importing Rasa here) and prints
intent accuracy, macro/weighted F1 and per-intent F1 from its ``intent_report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bot.rasa_process import PROJECT_DIR, rasa_bin


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The figures we publish from Rasa's intent report (sklearn classification_report format)."""
    per_intent = {
        name: {"f1": round(v["f1-score"], 3), "support": v["support"]}
        for name, v in sorted(report.items())
        if isinstance(v, dict) and "f1-score" in v and name not in {"macro avg", "weighted avg", "micro avg"}
    }
    return {
        "accuracy": round(float(report.get("accuracy", report.get("micro avg", {}).get("f1-score", 0.0))), 4),
        "macro_f1": round(report["macro avg"]["f1-score"], 4),
        "weighted_f1": round(report["weighted avg"]["f1-score"], 4),
        "intents": per_intent,
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="huiliu eval nlu", description="Rasa NLU cross-validation")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--venv", type=Path, default=Path(".venv-rasa"))
    p.add_argument("--json", type=Path, help="write the summary here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="huiliu-nlu-") as out:
        result = subprocess.run(
            [str(rasa_bin(args.venv)), "test", "nlu", "--cross-validation", "--folds", str(args.folds),
             "--config", "config.yml", "--nlu", "data/nlu.yml", "--out", out],
            cwd=PROJECT_DIR, capture_output=True, text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "RASA_CACHE_DIRECTORY": str(Path(out) / "cache")},
        )
        report_path = Path(out) / "intent_report.json"
        if result.returncode != 0 or not report_path.exists():
            print(result.stdout[-3000:], result.stderr[-3000:])
            return 1
        summary = summarize(json.loads(report_path.read_text()))
    print(f"Rasa NLU {args.folds}-fold cross-validation on bot/rasa/data/nlu.yml")
    print(f"intent accuracy {summary['accuracy']:.3f} · macro F1 {summary['macro_f1']:.3f} · "
          f"weighted F1 {summary['weighted_f1']:.3f}")
    for name, v in summary["intents"].items():
        print(f"  {name:22s} F1 {v['f1']:.3f}  (n={v['support']})")
    if args.json:
        args.json.write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0
