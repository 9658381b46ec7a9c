"""Stage 4 — drop out-of-stock items, checking only as many as needed to fill the page.

The service starts the lookup for every retrieved candidate as soon as stage 1 is done (``prefetch``) and
collects it here, so the Redis round trip runs while stages 2 and 3 rank; without a prefetch the stage asks
for the first 2k+10 ranked items and then for the rest if needed.
"""

from __future__ import annotations

from collections.abc import Container

import numpy as np

from tastebud.catalog import Catalog
from tastebud.domain import Candidates
from tastebud.errors import DependencyError
from tastebud.ports import PendingStock, StockStore
from tastebud.recommendation import RequestState


class StockPrefetch:
    """The stock lookup of a request's retrieved candidates, started before ranking and read once."""

    def __init__(self, rows: np.ndarray, pending: PendingStock) -> None:
        order = np.argsort(rows, kind="stable")
        self._sorted_rows = rows[order]
        self._order = order
        self._pending = pending
        self._flags: np.ndarray | None = None

    def out_of_stock(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(out-of-stock flags, known mask) for ``rows``; raises DependencyError as the store would."""
        if self._flags is None:
            try:
                self._flags = self._pending.result()
            finally:
                self._pending.close()
        if not self._sorted_rows.size:
            return np.zeros(rows.size, dtype=bool), np.zeros(rows.size, dtype=bool)
        pos = np.minimum(np.searchsorted(self._sorted_rows, rows), self._sorted_rows.size - 1)
        known = self._sorted_rows[pos] == rows
        return known & self._flags[self._order[pos]], known

    def close(self) -> None:
        self._pending.close()


class StockFilter:
    def __init__(self, catalog: Catalog, store: StockStore, *, serve_without_filter: bool,
                 fallback_out_of_stock: Container[str] = frozenset()) -> None:
        self._catalog = catalog
        self._store = store
        self._serve_without_filter = serve_without_filter
        self._fallback = fallback_out_of_stock

    def prefetch(self, candidates: Candidates) -> StockPrefetch:
        """Start the lookup of every candidate now; ``run`` collects it."""
        rows = candidates.rows
        return StockPrefetch(rows, self._store.begin_out_of_stock(self._catalog.item_ids[rows].tolist()))

    def run(self, state: RequestState, candidates: Candidates, prefetched: StockPrefetch | None = None) -> Candidates:
        """Return the first ``state.k`` in-stock candidates. Checks 2k+10 first (one Redis call), more only if needed;
        a stock store that is down puts "stock" in ``state.degraded``."""
        k, degraded = state.k, state.degraded
        if prefetched is not None:
            return self._run_prefetched(candidates, k, degraded, prefetched)
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

    def _run_prefetched(self, candidates: Candidates, k: int, degraded: list[str],
                        prefetched: StockPrefetch) -> Candidates:
        try:
            out, known = prefetched.out_of_stock(candidates.rows)
        except DependencyError:
            ids = self._catalog.item_ids[candidates.rows].tolist()
            out, known = self._unavailable(ids, degraded), np.ones(len(candidates), dtype=bool)
        if not known.all():  # rows the prefetch did not cover (none today: ranking only reorders)
            missing = np.flatnonzero(~known)
            out[missing] = self._out_of_stock(self._catalog.item_ids[candidates.rows[missing]].tolist(), degraded)
        return candidates.take(np.flatnonzero(~out)[:k])

    def _out_of_stock(self, ids: list[str], degraded: list[str]) -> np.ndarray:
        try:
            return self._store.out_of_stock(ids)
        except DependencyError:
            return self._unavailable(ids, degraded)

    def _unavailable(self, ids: list[str], degraded: list[str]) -> np.ndarray:
        """The stock store is down: degrade, and filter with the shipped snapshot unless told to serve unfiltered."""
        if "stock" not in degraded:
            degraded.append("stock")
        if self._serve_without_filter:
            return np.zeros(len(ids), dtype=bool)
        # Default: the stock snapshot shipped with the artifacts is better than nothing.
        return np.fromiter((i in self._fallback for i in ids), dtype=bool, count=len(ids))
