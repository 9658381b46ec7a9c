"""The item catalog as aligned numpy arrays, loaded once at start-up from the artifacts.

Everything the request path needs per item (merchant, domain, category, price, age, popularity) is an
array indexed by catalog row, so stages gather features for 200 candidates with fancy indexing only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

DOMAINS = ("restaurant", "grocery")
DOMAIN_CODE = {name: code for code, name in enumerate(DOMAINS)}


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
    _row_of: dict[str, int] = field(init=False, repr=False, compare=False)
    _popular: dict[str, np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.item_ids.size
        for name in ("item_merchant", "item_domain", "item_category", "item_price", "item_created_at",
                     "item_popularity", "item_recent_popularity", "item_ctr"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"catalog array {name} has {getattr(self, name).shape[0]} rows, expected {n}")
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
            arrays = {f.name: data[f.name] for f in fields(cls) if f.init}
        arrays["as_of"] = float(arrays["as_of"])
        return cls(**arrays)
