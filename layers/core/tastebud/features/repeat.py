"""The ranker's re-consumption features: what the user's purchase statistics
(tastebud.features.history.REPEAT_COLUMNS) say about each candidate, its category and domain, and what is bought
together with or by the shoppers of the user's purchases. Purchases only; part of
``tastebud.features.ranker_features.ranker_features``."""

from __future__ import annotations

import numpy as np

from tastebud.catalog import Catalog
from tastebud.domain import SOURCE_RELATED, SOURCE_SIMILAR, Candidates, RequestContext, UserProfile
from tastebud.features.basket import BASKET_FEATURES, basket_features
from tastebud.features.history import (
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
from tastebud.features.same_shoppers import same_shoppers, same_shoppers_of
from tastebud.features.schema import COLUMN, DECAYED_FEATURES, USER_REPEAT_FEATURES

RELATED_HISTORY = 50  # the user's most recent purchases whose basket partners are looked up
_DAY = 86400.0
_BASKET_COLUMNS = [COLUMN[name] for name in BASKET_FEATURES]
_DECAYED_COLUMNS = np.asarray([COLUMN[name] for name in DECAYED_FEATURES])


def _circular_affinity(sin_sum: np.ndarray, cos_sum: np.ndarray, count: np.ndarray, angle: float) -> np.ndarray:
    """Mean resultant of past orders' times projected on now's (1 = always at this time, -1 = never); NaN if none."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (sin_sum * np.sin(angle) + cos_sum * np.cos(angle)) / count, np.nan)


def repeat_features(out: np.ndarray, catalog: Catalog, user: UserProfile, candidates: Candidates,
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
    _own_item_features(out, catalog, hist_rows, repeat, rows, context)
    _category_and_domain_features(out, catalog, hist_rows, repeat, rows, context)
    _bought_together_features(out, catalog, hist_rows[repeat[:, PURCHASES] > 0], rows)
    # The retriever computed it for its explore candidates; requests built elsewhere (training) compute it here.
    out[:, COLUMN["same_shoppers_score"]] = (candidates.same_shoppers if candidates.same_shoppers is not None
                                             else same_shoppers_of(same_shoppers(catalog, user, context.now), rows))


def _own_item_features(out: np.ndarray, catalog: Catalog, hist_rows: np.ndarray, repeat: np.ndarray,
                       rows: np.ndarray, context: RequestContext) -> None:
    """Per candidate, from its own entry in the user's history (history rows are unique)."""
    now = context.now
    order = np.argsort(hist_rows)
    pos = np.minimum(np.searchsorted(hist_rows[order], rows), hist_rows.size - 1)
    hit = hist_rows[order][pos] == rows
    entry = np.where(hit, order[pos], -1)
    mine = repeat[np.maximum(entry, 0)]
    count = np.where(hit, mine[:, PURCHASES], 0.0)
    has = count > 0
    total = float(repeat[:, PURCHASES].sum())
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
    hour, weekday = _angles(context)
    out[:, COLUMN["item_hour_affinity"]] = _circular_affinity(mine[:, HOUR_SIN], mine[:, HOUR_COS], count, hour)
    out[:, COLUMN["item_weekday_affinity"]] = _circular_affinity(mine[:, WEEKDAY_SIN], mine[:, WEEKDAY_COS], count,
                                                                 weekday)


def _angles(context: RequestContext) -> tuple[float, float]:
    """The request's hour of day and day of week as angles on their circles."""
    return 2 * np.pi * context.hour_of_day / 24.0, 2 * np.pi * context.day_of_week / 7.0


def _category_and_domain_features(out: np.ndarray, catalog: Catalog, hist_rows: np.ndarray, repeat: np.ndarray,
                                  rows: np.ndarray, context: RequestContext) -> None:
    """Per candidate category and domain: the user's purchases of anything in it."""
    purchases = repeat[:, PURCHASES]
    bought = purchases > 0
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
        c_since = np.where(c_count > 0, (context.now - c_last) / _DAY, np.nan)
        c_interval = np.where(c_count >= 2, (c_last - c_first) / np.maximum(c_count - 1, 1) / _DAY, np.nan)
        out[:, COLUMN["days_since_category_purchase"]] = c_since
        out[:, COLUMN["category_due_ratio"]] = np.where(c_interval > 0, c_since / c_interval, np.nan)
    hist_domain = catalog.item_domain[hist_rows].astype(np.int64)
    dom_count = np.bincount(hist_domain, weights=purchases, minlength=2)
    dom_sin = np.bincount(hist_domain, weights=repeat[:, HOUR_SIN], minlength=2)
    dom_cos = np.bincount(hist_domain, weights=repeat[:, HOUR_COS], minlength=2)
    cand_domain = catalog.item_domain[rows].astype(np.int64)
    out[:, COLUMN["domain_hour_affinity"]] = _circular_affinity(dom_sin[cand_domain], dom_cos[cand_domain],
                                                                dom_count[cand_domain], _angles(context)[0])


def _bought_together_features(out: np.ndarray, catalog: Catalog, bought_rows: np.ndarray, rows: np.ndarray) -> None:
    """Bought together with the user's most recent purchases (``bought_rows``: most recent first)."""
    _, partners, scores = catalog.related(bought_rows[:RELATED_HISTORY])
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
