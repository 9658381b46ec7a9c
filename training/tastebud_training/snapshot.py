"""Point-in-time snapshots: the catalog and user table as they were at a given time.

Training builds features "as of" the start of the label window and serving "as of" the end of the data,
with these same two functions, so a ranker never learns from information it would not have online.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tastebud.adapters.embedded.user_table import UserTable
from tastebud.catalog import DEFAULT_DELIVERY_RADIUS_KM, DOMAIN_CODE, Catalog
from tastebud.features.history import EVENT_WEIGHTS, POSITIVE_EVENTS, REPEAT_EVENT, fold_log
from tastebud_training.data import Dataset
from tastebud_training.reorders import basket_keys, bought_by_same_shoppers, bought_together, item_repeat_stats

RECENT_DAYS = 7
_DAY = 86400.0


def positives(interactions: pd.DataFrame) -> pd.DataFrame:
    """Positive events with their graded weight (click 1, add_to_cart 2, purchase 3)."""
    pos = interactions[interactions["event_type"].isin(POSITIVE_EVENTS)]
    return pos.assign(weight=pos["event_type"].map(EVENT_WEIGHTS).astype(np.float32))


def item_rows(catalog: Catalog, item_ids: pd.Series) -> np.ndarray:
    """Catalog rows of item ids (the data contract guarantees every interaction's item exists)."""
    index = pd.Index(catalog.item_ids)
    return index.get_indexer(item_ids.to_numpy()).astype(np.int64)


def build_catalog(dataset: Dataset, as_of: float) -> Catalog:
    items, merchants = dataset.items, dataset.merchants
    merchant_index = pd.Index(merchants["merchant_id"].to_numpy())
    item_merchant = merchant_index.get_indexer(items["merchant_id"].to_numpy()).astype(np.int64)
    categories = np.asarray(sorted(set(items["category"].astype(str))), dtype=str)
    item_category = np.searchsorted(categories, items["category"].astype(str).to_numpy()).astype(np.int64)
    merchant_domain = merchants["domain"].map(DOMAIN_CODE).to_numpy(dtype=np.int8)

    n_items = len(items)
    item_index = pd.Index(items["item_id"].to_numpy())
    past = dataset.interactions[dataset.interactions["ts"] < as_of]
    popularity, recent_popularity = _item_popularity(past, item_index, as_of, n_items)
    ctr = _item_ctr(past, item_index, n_items)
    repeats = _ItemRepeats.of(past, item_index, n_items)
    merchant_pct = _merchant_popularity_pct(item_merchant, popularity, len(merchants))

    return Catalog(
        as_of=float(as_of),
        item_ids=items["item_id"].to_numpy(dtype=str),
        item_merchant=item_merchant,
        item_domain=merchant_domain[item_merchant],
        item_category=item_category,
        item_price=items["price"].to_numpy(dtype=np.float32),
        item_created_at=items["created_at"].to_numpy(dtype=np.float64),
        item_popularity=popularity,
        item_recent_popularity=recent_popularity,
        item_ctr=ctr,
        merchant_ids=merchants["merchant_id"].to_numpy(dtype=str),
        merchant_created_at=merchants["created_at"].to_numpy(dtype=np.float64),
        merchant_lat=merchants["lat"].to_numpy(dtype=np.float64),
        merchant_lon=merchants["lon"].to_numpy(dtype=np.float64),
        merchant_popularity_pct=merchant_pct,
        categories=categories,
        # Items deleted through the API stay in the log (their interactions still teach) but are never served.
        item_enabled=~_flag(items, "deleted", default=False),
        merchant_open=_flag(merchants, "is_open", default=True),
        merchant_radius_km=merchants["delivery_radius_km"].fillna(DEFAULT_DELIVERY_RADIUS_KM).to_numpy(np.float64)
        if "delivery_radius_km" in merchants else np.full(len(merchants), DEFAULT_DELIVERY_RADIUS_KM),
        item_repeat_rate=repeats.repeat_rate,
        item_reorder_days=repeats.reorder_days,
        related_offsets=repeats.related[0],
        related_rows=repeats.related[1],
        related_scores=repeats.related[2],
        similar_offsets=repeats.similar[0],
        similar_rows=repeats.similar[1],
        similar_scores=repeats.similar[2],
    )


def _item_popularity(past: pd.DataFrame, item_index: pd.Index, as_of: float,
                     n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Graded positive weight per item before ``as_of``: over all of the past, and over its last RECENT_DAYS."""
    pos = positives(past)
    rows = item_index.get_indexer(pos["item_id"].to_numpy())
    popularity = np.bincount(rows, weights=pos["weight"].to_numpy(), minlength=n_items).astype(np.float32)
    recent = pos["ts"].to_numpy() >= as_of - RECENT_DAYS * _DAY
    recent_popularity = np.bincount(rows[recent], weights=pos["weight"].to_numpy()[recent],
                                    minlength=n_items).astype(np.float32)
    return popularity, recent_popularity


def _item_ctr(past: pd.DataFrame, item_index: pd.Index, n_items: int) -> np.ndarray:
    """Click-through rate per item, smoothed towards the catalog's; NaN for all when no impressions were logged."""
    impressions = past[past["event_type"] == "impression"]
    if not len(impressions):
        return np.full(n_items, np.nan, dtype=np.float32)  # unknown, not zero: no impressions were logged
    shown = np.bincount(item_index.get_indexer(impressions["item_id"].to_numpy()), minlength=n_items)
    clicks_df = past[past["event_type"] == "click"]
    clicks = np.bincount(item_index.get_indexer(clicks_df["item_id"].to_numpy()), minlength=n_items)
    prior = max(clicks.sum() / max(shown.sum(), 1), 1e-3)
    strength = 20.0  # pseudo-impressions: an item needs ~20 impressions before its own CTR dominates
    return ((clicks + strength * prior) / (shown + strength)).astype(np.float32)


@dataclass(frozen=True)
class _ItemRepeats:
    """What past purchases say per item: how often it is re-bought and after how long, and its neighbours
    (bought in the same basket; bought by the same shoppers) as (offsets, rows, scores)."""

    repeat_rate: np.ndarray
    reorder_days: np.ndarray
    related: tuple[np.ndarray, np.ndarray, np.ndarray]
    similar: tuple[np.ndarray, np.ndarray, np.ndarray]

    @classmethod
    def of(cls, past: pd.DataFrame, item_index: pd.Index, n_items: int) -> _ItemRepeats:
        purchases = past[past["event_type"] == REPEAT_EVENT]
        purchase_rows = item_index.get_indexer(purchases["item_id"].to_numpy())
        purchase_ts = purchases["ts"].to_numpy(dtype=np.float64)
        user_codes, _ = pd.factorize(purchases["user_id"])
        repeat_rate, reorder_days = item_repeat_stats(user_codes, purchase_rows, purchase_ts, n_items)
        sessions = (purchases["session_id"].fillna("").astype(str).to_numpy() if "session_id" in purchases
                    else np.full(len(purchases), ""))
        related = bought_together(basket_keys(purchases["user_id"].to_numpy(dtype=str), sessions, purchase_ts),
                                  purchase_rows, n_items)
        similar = bought_by_same_shoppers(user_codes, purchase_rows, n_items)
        return cls(repeat_rate, reorder_days, related, similar)


def _merchant_popularity_pct(item_merchant: np.ndarray, popularity: np.ndarray, n_merchants: int) -> np.ndarray:
    """Each merchant's rank by the summed popularity of its items, as a fraction in [0, 1]."""
    merchant_popularity = np.bincount(item_merchant, weights=popularity, minlength=n_merchants)
    order = np.argsort(np.argsort(merchant_popularity, kind="stable"), kind="stable")
    return (order / max(n_merchants - 1, 1)).astype(np.float32)


def _flag(frame: pd.DataFrame, column: str, *, default: bool) -> np.ndarray:
    """A bool column where missing values (NaN, '') take ``default``."""
    if column not in frame:
        return np.full(len(frame), default)
    values = frame[column]
    if values.dtype == object:
        values = values.astype(str).str.strip().str.lower().map({"true": 1.0, "1": 1.0, "yes": 1.0, "false": 0.0,
                                                                 "0": 0.0, "no": 0.0})
    return np.where(pd.isna(values), default, values.astype("float64") != 0.0).astype(bool)


def preference_terms(users: pd.DataFrame) -> list[str]:
    """Vocabulary of stated tastes (``preferences`` is ';'-separated), sorted for stable rows."""
    if "preferences" not in users:
        return []
    terms = {t.strip().lower() for value in users["preferences"].fillna("") for t in str(value).split(";")}
    return sorted(t for t in terms if t)


def build_user_table(dataset: Dataset, catalog: Catalog, as_of: float, terms: list[str]) -> UserTable:
    """Per user: unique positive items, most recent first, folded by ``tastebud.features.history`` (as serving
    folds)."""
    pos = positives(dataset.interactions[dataset.interactions["ts"] < as_of])
    users = dataset.users
    user_ids = np.asarray(sorted(set(users["user_id"]).union(pos["user_id"])), dtype=str)
    user_pos, rows, weights, last_ts, repeat = fold_log(
        np.searchsorted(user_ids, pos["user_id"].to_numpy(dtype=str)), item_rows(catalog, pos["item_id"]),
        pos["event_type"].to_numpy(dtype=str), pos["ts"].to_numpy(dtype=np.float64), catalog.size)
    counts = np.bincount(user_pos, minlength=user_ids.size)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    profile = users.set_index("user_id").reindex(user_ids)
    term_row = {t: i for i, t in enumerate(terms)}
    pref_lists = [
        [term_row[t] for t in {s.strip().lower() for s in str(v).split(";")} if t in term_row]
        for v in (profile["preferences"].fillna("") if "preferences" in profile else [""] * user_ids.size)
    ]
    pref_lists = [sorted(p) for p in pref_lists]
    pref_offsets = np.concatenate([[0], np.cumsum([len(p) for p in pref_lists])]).astype(np.int64)
    pref_rows = np.asarray([r for p in pref_lists for r in p], dtype=np.int64)

    def text_column(name: str) -> np.ndarray:
        if name not in profile:
            return np.full(user_ids.size, "", dtype=str)
        return profile[name].fillna("").astype(str).str.strip().str.lower().to_numpy(dtype=str)

    def column(name: str) -> np.ndarray:
        return profile[name].to_numpy(dtype=np.float64) if name in profile else np.full(user_ids.size, np.nan)

    return UserTable(
        user_ids=user_ids,
        offsets=offsets,
        history_rows=rows,
        history_weights=weights,
        history_last_ts=last_ts,
        history_repeat=repeat,
        preference_offsets=pref_offsets,
        preference_rows=pref_rows,
        home_lat=column("home_lat"),
        home_lon=column("home_lon"),
        age_band=text_column("age_band"),
        gender=text_column("gender"),
    )
