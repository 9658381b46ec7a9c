"""Items bought by the shoppers of what the user buys: item-kNN against the user's decayed purchases, the explore
signal the retriever draws candidates from and the ranker's ``same_shoppers_score`` feature."""

from __future__ import annotations

import numpy as np

from tastebud.catalog import Catalog
from tastebud.domain import UserProfile
from tastebud.features.history import DECAY_HALF_LIVES_DAYS, PURCHASES, REPEAT_COLUMNS, decayed_purchases

# The user's purchases with the most decayed weight whose shoppers' items are looked up (Instacart half, explore
# Recall@20 of the score alone: 30 and 50 alike, 0.068; 20 0.065).
SIMILAR_HISTORY = 30
SIMILAR_HALF_LIFE_DAYS = 30.0  # the weight of a purchase in the item-kNN score (chosen with catalog.similar's table)
_SIMILAR_DECAY = DECAY_HALF_LIVES_DAYS.index(SIMILAR_HALF_LIFE_DAYS)
SameShoppers = tuple[np.ndarray, np.ndarray]  # (item rows ascending, item-kNN score): see same_shoppers


def same_shoppers(catalog: Catalog, user: UserProfile, now: float) -> SameShoppers:
    """Items bought by the shoppers of what the user buys: (rows ascending, score), items the user bought included.

    Score = Σ over the user's ``SIMILAR_HISTORY`` heaviest purchases of 0.5^(age / 30 days) weight × the item-kNN
    similarity (catalog.similar), over the weights' sum: item-kNN against the decayed purchases, the same at any
    history length. Empty when the store keeps no purchase statistics.
    """
    hist_rows, repeat = user.history_rows, user.history_repeat
    if not hist_rows.size or repeat.shape != (hist_rows.size, len(REPEAT_COLUMNS)):
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    bought = repeat[:, PURCHASES] > 0
    rows = hist_rows[bought]
    weights = decayed_purchases(repeat[bought], now)[:, _SIMILAR_DECAY]
    if rows.size > SIMILAR_HISTORY:
        heaviest = np.argpartition(-weights, SIMILAR_HISTORY)[:SIMILAR_HISTORY]
        rows, weights = rows[heaviest], weights[heaviest]
    owner, partners, scores = catalog.similar(rows)
    total = float(weights.sum())
    if not partners.size or total <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    unique, inverse = np.unique(partners, return_inverse=True)
    return unique, np.bincount(inverse, weights=scores * weights[owner]) / total


def same_shoppers_of(similar: SameShoppers, rows: np.ndarray) -> np.ndarray:
    """Each of ``rows``' item-kNN score (0 where it has none): the ``same_shoppers_score`` feature."""
    similar_rows, scores = similar
    if not similar_rows.size:
        return np.zeros(rows.size, dtype=np.float32)
    pos = np.minimum(np.searchsorted(similar_rows, rows), similar_rows.size - 1)
    return np.where(similar_rows[pos] == rows, scores[pos], 0.0).astype(np.float32)
