"""The content baseline's user encoder: a recency-weighted mean of the user's positive items' text vectors.

Cold users with stated preferences get the mean of their preference terms' vectors (embedded offline
with the same text model); users with neither get None, and retrieval falls back to popularity.
"""

from __future__ import annotations

import numpy as np

from tastebud.domain import RequestContext, UserProfile
from tastebud.row_table import GrowingRows


class ContentUserEncoder:
    """UserEncoder for the content baseline (MiniLM item vectors computed offline)."""

    def __init__(self, item_vectors: np.ndarray, preference_vectors: np.ndarray, *, recency_half_life: float = 8.0,
                 max_history: int = 50) -> None:
        self._items: np.ndarray | GrowingRows = item_vectors
        self._preferences = preference_vectors
        self._decay = np.float32(0.5 ** (1.0 / recency_half_life))
        self._max_history = max_history

    def with_fresh_items(self, text_vectors: np.ndarray) -> ContentUserEncoder:
        """The same encoder over a catalog with fresh items appended (their text vectors at the end)."""
        encoder = ContentUserEncoder.__new__(ContentUserEncoder)
        encoder.__dict__.update(self.__dict__)
        base = self._items.base if isinstance(self._items, GrowingRows) else self._items
        encoder._items = GrowingRows(base, text_vectors)
        return encoder

    def encode(self, user: UserProfile, context: RequestContext) -> np.ndarray | None:
        if user.has_history:
            rows = user.history_rows[: self._max_history]
            # Most recent first: weight = graded strength x exponential decay in recency rank.
            weights = user.history_weights[: rows.size] * self._decay ** np.arange(rows.size, dtype=np.float32)
            query = weights @ self._items[rows]
        elif user.preference_rows.size:
            query = self._preferences[user.preference_rows].sum(axis=0)
        else:
            return None
        norm = float(np.linalg.norm(query))
        return (query / norm).astype(np.float32) if norm > 0 else None
