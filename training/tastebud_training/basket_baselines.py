"""Baselines of the next-basket literature, built from the positives before the cutoff (issue 22).

- Time-decayed "buy again": each past positive weighted by its event weight × 0.5^(age / half-life), popularity
  fill. The half-life is chosen on the training period alone (``choose_half_life``: an inner split of the data
  before the cutoff, the same protocol), never on the test period.
- TIFU-KNN (Hu, Dai, Wang, Yu 2020, "Modeling Personalized Item Frequency Information for Next-basket
  Recommendation", SIGIR): a user's baskets in groups of ``group_size``, decayed within (``within_decay``) and
  across groups (``group_decay``), blended with the mean vector of the ``neighbours`` nearest users (``alpha``).
  Defaults: the paper's Instacart setting.

Both rank a user the same at any request time after the cutoff (a common factor per user), so they answer the
``Recommender`` protocol of `tastebud evaluate` (a user-table row, k).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tastebud.adapters.embedded.user_table import UserTable
from tastebud.catalog import Catalog
from tastebud.features.history import EVENT_WEIGHTS
from tastebud_training.metrics import ndcg_at
from tastebud_training.protocols import split_positives

DAY_S = 86_400.0
HALF_LIVES_DAYS = (7.0, 14.0, 30.0, 60.0, 120.0, 240.0, 480.0)
INNER_CUTOFF_QUANTILE = 0.9


def _weights(positives: pd.DataFrame) -> np.ndarray:
    return positives["event_type"].map(EVENT_WEIGHTS).fillna(0).to_numpy(dtype=np.float64)


def decayed_rankings(positives: pd.DataFrame, as_of: float, half_life_days: float) -> dict[str, np.ndarray]:
    """user id -> catalog rows by decayed weight (ties: the most recent first); ``positives`` have user_id, row,
    ts, event_type."""
    age_days = (as_of - positives["ts"].to_numpy(dtype=np.float64)) / DAY_S
    scored = pd.DataFrame({"user_id": positives["user_id"].to_numpy(), "row": positives["row"].to_numpy(),
                           "score": _weights(positives) * np.power(0.5, age_days / half_life_days),
                           "ts": positives["ts"].to_numpy()})
    per_item = scored.groupby(["user_id", "row"], sort=False).agg(score=("score", "sum"), ts=("ts", "max"))
    per_item = per_item.reset_index().sort_values(["user_id", "score", "ts"], ascending=[True, False, False])
    return {str(user): group["row"].to_numpy(dtype=np.int64) for user, group in per_item.groupby("user_id")}


def _fill(own: np.ndarray, popular: np.ndarray, k: int) -> np.ndarray:
    if own.size >= k:
        return own[:k]
    head = popular[: k + own.size]
    return np.concatenate([own, head[~np.isin(head, own)]])[:k]


def choose_half_life(positives: pd.DataFrame, protocol: str, popular: np.ndarray,
                     candidates: Sequence[float] = HALF_LIVES_DAYS) -> tuple[float, dict[str, float]]:
    """The half-life (days) with the best NDCG@10 on an inner split of ``positives`` (all before the real cutoff):
    the same protocol at the 90th percentile of their times. Returns (best, {half-life: NDCG@10})."""
    inner_cutoff = float(np.quantile(positives["ts"].to_numpy(), INNER_CUTOFF_QUANTILE))
    _, truth, _, _ = split_positives(positives, inner_cutoff, protocol)
    history = positives[positives["ts"] < inner_cutoff]
    if truth.empty:
        return candidates[len(candidates) // 2], {}
    scores: dict[str, float] = {}
    for half_life in candidates:
        ranked = decayed_rankings(history, inner_cutoff, half_life)
        empty = np.zeros(0, np.int64)
        scores[f"{half_life:g}"] = float(np.mean([ndcg_at(_fill(ranked.get(u, empty), popular, 10), t, 10)
                                                  for u, t in truth.items()]))
    best = max(candidates, key=lambda h: scores[f"{h:g}"])
    return best, scores


class DecayedHistoryBaseline:
    """Time-decayed "buy again" (module docstring)."""

    def __init__(self, positives: pd.DataFrame, users: UserTable, catalog: Catalog, *, as_of: float,
                 half_life_days: float) -> None:
        self.half_life_days = half_life_days
        self._popular = catalog.popular_rows("all")
        ranked = decayed_rankings(positives, as_of, half_life_days)
        self._rows = {users.index_of(user): rows for user, rows in ranked.items()}

    def recommend(self, user_index: int | None, k: int) -> np.ndarray:
        return _fill(self._rows.get(user_index, np.zeros(0, np.int64)) if user_index is not None
                     else np.zeros(0, np.int64), self._popular, k)


class TifuKnnBaseline:
    """TIFU-KNN (module docstring) on baskets of positives (``basket`` key: the session, else the time)."""

    def __init__(self, positives: pd.DataFrame, users: UserTable, catalog: Catalog, *, group_size: int = 3,
                 within_decay: float = 0.9, group_decay: float = 0.7, neighbours: int = 300,
                 alpha: float = 0.9) -> None:
        self._popular = catalog.popular_rows("all")
        by_user = list(positives.groupby("user_id", sort=True))
        self._vectors = (sp.vstack([self._user_vector(mine, catalog.size, group_size, within_decay, group_decay)
                                    for _, mine in by_user]).tocsr() if by_user else sp.csr_matrix((0, catalog.size)))
        self._squared = np.asarray(self._vectors.multiply(self._vectors).sum(axis=1)).ravel()
        self._neighbours = min(neighbours, len(by_user) - 1)
        self._alpha = alpha
        self._row_of = {users.index_of(str(u)): i for i, (u, _) in enumerate(by_user)}

    @staticmethod
    def _user_vector(mine: pd.DataFrame, n_items: int, group_size: int, within_decay: float,
                     group_decay: float) -> sp.csr_matrix:
        rows_of = {b: np.unique(g["row"].to_numpy()) for b, g in mine.groupby("basket", sort=False)}
        order = mine.groupby("basket", sort=False)["ts"].min().sort_values(kind="stable").index
        baskets = [rows_of[b] for b in order]
        groups = [baskets[i:i + group_size] for i in range(0, len(baskets), group_size)]
        total = np.zeros(n_items)
        for j, group in enumerate(groups):
            vector = np.zeros(n_items)
            for i, rows in enumerate(group):
                vector[rows] += within_decay ** (len(group) - 1 - i)
            total += group_decay ** (len(groups) - 1 - j) * vector / len(group)
        return sp.csr_matrix(total / max(len(groups), 1))

    def _scores(self, position: int) -> np.ndarray:
        """α × the user's vector + (1 − α) × the mean of the nearest other users' (Euclidean, as the paper's
        implementation). Neighbours are found per asked user (one sparse product), never as a users × users
        matrix: the full Instacart release has 206,000 users."""
        own = self._vectors[position]
        scores = self._alpha * own.toarray().ravel()
        if self._neighbours >= 1 and self._alpha < 1.0:
            distance = self._squared + self._squared[position] - 2.0 * (self._vectors @ own.T).toarray().ravel()
            distance[position] = np.inf
            nearest = np.argpartition(distance, self._neighbours - 1)[: self._neighbours]
            scores += (1.0 - self._alpha) * np.asarray(self._vectors[nearest].mean(axis=0)).ravel()
        return scores

    def recommend(self, user_index: int | None, k: int) -> np.ndarray:
        position = self._row_of.get(user_index) if user_index is not None else None
        if position is None:
            return self._popular[:k]
        scores = self._scores(position)
        scored = np.flatnonzero(scores > 0)
        order = scored[np.lexsort((scored, -scores[scored]))]
        return _fill(order.astype(np.int64), self._popular, k)
