"""The cold-start study's split: a seeded share of the items test users engage with after the cutoff is held out,
and the data set the models are trained on loses every trace of them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tastebud_training.data import POSITIVE_EVENTS, Dataset

HELD_OUT_SHARE = 0.1


@dataclass(frozen=True)
class ColdStartSplit:
    """The held-out items, the reduced data set the models see, and the test users with their truth (item ids)."""

    held_out: frozenset[str]
    reduced: Dataset
    user_ids: list[str]
    request_ts: dict[str, float]
    truth: dict[str, set[str]]


def cold_start_split(dataset: Dataset, cutoff: float, seed: int, max_users: int) -> ColdStartSplit:
    """Hold out a seeded share of the items test users engage with after ``cutoff``; drop them from the data."""
    rng = np.random.default_rng(seed)
    interactions = dataset.interactions
    positive = interactions[interactions["event_type"].isin(POSITIVE_EVENTS)]
    after = positive[positive["ts"] >= cutoff]
    before_users = set(positive.loc[positive["ts"] < cutoff, "user_id"])
    after = after[after["user_id"].isin(before_users)]
    candidates = np.asarray(sorted(after["item_id"].unique()), dtype=object)
    held_out = frozenset(rng.choice(candidates, max(1, int(len(candidates) * HELD_OUT_SHARE)),
                                    replace=False).tolist())

    kept_items = ~dataset.items["item_id"].isin(held_out)
    training_log = interactions[(interactions["ts"] < cutoff) & ~interactions["item_id"].isin(held_out)]
    stock = dataset.stock[~dataset.stock["item_id"].isin(held_out)] if dataset.stock is not None else None
    reduced = Dataset(dataset.merchants, dataset.items[kept_items].reset_index(drop=True), dataset.users,
                      training_log, stock, dataset.source, dataset.warnings, dataset.read_at)

    truth = after.groupby("user_id")["item_id"].agg(set)
    first_ts = after.groupby("user_id")["ts"].min()
    user_ids = sorted(truth.index)
    if len(user_ids) > max_users:
        user_ids = sorted(rng.choice(np.asarray(user_ids, dtype=object), max_users, replace=False).tolist())
    return ColdStartSplit(held_out, reduced, user_ids, {u: float(first_ts[u]) for u in user_ids},
                          {u: set(truth[u]) for u in user_ids})
