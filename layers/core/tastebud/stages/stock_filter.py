"""Stage 4 — drop out-of-stock items, checking only as many as needed to fill the page."""

from __future__ import annotations

from collections.abc import Container

import numpy as np

from tastebud.catalog import Catalog
from tastebud.domain import Candidates
from tastebud.errors import DependencyError
from tastebud.ports import StockStore


class StockFilter:
    def __init__(self, catalog: Catalog, store: StockStore, *, serve_without_filter: bool,
                 fallback_out_of_stock: Container[str] = frozenset()) -> None:
        self._catalog = catalog
        self._store = store
        self._serve_without_filter = serve_without_filter
        self._fallback = fallback_out_of_stock

    def run(self, candidates: Candidates, k: int, degraded: list[str]) -> Candidates:
        """Return the first k in-stock candidates. Checks 2k+10 first (one Redis call), more only if needed."""
        kept: list[np.ndarray] = []
        found = 0
        start = 0
        n = len(candidates)
        window = 2 * k + 10
        while found < k and start < n:
            index = np.arange(start, min(n, start + window))
            ids = self._catalog.item_ids[candidates.rows[index]].tolist()
            in_stock = ~self._out_of_stock(ids, degraded)
            good = index[in_stock]
            kept.append(good)
            found += good.size
            start += window
            window = n  # second round: take everything left in one call
        selected = np.concatenate(kept)[:k] if kept else np.zeros(0, dtype=np.int64)
        return candidates.take(selected)

    def _out_of_stock(self, ids: list[str], degraded: list[str]) -> np.ndarray:
        try:
            return self._store.out_of_stock(ids)
        except DependencyError:
            if "stock" not in degraded:
                degraded.append("stock")
            if self._serve_without_filter:
                return np.zeros(len(ids), dtype=bool)
            # Default: the stock snapshot shipped with the artifacts is better than nothing.
            return np.fromiter((i in self._fallback for i in ids), dtype=bool, count=len(ids))
