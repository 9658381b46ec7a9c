"""Training examples for the two-tower model, built point-in-time from the interaction log.

One example per (user, item, session) positive. The user side is what serving would have computed just
before the event: the user's history as of that moment (unique items, graded weights summed, most recent
first, exactly the UserTable semantics), profile attributes and the request context. Hard negatives are
the items shown in the same request and not engaged with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tastebud.adapters.embedded.user_table import UserTable
from tastebud.catalog import Catalog
from tastebud.features.two_tower import (
    HISTORY_LENGTH,
    PRICE_BUCKETS,
    TwoTowerVocab,
    area_bucket,
    history_matrix,
    preference_matrix,
    user_inputs,
)
from tastebud_training.data import Dataset
from tastebud_training.snapshot import item_rows, positives


@dataclass
class Examples:
    """Aligned arrays, one row per training example."""

    user: dict[str, np.ndarray]
    item_rows: np.ndarray
    log_q: np.ndarray
    hard_rows: np.ndarray  # [n, H] catalog rows, -1 = none
    ts: np.ndarray

    def __len__(self) -> int:
        return int(self.item_rows.size)

    def take(self, index: np.ndarray) -> Examples:
        return Examples({k: v[index] for k, v in self.user.items()}, self.item_rows[index], self.log_q[index],
                        self.hard_rows[index], self.ts[index])


def build_vocab(dataset: Dataset, catalog: Catalog, users: UserTable, text_vectors: np.ndarray,
                n_preferences: int) -> TwoTowerVocab:
    """Vocabularies from the training window: only ids with positives get their own embedding row."""
    pos = positives(dataset.interactions)
    rows = np.unique(item_rows(catalog, pos["item_id"]))
    item_index = np.zeros(catalog.size, dtype=np.int64)
    item_index[rows] = np.arange(1, rows.size + 1)
    merchants = np.unique(catalog.item_merchant[rows])
    merchant_index = np.zeros(catalog.merchant_ids.size, dtype=np.int64)
    merchant_index[merchants] = np.arange(1, merchants.size + 1)
    known_prices = catalog.item_price[~np.isnan(catalog.item_price)]
    edges = (np.quantile(known_prices, np.linspace(0, 1, PRICE_BUCKETS + 1)[1:-1]) if known_prices.size
             else np.zeros(PRICE_BUCKETS - 1))
    ages = sorted({a for a in (users.age_band if users.age_band is not None else []) if a})
    genders = sorted({g for g in (users.gender if users.gender is not None else []) if g})
    return TwoTowerVocab(
        user_ids=np.asarray(sorted(pos["user_id"].unique()), dtype=str),
        age_bands=tuple(ages), genders=tuple(genders), item_index=item_index, merchant_index=merchant_index,
        n_items=int(rows.size), n_merchants=int(merchants.size), n_categories=int(catalog.categories.size),
        n_preferences=n_preferences, price_edges=edges.astype(np.float64), text_vectors=text_vectors,
    )


def point_in_time_histories(user_ids: np.ndarray, rows: np.ndarray, weights: np.ndarray, ts: np.ndarray,
                            example_mask: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """For each event flagged in ``example_mask``: the user's history strictly before it.

    Events must be sorted by (user, ts). History = unique rows with summed weights, ordered by last time
    descending then row ascending, truncated to HISTORY_LENGTH (the UserTable order).
    """
    hist_rows: list[np.ndarray] = []
    hist_weights: list[np.ndarray] = []
    state: dict[int, list[float]] = {}
    current = None
    pending: list[tuple[int, float, float]] = []
    pending_ts = None
    for user, row, weight, t, is_example in zip(user_ids, rows, weights, ts, example_mask, strict=True):
        if user != current:
            current, state, pending, pending_ts = user, {}, [], None
        if pending_ts is not None and t > pending_ts:  # events at the same second are not each other's history
            for r, w, tt in pending:
                entry = state.setdefault(r, [0.0, tt])
                entry[0] += w
                entry[1] = max(entry[1], tt)
            pending = []
        if is_example:
            ordered = sorted(state.items(), key=lambda kv: (-kv[1][1], kv[0]))[:HISTORY_LENGTH]
            hist_rows.append(np.asarray([r for r, _ in ordered], dtype=np.int64))
            hist_weights.append(np.asarray([v[0] for _, v in ordered], dtype=np.float32))
        pending.append((int(row), float(weight), float(t)))
        pending_ts = t
    return hist_rows, hist_weights


def build_examples(dataset: Dataset, catalog: Catalog, users: UserTable, vocab: TwoTowerVocab, *,
                   hard_negatives: int, seed: int) -> Examples:
    rng = np.random.default_rng(seed)
    pos = positives(dataset.interactions)
    pos = pos.assign(row=item_rows(catalog, pos["item_id"])).sort_values(["user_id", "ts"], kind="stable")
    # One example per (user, item, session): the funnel click -> cart -> purchase is one choice, not three.
    session = pos["session_id"].where(pos["session_id"] != "", pos["ts"].astype(str))
    first = ~pd.DataFrame({"u": pos["user_id"], "r": pos["row"], "s": session}).duplicated()
    hist_rows, hist_weights = point_in_time_histories(
        pos["user_id"].to_numpy(), pos["row"].to_numpy(), pos["weight"].to_numpy(), pos["ts"].to_numpy(),
        first.to_numpy())
    examples = pos[first.to_numpy()]
    n = len(examples)

    profile_index = np.asarray([users.index_of(u) if users.index_of(u) is not None else -1
                                for u in examples["user_id"]], dtype=np.int64)
    known = profile_index >= 0
    safe = np.where(known, profile_index, 0)
    ages = users.age_band[safe] if users.age_band is not None else np.full(n, "")
    genders = users.gender[safe] if users.gender is not None else np.full(n, "")
    prefs = [users.preference_rows[users.preference_offsets[i]:users.preference_offsets[i + 1]] if ok
             else np.zeros(0, np.int64) for i, ok in zip(safe, known, strict=True)]
    ts = examples["ts"].to_numpy().astype(np.float64)
    item_domain = catalog.item_domain[examples["row"].to_numpy()].astype(np.int64) + 1
    # Half of the requests are "all", half filtered to the chosen item's domain, as the app offers both.
    domain = np.where(rng.random(n) < 0.5, 0, item_domain)
    h_rows, h_weights = history_matrix(hist_rows, hist_weights)
    user = user_inputs(
        vocab,
        user_idx=np.asarray([vocab.user_index(u) for u in examples["user_id"]]),
        age_idx=np.asarray([vocab.age_index(a) if k else 0 for a, k in zip(ages, known, strict=True)]),
        gender_idx=np.asarray([vocab.gender_index(g) if k else 0 for g, k in zip(genders, known, strict=True)]),
        area_idx=np.where(known, area_bucket(users.home_lat[safe], users.home_lon[safe]), 0),
        pref_idx=preference_matrix(prefs),
        hist_rows=h_rows, hist_weights=h_weights,
        hour=((ts // 3600) % 24).astype(np.int64), dow=((ts // 86400 + 3) % 7).astype(np.int64), domain=domain,
    )
    rows = examples["row"].to_numpy().astype(np.int64)
    counts = np.bincount(rows, minlength=catalog.size).astype(np.float64)
    log_q = np.log(counts[rows] / counts.sum()).astype(np.float32)
    hard = _hard_negatives(dataset.interactions, catalog, examples, hard_negatives, rng)
    return Examples(user, rows, log_q, hard, ts)


def _hard_negatives(interactions: pd.DataFrame, catalog: Catalog, examples: pd.DataFrame, per_example: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Items shown in the example's request and not engaged with (-1 padding)."""
    out = np.full((len(examples), per_example), -1, dtype=np.int64)
    if per_example == 0 or "request_id" not in interactions:
        return out
    logged = interactions[interactions["request_id"] != ""]
    shown = logged[logged["event_type"] == "impression"]
    if shown.empty:
        return out
    engaged = positives(logged)
    engaged_keys = set(zip(engaged["request_id"], engaged["item_id"], strict=True))
    shown = shown[[(r, i) not in engaged_keys for r, i in zip(shown["request_id"], shown["item_id"], strict=True)]]
    shown_rows = shown.assign(row=item_rows(catalog, shown["item_id"])).groupby("request_id")["row"].agg(list)
    for i, request_id in enumerate(examples["request_id"].to_numpy()):
        candidates = shown_rows.get(request_id) if request_id else None
        if candidates:
            pick = rng.permutation(len(candidates))[:per_example]
            out[i, : pick.size] = np.asarray(candidates)[pick]
    return out
