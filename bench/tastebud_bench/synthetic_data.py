"""The synthetic catalog and users of `tastebud bench --items N`: items as clustered 128-d unit vectors (like a
trained two-tower's), merchants, bought-together partners, and users whose histories concentrate on a few clusters.

Every function draws from the generator it is given, in a fixed order: one seed, one system.
"""

from __future__ import annotations

import numpy as np

from tastebud.adapters.embedded.user_table import UserTable
from tastebud.catalog import Catalog
from tastebud.features.history import FIRST_PURCHASE_TS, HOUR_SIN, PURCHASES, repeat_contributions
from tastebud_training.reorders import SIMILAR_PER_ITEM

RELATED_PER_ITEM = 5  # bought-together partners per synthetic item


def clustered_vectors(rng: np.random.Generator, n_items: int, n_clusters: int,
                      dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit item vectors around ``n_clusters`` random centres (like a trained two-tower's), and each item's cluster."""
    centres = rng.normal(size=(n_clusters, dim)).astype(np.float32)
    assignment = rng.integers(0, n_clusters, n_items)
    vectors = centres[assignment] + 0.6 * rng.normal(size=(n_items, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, assignment


def synthetic_catalog(rng: np.random.Generator, assignment: np.ndarray, now: float) -> Catalog:
    """Items, merchants and categories with plausible attributes; partners drawn from each item's own cluster."""
    n_items = assignment.size
    n_merchants = max(10, n_items // 25)
    n_categories = 60
    popularity = (rng.pareto(1.2, n_items) * 5).astype(np.float32)
    return Catalog(
        as_of=now,
        item_ids=np.char.add("i", np.arange(n_items).astype(str)),
        item_merchant=rng.integers(0, n_merchants, n_items),
        item_domain=rng.integers(0, 2, n_items).astype(np.int8),
        item_category=rng.integers(0, n_categories, n_items),
        item_price=rng.lognormal(2.0, 0.6, n_items).astype(np.float32),
        item_created_at=now - rng.uniform(0, 400, n_items) * 86400,
        item_popularity=popularity,
        item_recent_popularity=popularity * rng.uniform(0, 0.3, n_items).astype(np.float32),
        item_ctr=rng.beta(2, 30, n_items).astype(np.float32),
        merchant_ids=np.char.add("m", np.arange(n_merchants).astype(str)),
        merchant_created_at=now - rng.uniform(0, 600, n_merchants) * 86400,
        merchant_lat=52.5 + rng.normal(0, 0.05, n_merchants),
        merchant_lon=13.4 + rng.normal(0, 0.08, n_merchants),
        merchant_popularity_pct=rng.uniform(0, 1, n_merchants).astype(np.float32),
        categories=np.char.add("c", np.arange(n_categories).astype(str)),
        item_repeat_rate=rng.beta(2, 5, n_items).astype(np.float32),
        item_reorder_days=rng.uniform(2, 30, n_items).astype(np.float32),
        # Bought together: a few partners per item from its own cluster, as baskets are.
        related_offsets=np.arange(n_items + 1, dtype=np.int64) * RELATED_PER_ITEM,
        related_rows=_cluster_partners(rng, assignment, RELATED_PER_ITEM, spread=50),
        related_scores=rng.uniform(0.05, 0.5, n_items * RELATED_PER_ITEM).astype(np.float32),
        # Bought by the same shoppers: more partners per item, also from its own cluster (tastes are).
        similar_offsets=np.arange(n_items + 1, dtype=np.int64) * SIMILAR_PER_ITEM,
        similar_rows=_cluster_partners(rng, assignment, SIMILAR_PER_ITEM, spread=200),
        similar_scores=rng.uniform(0.01, 0.3, n_items * SIMILAR_PER_ITEM).astype(np.float32),
    )


def _cluster_partners(rng: np.random.Generator, assignment: np.ndarray, per_item: int, *, spread: int) -> np.ndarray:
    """``per_item`` partner rows per item, each among the ``spread`` items from its cluster's start in cluster order
    (its own cluster unless that is smaller than ``spread``)."""
    n_items = assignment.size
    cluster_start = np.repeat(np.searchsorted(np.sort(assignment), assignment), per_item)
    by_cluster = np.argsort(assignment, kind="stable")
    return by_cluster[np.minimum(cluster_start + rng.integers(0, spread, n_items * per_item), n_items - 1)]


def synthetic_users(rng: np.random.Generator, assignment: np.ndarray, n_clusters: int, n_users: int,
                    now: float) -> UserTable:
    """Users with up to 59 distinct items each, drawn from three clusters per user, as real tastes concentrate."""
    n_items = assignment.size
    lengths = rng.integers(0, 60, n_users)
    taste = rng.integers(0, n_clusters, (n_users, 3))
    by_cluster = np.argsort(assignment, kind="stable")
    starts = np.searchsorted(assignment[by_cluster], np.arange(n_clusters))
    sizes = np.bincount(assignment, minlength=n_clusters)
    hist = []
    for u, length in enumerate(lengths):
        clusters = taste[u][rng.integers(0, 3, length)]
        picks = starts[clusters] + (rng.random(length) * np.maximum(sizes[clusters], 1)).astype(np.int64)
        hist.append(np.unique(by_cluster[np.minimum(picks, n_items - 1)]))
    offsets = np.concatenate([[0], np.cumsum(np.asarray([h.size for h in hist]))]).astype(np.int64)
    history = np.concatenate(hist).astype(np.int64)
    history_last_ts = now - rng.uniform(0, 90, history.size) * 86400
    return UserTable(
        user_ids=np.char.add("u", np.arange(n_users).astype(str)),
        offsets=offsets,
        history_rows=history,
        history_weights=rng.integers(1, 6, history.size).astype(np.float32),
        history_last_ts=history_last_ts,
        history_repeat=_synthetic_repeat(rng, history_last_ts),
        preference_offsets=np.zeros(n_users + 1, dtype=np.int64),
        preference_rows=np.zeros(0, dtype=np.int64),
        home_lat=52.5 + rng.normal(0, 0.05, n_users),
        home_lon=13.4 + rng.normal(0, 0.08, n_users),
    )


def _synthetic_repeat(rng: np.random.Generator, last_ts: np.ndarray) -> np.ndarray:
    """Purchase statistics for synthetic histories: 0-4 purchases per item, a few days apart."""
    purchases = rng.integers(0, 5, last_ts.size)
    one = repeat_contributions(purchases > 0, last_ts)
    repeat = one.copy()
    repeat[:, PURCHASES] = purchases
    repeat[:, FIRST_PURCHASE_TS] = np.where(purchases > 0, last_ts - purchases * rng.uniform(2, 14, last_ts.size)
                                            * 86400, np.inf)
    repeat[:, HOUR_SIN:] = one[:, HOUR_SIN:] * purchases[:, None]
    return repeat
