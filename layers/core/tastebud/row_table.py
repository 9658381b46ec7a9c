"""Per-catalog-row vectors that grow with fresh items without copying the version's (possibly 1.5 GB) array."""

from __future__ import annotations

import numpy as np


class GrowingRows:
    """Rows ``0..n-1`` from the version's array, rows ``n..`` from vectors appended since (fresh items).

    Indexing with an int array of any shape returns ``shape + (dim,)``, like a numpy array would.
    """

    def __init__(self, base: np.ndarray, extra: np.ndarray | None = None) -> None:
        self.base = base
        self.extra = np.zeros((0, base.shape[1]), dtype=base.dtype) if extra is None else extra

    @property
    def shape(self) -> tuple[int, int]:
        return (self.base.shape[0] + self.extra.shape[0], int(self.base.shape[1]))

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        n = self.base.shape[0]
        if not self.extra.shape[0] or rows.size == 0 or int(rows.max()) < n:
            return self.base[rows]
        flat = rows.reshape(-1)
        out = self.base[np.minimum(flat, n - 1)]
        fresh = flat >= n
        out[fresh] = self.extra[flat[fresh] - n]
        return out.reshape(*rows.shape, self.base.shape[1])

    def with_extra(self, vectors: np.ndarray) -> GrowingRows:
        """A table whose rows ``n..`` are exactly ``vectors`` (replaces earlier extra rows)."""
        return GrowingRows(self.base, np.ascontiguousarray(vectors, dtype=self.base.dtype).reshape(-1, self.shape[1]))
