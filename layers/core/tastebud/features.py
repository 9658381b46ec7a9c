"""Ranker features: ONE function used by training and serving, so there is no skew by construction.

All features are computed with vectorised numpy over the candidate rows; missing values are NaN,
which XGBoost (and its ONNX export) route down the learned default branch.
"""

from __future__ import annotations

import numpy as np

from tastebud.basket_features import BASKET_FEATURES, basket_features
from tastebud.catalog import Catalog
from tastebud.domain import (
    SOURCE_HISTORY,
    SOURCE_POPULAR,
    SOURCE_RELATED,
    SOURCE_SIMILAR,
    Candidates,
    RequestContext,
    UserProfile,
)
from tastebud.history import (
    DECAY_HALF_LIVES_DAYS,
    FIRST_PURCHASE_TS,
    HOUR_COS,
    HOUR_SIN,
    LAST_PURCHASE_TS,
    PURCHASES,
    REPEAT_COLUMNS,
    WEEKDAY_COS,
    WEEKDAY_SIN,
    decayed_purchases,
)

FEATURE_VERSION = "ranker-features-v4"
# Σ 0.5^(age / half-life) over the user's purchases of the item, exact (tastebud.history.decayed_purchases): the
# time-aware intensity of the next-basket literature at a few time scales, and the ranker's prior (ranker_prior).
DECAYED_FEATURES = tuple(f"decayed_purchases_{h:g}d" for h in DECAY_HALF_LIVES_DAYS)

FEATURE_NAMES: tuple[str, ...] = (
    # Retrieval inputs as ranks and per-request z-scores: the ranker is trained on a two-tower fitted at the feature
    # cut and served behind a refit one, whose raw scores live in another embedding space (no skew by construction).
    "retrieval_rank",
    "from_history",
    "from_popular",
    "log_popularity",
    "log_recent_popularity",
    "item_ctr",
    "user_item_weight",
    "user_item_recency_rank",
    "category_affinity",
    "merchant_affinity",
    "domain_affinity",
    "price_ratio",
    "log_price",
    "distance_km",
    "item_age_days",
    "merchant_age_days",
    "hour_of_day",
    "day_of_week",
    "domain",
    "user_log_positives",
    "user_history_len",
    "retrieval_score_z",
    # Re-consumption (tastebud.history.REPEAT_COLUMNS and the catalog's item statistics): purchases only.
    "user_item_purchases",
    "user_item_purchase_share",
    "days_since_item_purchase",
    "user_item_reorder_days",
    "item_due_ratio",
    "days_since_category_purchase",
    "category_due_ratio",
    "item_repeat_rate",
    "item_reorder_days",
    "bought_together_max",
    "bought_together_sum",
    "item_hour_affinity",
    "item_weekday_affinity",
    "domain_hour_affinity",
    "from_bought_together",
    # Grocery timing counted in baskets (tastebud.basket_features).
    *BASKET_FEATURES,
    *DECAYED_FEATURES,
    # Item-kNN over shoppers (catalog.similar) against the user's decayed purchases: the explore signal.
    "same_shoppers_score",
    "from_same_shoppers",
)

COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}
# The repeat features that come from the user's history (the rest come from the catalog and the candidate).
USER_REPEAT_FEATURES = ("user_item_purchases", "user_item_purchase_share", "days_since_item_purchase",
                        "user_item_reorder_days", "item_due_ratio", "days_since_category_purchase",
                        "category_due_ratio", "bought_together_max", "bought_together_sum", "item_hour_affinity",
                        "item_weekday_affinity", "domain_hour_affinity", *BASKET_FEATURES,
                        *DECAYED_FEATURES, "same_shoppers_score")

EARTH_RADIUS_KM = 6371.0088
RELATED_HISTORY = 50  # the user's most recent purchases whose basket partners are looked up
# The user's purchases with the most decayed weight whose shoppers' items are looked up (Instacart half, explore
# Recall@20 of the score alone: 30 and 50 alike, 0.068; 20 0.065).
SIMILAR_HISTORY = 30
SIMILAR_HALF_LIFE_DAYS = 30.0  # the weight of a purchase in the item-kNN score (chosen with catalog.similar's table)
_SIMILAR_DECAY = DECAY_HALF_LIVES_DAYS.index(SIMILAR_HALF_LIFE_DAYS)
SameShoppers = tuple[np.ndarray, np.ndarray]  # (item rows ascending, item-kNN score): see same_shoppers
_DAY = 86400.0
_BASKET_COLUMNS = [COLUMN[name] for name in BASKET_FEATURES]
_DECAYED_COLUMNS = np.asarray([COLUMN[name] for name in DECAYED_FEATURES])


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
    _repeat_features(out, catalog, user, candidates, context)
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


def _circular_affinity(sin_sum: np.ndarray, cos_sum: np.ndarray, count: np.ndarray, angle: float) -> np.ndarray:
    """Mean resultant of past orders' times projected on now's (1 = always at this time, -1 = never); NaN if none."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (sin_sum * np.sin(angle) + cos_sum * np.cos(angle)) / count, np.nan)


def _repeat_features(out: np.ndarray, catalog: Catalog, user: UserProfile, candidates: Candidates,
                     context: RequestContext) -> None:
    rows = candidates.rows
    out[:, COLUMN["item_repeat_rate"]] = catalog.item_repeat_rate[rows]
    out[:, COLUMN["item_reorder_days"]] = catalog.item_reorder_days[rows]
    out[:, COLUMN["from_bought_together"]] = (candidates.sources & SOURCE_RELATED) > 0
    out[:, COLUMN["from_same_shoppers"]] = (candidates.sources & SOURCE_SIMILAR) > 0
    hist_rows, repeat = user.history_rows, user.history_repeat
    user_columns = [COLUMN[name] for name in USER_REPEAT_FEATURES]
    if not hist_rows.size:  # nothing bought: counts are zero, times and intervals unknown
        out[:, user_columns] = np.nan
        out[:, [COLUMN["user_item_purchases"], COLUMN["user_item_purchase_share"], COLUMN["bought_together_max"],
                COLUMN["bought_together_sum"], COLUMN["basket_decayed_purchases"], COLUMN["user_baskets"],
                COLUMN["same_shoppers_score"], *_DECAYED_COLUMNS]] = 0.0
        return
    if repeat.shape != (hist_rows.size, len(REPEAT_COLUMNS)):  # a store that keeps no statistics: unknown
        out[:, user_columns] = np.nan
        return
    purchases = repeat[:, PURCHASES]
    bought = purchases > 0
    now = context.now
    hour = 2 * np.pi * context.hour_of_day / 24.0
    weekday = 2 * np.pi * context.day_of_week / 7.0

    # Per candidate: its own entry in the history (history rows are unique).
    order = np.argsort(hist_rows)
    pos = np.minimum(np.searchsorted(hist_rows[order], rows), hist_rows.size - 1)
    hit = hist_rows[order][pos] == rows
    entry = np.where(hit, order[pos], -1)
    mine = repeat[np.maximum(entry, 0)]
    count = np.where(hit, mine[:, PURCHASES], 0.0)
    has = count > 0
    total = float(purchases.sum())
    out[:, COLUMN["user_item_purchases"]] = count
    out[:, COLUMN["user_item_purchase_share"]] = count / total if total > 0 else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        since = np.where(has, (now - mine[:, LAST_PURCHASE_TS]) / _DAY, np.nan)
        interval = np.where(count >= 2, (mine[:, LAST_PURCHASE_TS] - mine[:, FIRST_PURCHASE_TS])
                            / np.maximum(count - 1, 1) / _DAY, np.nan)
        usual = np.where(np.isnan(interval), catalog.item_reorder_days[rows], interval)
        out[:, COLUMN["days_since_item_purchase"]] = since
        out[:, COLUMN["user_item_reorder_days"]] = interval
        out[:, COLUMN["item_due_ratio"]] = np.where(usual > 0, since / usual, np.nan)
    out[:, _BASKET_COLUMNS] = basket_features(repeat, entry, now)
    out[:, _DECAYED_COLUMNS] = 0.0
    bought_at = np.flatnonzero(has)
    out[np.ix_(bought_at, _DECAYED_COLUMNS)] = decayed_purchases(mine[bought_at], now)
    out[:, COLUMN["item_hour_affinity"]] = _circular_affinity(mine[:, HOUR_SIN], mine[:, HOUR_COS], count, hour)
    out[:, COLUMN["item_weekday_affinity"]] = _circular_affinity(mine[:, WEEKDAY_SIN], mine[:, WEEKDAY_COS], count,
                                                                 weekday)

    # Per candidate category and domain: the user's purchases of anything in it.
    n_categories = catalog.categories.size
    hist_category = catalog.item_category[hist_rows][bought]
    cat_count = np.bincount(hist_category, weights=purchases[bought], minlength=n_categories)
    cat_first = np.full(n_categories, np.inf)
    cat_last = np.full(n_categories, -np.inf)
    np.minimum.at(cat_first, hist_category, repeat[bought, FIRST_PURCHASE_TS])
    np.maximum.at(cat_last, hist_category, repeat[bought, LAST_PURCHASE_TS])
    cand_category = catalog.item_category[rows]
    c_count, c_first, c_last = cat_count[cand_category], cat_first[cand_category], cat_last[cand_category]
    with np.errstate(invalid="ignore", divide="ignore"):
        c_since = np.where(c_count > 0, (now - c_last) / _DAY, np.nan)
        c_interval = np.where(c_count >= 2, (c_last - c_first) / np.maximum(c_count - 1, 1) / _DAY, np.nan)
        out[:, COLUMN["days_since_category_purchase"]] = c_since
        out[:, COLUMN["category_due_ratio"]] = np.where(c_interval > 0, c_since / c_interval, np.nan)
    hist_domain = catalog.item_domain[hist_rows].astype(np.int64)
    dom_count = np.bincount(hist_domain, weights=purchases, minlength=2)
    dom_sin = np.bincount(hist_domain, weights=repeat[:, HOUR_SIN], minlength=2)
    dom_cos = np.bincount(hist_domain, weights=repeat[:, HOUR_COS], minlength=2)
    cand_domain = catalog.item_domain[rows].astype(np.int64)
    out[:, COLUMN["domain_hour_affinity"]] = _circular_affinity(dom_sin[cand_domain], dom_cos[cand_domain],
                                                                dom_count[cand_domain], hour)

    # Bought together with the user's most recent purchases.
    recent = hist_rows[bought][:RELATED_HISTORY]
    _, partners, scores = catalog.related(recent)
    out[:, COLUMN["bought_together_max"]] = out[:, COLUMN["bought_together_sum"]] = 0.0
    if partners.size:
        order = np.argsort(rows)
        pos = np.minimum(np.searchsorted(rows[order], partners), rows.size - 1)
        match = rows[order][pos] == partners
        target = order[pos[match]]
        best = np.zeros(rows.size)
        summed = np.zeros(rows.size)
        np.maximum.at(best, target, scores[match])
        np.add.at(summed, target, scores[match])
        out[:, COLUMN["bought_together_max"]], out[:, COLUMN["bought_together_sum"]] = best, summed

    # The retriever computed it for its explore candidates; requests built elsewhere (training) compute it here.
    out[:, COLUMN["same_shoppers_score"]] = (candidates.same_shoppers if candidates.same_shoppers is not None
                                             else same_shoppers_of(same_shoppers(catalog, user, now), rows))


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
