"""How far the ranker's retrieval inputs move between the two-tower it was trained with and the one serving ships.

The ranker learns from candidates of a two-tower fitted at the feature cut; serving runs a two-tower refitted on all
data, whose embedding space differs. On the same users and candidates, this measures how much each retrieval input
changes between the two models: the raw dot product (the old feature) against the per-request rank and z-score
(the features the ranker now uses). Written to the manifest (``ranker.retrieval_skew``) at every training.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tastebud.adapters.embedded.user_table import UserTable
from tastebud.domain import SOURCE_ANN, RequestContext
from tastebud.features.ranker_features import retrieval_rank_and_z
from tastebud.pipeline.stages.retrieve import Retriever
from tastebud.ports import UserEncoder
from tastebud.recommendation import RequestState


def retrieval_skew(users: UserTable, requests: Sequence[tuple[str, float]], trained_with: Retriever,
                   serving_encoder: UserEncoder, serving_vectors: np.ndarray) -> dict[str, float]:
    """Mean absolute change of each retrieval input on the same candidates, and the raw scores' levels."""
    raw_then, raw_now, rank_change, z_change = [], [], [], []
    for user_id, now in requests:
        user, context = users.user(user_id), RequestContext(now=float(now))
        candidates = trained_with.run(RequestState(user, context))
        scored = np.flatnonzero(((candidates.sources & SOURCE_ANN) > 0) & ~np.isnan(candidates.retrieval_scores))
        query = serving_encoder.encode(user, context)
        if query is None or scored.size < 2:
            continue
        then = candidates.retrieval_scores[scored].astype(np.float64)
        served = serving_vectors[candidates.rows[scored]].astype(np.float64) @ query.astype(np.float64)
        rank_then, z_then = retrieval_rank_and_z(then.astype(np.float32))
        rank_now, z_now = retrieval_rank_and_z(served.astype(np.float32))
        raw_then.append(then)
        raw_now.append(served)
        rank_change.append(np.abs(rank_now - rank_then))
        z_change.append(np.abs(z_now - z_then))
    if not raw_then:
        return {}
    before, after = np.concatenate(raw_then), np.concatenate(raw_now)
    return {"requests": len(raw_then), "raw_score_mean_trained": round(float(before.mean()), 4),
            "raw_score_mean_serving": round(float(after.mean()), 4),
            "raw_score_abs_change": round(float(np.abs(after - before).mean()), 4),
            "raw_score_abs_change_in_stds": round(float(np.abs(after - before).mean() / (before.std() or 1.0)), 4),
            "rank_abs_change": round(float(np.concatenate(rank_change).mean()), 4),
            "z_score_abs_change": round(float(np.concatenate(z_change).mean()), 4)}
