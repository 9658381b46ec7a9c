"""Ranking metrics of DESIGN.md §3: Recall@K = hits / min(K, |test items|) and binary NDCG@K."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

KS = (10, 20, 50, 100, 200)
_DISCOUNT = 1.0 / np.log2(np.arange(2, max(KS) + 2))


def recall_at(ranked: Sequence[int] | np.ndarray, relevant: set[int], k: int) -> float:
    if not relevant:
        return 0.0
    hits = sum(1 for item in list(ranked)[:k] if item in relevant)
    return hits / min(k, len(relevant))


def ndcg_at(ranked: Sequence[int] | np.ndarray, relevant: set[int], k: int) -> float:
    if not relevant:
        return 0.0
    top = list(ranked)[:k]
    gains = np.fromiter((1.0 if item in relevant else 0.0 for item in top), dtype=np.float64, count=len(top))
    dcg = float(gains @ _DISCOUNT[: len(top)])
    ideal = float(_DISCOUNT[: min(k, len(relevant))].sum())
    return dcg / ideal


def summarise(lists: dict[str, list[np.ndarray]], truth: list[set[int]], ks: Sequence[int] = KS) -> dict[str, dict]:
    """Mean Recall@K and NDCG@K per model over the same users."""
    out: dict[str, dict] = {}
    for name, ranked_lists in lists.items():
        scores: dict[str, float] = {}
        for k in ks:
            pairs = list(zip(ranked_lists, truth, strict=True))
            scores[f"recall@{k}"] = float(np.mean([recall_at(r, t, k) for r, t in pairs]))
            scores[f"ndcg@{k}"] = float(np.mean([ndcg_at(r, t, k) for r, t in pairs]))
        out[name] = scores
    return out


def per_user(ranked_lists: Sequence[np.ndarray], truth: Sequence[set[int]], metric: str, k: int) -> np.ndarray:
    """``metric`` ("recall" or "ndcg") at ``k`` of each user."""
    score = recall_at if metric == "recall" else ndcg_at
    return np.asarray([score(r, t, k) for r, t in zip(ranked_lists, truth, strict=True)], dtype=np.float64)


BOOTSTRAP_SAMPLES = 2000


def paired_bootstrap(model: np.ndarray, baseline: np.ndarray, *, samples: int = BOOTSTRAP_SAMPLES,
                     seed: int = 0) -> dict[str, float]:
    """The model's mean relative to the baseline's on the same users (mean(model) / mean(baseline) - 1) and its
    95% interval from a paired bootstrap: users are resampled with replacement, both models' scores together."""
    if model.shape != baseline.shape or model.size == 0:
        raise ValueError("paired_bootstrap needs the same, non-empty set of users for both models")
    picks = np.random.default_rng(seed).integers(0, model.size, size=(samples, model.size))
    base = baseline[picks].mean(axis=1)
    ratios = np.divide(model[picks].mean(axis=1), base, out=np.full(samples, np.nan), where=base > 0) - 1.0
    point = model.mean() / baseline.mean() - 1.0 if baseline.mean() > 0 else float("nan")
    low, high = np.nanpercentile(ratios, [2.5, 97.5]) if np.isfinite(ratios).any() else (np.nan, np.nan)
    return {"relative": float(point), "low": float(low), "high": float(high), "users": int(model.size)}
