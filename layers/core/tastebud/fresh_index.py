"""The fresh-items side index: exact inner-product search over items added or changed since the index was built.

It holds at most the items upserted since the last full rebuild (thousands, not millions), so brute force is
exact and takes microseconds; the retriever merges its neighbours with the ANN index's by score.
"""

from __future__ import annotations

import numpy as np


class FreshItemsIndex:
    """Vectors of fresh items and the catalog rows they stand for."""

    def __init__(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        if rows.shape[0] != vectors.shape[0]:
            raise ValueError(f"{rows.shape[0]} rows for {vectors.shape[0]} fresh vectors")
        self.rows = rows.astype(np.int64)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    def __len__(self) -> int:
        return int(self.rows.size)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(catalog rows, scores) of the k best fresh items, best first."""
        if not self.rows.size or k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores = self.vectors @ query.astype(np.float32)
        k = min(k, scores.size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return self.rows[top], scores[top]


EMPTY_FRESH_INDEX = FreshItemsIndex(np.zeros(0, np.int64), np.zeros((0, 1), np.float32))
