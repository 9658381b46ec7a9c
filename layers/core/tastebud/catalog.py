"""The item catalog as aligned numpy arrays, loaded once at start-up from the artifacts.

Everything the request path needs per item (merchant, domain, category, price, age, popularity) is an
array indexed by catalog row, so stages gather features for 200 candidates with fancy indexing only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

DOMAINS = ("restaurant", "grocery")
DOMAIN_CODE = {name: code for code, name in enumerate(DOMAINS)}
# A merchant whose delivery radius is unknown is not filtered by distance: an invented zone would hide what the log
# shows users ordering (the simulator's users order from up to ~10 km), and a real zone comes with the data.
DEFAULT_DELIVERY_RADIUS_KM = float("inf")
# Arrays that may be absent from catalogs saved before they existed; __post_init__ fills their defaults.
_OPTIONAL = ("item_enabled", "merchant_open", "merchant_radius_km", "item_repeat_rate", "item_reorder_days",
             "related_offsets", "related_rows", "related_scores", "similar_offsets", "similar_rows", "similar_scores")
# Item-to-item tables kept as CSR (offsets, partner rows, scores): same basket, and same shoppers.
_NEIGHBOUR_TABLES = ("related", "similar")


@dataclass(frozen=True)
class Catalog:
    """Items and merchants as of ``as_of`` (epoch seconds).

    Attributes:
        item_ids: item id per row (numpy unicode array).
        item_merchant: merchant row per item row.
        item_domain: domain code per item row (see ``DOMAINS``).
        item_category: category row per item row (into ``categories``).
        item_price: price, NaN when unknown.
        item_created_at: epoch seconds, NaN when unknown.
        item_popularity: graded positives per item up to ``as_of``.
        item_recent_popularity: graded positives in the last 7 days before ``as_of``.
        item_ctr: smoothed clicks per impression (prior when there are no impressions).
        merchant_ids, merchant_created_at, merchant_lat, merchant_lon: per merchant row.
        merchant_popularity_pct: 0..1 percentile of merchant popularity (0 = least popular).
        categories: category names.
        item_enabled: False for items deleted or disabled (never served); default all True.
        merchant_open: False for closed merchants (never served); default all True.
        merchant_radius_km: delivery radius per merchant; default DEFAULT_DELIVERY_RADIUS_KM (inf: no known zone).
        item_repeat_rate: share of the item's buyers who bought it again (shrunk to the catalog's rate); NaN unknown.
        item_reorder_days: median days between a user's purchases of the item, over users who re-bought it; NaN.
        related_offsets, related_rows, related_scores: items bought together (same basket), as CSR: row i's
            partners are ``related_rows[related_offsets[i]:related_offsets[i+1]]``, best first, with their
            cosine co-occurrence; default none.
        similar_offsets, similar_rows, similar_scores: items bought by the same shoppers (item-kNN over users, any
            basket), the same CSR layout, with their asymmetric cosine; default none.
    """

    as_of: float
    item_ids: np.ndarray
    item_merchant: np.ndarray
    item_domain: np.ndarray
    item_category: np.ndarray
    item_price: np.ndarray
    item_created_at: np.ndarray
    item_popularity: np.ndarray
    item_recent_popularity: np.ndarray
    item_ctr: np.ndarray
    merchant_ids: np.ndarray
    merchant_created_at: np.ndarray
    merchant_lat: np.ndarray
    merchant_lon: np.ndarray
    merchant_popularity_pct: np.ndarray
    categories: np.ndarray
    item_enabled: np.ndarray = None  # type: ignore[assignment]  # filled in __post_init__
    merchant_open: np.ndarray = None  # type: ignore[assignment]
    merchant_radius_km: np.ndarray = None  # type: ignore[assignment]
    item_repeat_rate: np.ndarray = None  # type: ignore[assignment]
    item_reorder_days: np.ndarray = None  # type: ignore[assignment]
    related_offsets: np.ndarray = None  # type: ignore[assignment]
    related_rows: np.ndarray = None  # type: ignore[assignment]
    related_scores: np.ndarray = None  # type: ignore[assignment]
    similar_offsets: np.ndarray = None  # type: ignore[assignment]
    similar_rows: np.ndarray = None  # type: ignore[assignment]
    similar_scores: np.ndarray = None  # type: ignore[assignment]
    _row_of: dict[str, int] = field(init=False, repr=False, compare=False)
    _popular: dict[str, np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.item_ids.size
        m = self.merchant_ids.size
        if self.item_enabled is None:
            object.__setattr__(self, "item_enabled", np.ones(n, dtype=bool))
        if self.merchant_open is None:
            object.__setattr__(self, "merchant_open", np.ones(m, dtype=bool))
        if self.merchant_radius_km is None:
            object.__setattr__(self, "merchant_radius_km", np.full(m, DEFAULT_DELIVERY_RADIUS_KM))
        for name in ("item_repeat_rate", "item_reorder_days"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(n, np.nan, dtype=np.float32))
        for table in _NEIGHBOUR_TABLES:
            if getattr(self, f"{table}_offsets") is None:
                object.__setattr__(self, f"{table}_offsets", np.zeros(n + 1, dtype=np.int64))
                object.__setattr__(self, f"{table}_rows", np.zeros(0, dtype=np.int64))
                object.__setattr__(self, f"{table}_scores", np.zeros(0, dtype=np.float32))
            if (getattr(self, f"{table}_offsets").shape[0] != n + 1
                    or getattr(self, f"{table}_rows").shape != getattr(self, f"{table}_scores").shape):
                raise ValueError(f"catalog {table}_offsets must have len(item_ids) + 1 entries, rows and scores align")
        for name in ("item_merchant", "item_domain", "item_category", "item_price", "item_created_at",
                     "item_popularity", "item_recent_popularity", "item_ctr", "item_enabled", "item_repeat_rate",
                     "item_reorder_days"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"catalog array {name} has {getattr(self, name).shape[0]} rows, expected {n}")
        for name in ("merchant_created_at", "merchant_lat", "merchant_lon", "merchant_popularity_pct",
                     "merchant_open", "merchant_radius_km"):
            if getattr(self, name).shape[0] != m:
                raise ValueError(f"catalog array {name} has {getattr(self, name).shape[0]} rows, expected {m}")
        # Built once: id -> row, and rows ordered by popularity per domain (the cold-start source).
        object.__setattr__(self, "_row_of", {item_id: row for row, item_id in enumerate(self.item_ids.tolist())})
        order = np.argsort(-self.item_popularity, kind="stable")
        popular = {"all": order}
        for code, domain in enumerate(DOMAINS):
            popular[domain] = order[self.item_domain[order] == code]
        object.__setattr__(self, "_popular", popular)

    @property
    def size(self) -> int:
        return int(self.item_ids.size)

    def row_of(self, item_id: str) -> int | None:
        return self._row_of.get(item_id)

    def rows_of(self, item_ids: list[str] | tuple[str, ...]) -> np.ndarray:
        """Rows of the known ids among ``item_ids`` (unknown ids are skipped)."""
        lookup = self._row_of
        return np.fromiter((lookup[i] for i in item_ids if i in lookup), dtype=np.int64)

    def popular_rows(self, domain: str = "all") -> np.ndarray:
        """All rows of ``domain`` ordered by popularity, most popular first."""
        return self._popular[domain]

    def save(self, path: Path) -> None:
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        arrays["as_of"] = np.asarray(self.as_of)
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> Catalog:
        with np.load(path, allow_pickle=False) as data:
            arrays: dict[str, Any] = {f.name: data[f.name] for f in fields(cls)
                                      if f.init and (f.name in data or f.name not in _OPTIONAL)}
        arrays["as_of"] = float(arrays["as_of"])
        return cls(**arrays)

    def related(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Items bought together with each of ``rows``: (index into ``rows``, partner row, score), concatenated."""
        return _neighbours(self.related_offsets, self.related_rows, self.related_scores, rows)

    def similar(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Items bought by the shoppers of each of ``rows``: (index into ``rows``, partner row, score)."""
        return _neighbours(self.similar_offsets, self.similar_rows, self.similar_scores, rows)

    def merchant_row_of(self, merchant_id: str) -> int | None:
        rows = np.flatnonzero(self.merchant_ids == merchant_id)
        return int(rows[0]) if rows.size else None

    def category_row_of(self, category: str) -> int | None:
        row = int(np.searchsorted(self.categories, category))
        return row if row < self.categories.size and self.categories[row] == category else None

    def with_changes(self, **arrays: np.ndarray) -> Catalog:
        """A copy with some arrays replaced (merchant state, enabled items, changed item fields).

        The id lookup is shared, not rebuilt; only a change of popularity or domain re-sorts the popular lists.
        """
        if "item_ids" in arrays or set(arrays) & {"item_popularity", "item_domain"}:
            return replace(self, **arrays)  # type: ignore[arg-type]
        catalog = Catalog.__new__(Catalog)
        for f in fields(self):
            object.__setattr__(catalog, f.name, arrays.get(f.name, getattr(self, f.name)))
        return catalog

    def appended(self, item_ids: np.ndarray, **item_arrays: np.ndarray) -> Catalog:
        """A copy with new item rows at the end (fresh items); every per-item array must be given.

        New items have no popularity, so they go to the end of the popularity order and the id lookup is
        extended rather than rebuilt (a 1M-item catalog grows in milliseconds, not a second).
        """
        per_item = [f.name for f in fields(self) if f.init and f.name.startswith("item_") and f.name != "item_ids"]
        missing = [name for name in per_item if name not in item_arrays]
        if missing:
            raise ValueError(f"appended items need {', '.join(missing)}")
        n = self.size
        grown = {name: np.concatenate([getattr(self, name), np.asarray(item_arrays[name]).astype(
            getattr(self, name).dtype)]) for name in per_item}
        # The unicode dtype widens when a new id is longer than every old one.
        grown_ids = np.concatenate([self.item_ids, np.asarray(item_ids, dtype=str)])
        catalog = Catalog.__new__(Catalog)
        for f in fields(self):
            if f.init:
                object.__setattr__(catalog, f.name, grown.get(f.name, getattr(self, f.name)))
        object.__setattr__(catalog, "item_ids", grown_ids)
        # New items have not been bought with anything yet.
        for table in _NEIGHBOUR_TABLES:
            offsets = getattr(self, f"{table}_offsets")
            object.__setattr__(catalog, f"{table}_offsets", np.concatenate(
                [offsets, np.full(len(item_ids), offsets[-1], dtype=np.int64)]))
        row_of = dict(self._row_of)
        row_of.update({item_id: n + i for i, item_id in enumerate(np.asarray(item_ids, dtype=str).tolist())})
        object.__setattr__(catalog, "_row_of", row_of)
        new_rows = np.arange(n, n + len(item_ids))
        popular = {"all": np.concatenate([self._popular["all"], new_rows])}
        for code, domain in enumerate(DOMAINS):
            popular[domain] = np.concatenate([self._popular[domain], new_rows[grown["item_domain"][n:] == code]])
        object.__setattr__(catalog, "_popular", popular)
        return catalog


def _neighbours(offsets: np.ndarray, partners: np.ndarray, scores: np.ndarray,
                rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CSR rows of ``rows`` concatenated: (index into ``rows``, partner row, score)."""
    starts, ends = offsets[rows], offsets[rows + 1]
    lengths = ends - starts
    if not lengths.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    owner = np.repeat(np.arange(rows.size), lengths)
    positions = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths) + starts[owner]
    return owner, partners[positions], scores[positions]
