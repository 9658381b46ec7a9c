"""Ranker features: ONE function used by training and serving, so there is no skew by construction.

All features are computed with vectorised numpy over the candidate rows; missing values are NaN,
which XGBoost (and its ONNX export) route down the learned default branch.
"""

from __future__ import annotations

import numpy as np

from tastebud.catalog import Catalog
from tastebud.domain import SOURCE_HISTORY, SOURCE_POPULAR, Candidates, RequestContext, UserProfile
from tastebud.features.repeat import repeat_features
from tastebud.features.schema import COLUMN, FEATURE_NAMES

EARTH_RADIUS_KM = 6371.0088
_DAY = 86400.0


def haversine_km(lat1: np.ndarray | float, lon1: np.ndarray | float, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance in km; NaN where a coordinate is unknown."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _share(keys: np.ndarray, weights: np.ndarray, size: int, lookup: np.ndarray) -> np.ndarray:
    """Share of the user's positive weight that falls on each candidate's key (category, merchant, domain)."""
    total = float(weights.sum())
    if total <= 0:
        return np.zeros(lookup.size, dtype=np.float32)
    counts = np.bincount(keys, weights=weights, minlength=size)
    return (counts[lookup] / total).astype(np.float32)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    known = ~np.isnan(values)
    if not known.any():
        return float("nan")
    values, weights = values[known], weights[known]
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def ranker_features(catalog: Catalog, user: UserProfile, candidates: Candidates, context: RequestContext) -> np.ndarray:
    """Build the (n_candidates, len(FEATURE_NAMES)) float32 matrix for one request."""
    rows = candidates.rows
    n = rows.size
    out = np.empty((n, len(FEATURE_NAMES)), dtype=np.float32)
    hist_rows, hist_w = user.history_rows, user.history_weights

    out[:, COLUMN["retrieval_rank"]], out[:, COLUMN["retrieval_score_z"]] = retrieval_rank_and_z(
        candidates.retrieval_scores)
    out[:, 1] = (candidates.sources & SOURCE_HISTORY) > 0
    out[:, 2] = (candidates.sources & SOURCE_POPULAR) > 0
    out[:, 3] = np.log1p(catalog.item_popularity[rows])
    out[:, 4] = np.log1p(catalog.item_recent_popularity[rows])
    out[:, 5] = catalog.item_ctr[rows]

    # Repeat signals: history rows are unique, so a sorted copy + searchsorted finds each candidate.
    if hist_rows.size:
        order = np.argsort(hist_rows)
        sorted_rows = hist_rows[order]
        pos = np.minimum(np.searchsorted(sorted_rows, rows), sorted_rows.size - 1)
        hit = sorted_rows[pos] == rows
        out[:, 6] = np.where(hit, np.log1p(hist_w[order][pos]), 0.0)
        out[:, 7] = np.where(hit, order[pos], np.nan)  # 0 = the user's most recent item
    else:
        out[:, 6] = 0.0
        out[:, 7] = np.nan

    cand_merchant = catalog.item_merchant[rows]
    out[:, 8] = _share(catalog.item_category[hist_rows], hist_w, catalog.categories.size, catalog.item_category[rows])
    out[:, 9] = _share(catalog.item_merchant[hist_rows], hist_w, catalog.merchant_ids.size, cand_merchant)
    out[:, 10] = _share(catalog.item_domain[hist_rows].astype(np.int64), hist_w, 2, catalog.item_domain[rows])

    price = catalog.item_price[rows]
    usual = _weighted_median(catalog.item_price[hist_rows], hist_w) if hist_rows.size else float("nan")
    out[:, 11] = price / usual if usual > 0 else np.nan
    out[:, 12] = np.log1p(price)

    lat, lon = (context.lat, context.lon) if not np.isnan(context.lat) else (user.home_lat, user.home_lon)
    if np.isnan(lat) or np.isnan(lon):
        out[:, 13] = np.nan
    else:
        out[:, 13] = haversine_km(lat, lon, catalog.merchant_lat[cand_merchant], catalog.merchant_lon[cand_merchant])

    out[:, 14] = np.clip((context.now - catalog.item_created_at[rows]) / _DAY, 0, 3650)
    out[:, 15] = np.clip((context.now - catalog.merchant_created_at[cand_merchant]) / _DAY, 0, 3650)
    out[:, 16] = context.hour_of_day
    out[:, 17] = context.day_of_week
    out[:, 18] = catalog.item_domain[rows]
    out[:, 19] = np.log1p(float(hist_w.sum()))
    out[:, 20] = hist_rows.size
    repeat_features(out, catalog, user, candidates, context)
    return out


def retrieval_rank_and_z(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank among the request's scored candidates (0 = best, / count) and the z-score; NaN where unscored."""
    rank = np.full(scores.size, np.nan, dtype=np.float32)
    z = np.full(scores.size, np.nan, dtype=np.float32)
    scored = np.flatnonzero(~np.isnan(scores))
    if scored.size:
        values = scores[scored].astype(np.float64)
        order = np.argsort(-values, kind="stable")
        rank[scored[order]] = np.arange(scored.size) / scored.size
        spread = values.std()
        z[scored] = (values - values.mean()) / spread if spread > 0 else 0.0
    return rank, z
