"""A user's recent history: event types, their weights, and how events fold into a history.

Defined once for the data contract, training snapshots, every feature store and the live event path, so a
purchase weighs the same and a history is ordered the same wherever it is computed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tastebud.domain import UserProfile

EVENT_TYPES = ("impression", "view", "click", "add_to_cart", "purchase")
POSITIVE_EVENTS = ("click", "add_to_cart", "purchase")
# Graded relevance of a positive (click 1, add_to_cart 2, purchase 3): training, evaluation and serving.
EVENT_WEIGHTS: dict[str, int] = {"click": 1, "add_to_cart": 2, "purchase": 3}


def fold_history(rows: np.ndarray, weights: np.ndarray, last_ts: np.ndarray, new_rows: np.ndarray,
                 new_weights: np.ndarray, new_ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add positive events to a history; returns (rows, weights, last_ts): unique rows, most recent first.

    A row's weight is the sum of its events' weights and its time the latest of them; ties in time keep the
    lower row first (the order ``build_user_table`` produces from a log).
    """
    all_rows = np.concatenate([rows.astype(np.int64), new_rows.astype(np.int64)])
    all_weights = np.concatenate([weights.astype(np.float32), new_weights.astype(np.float32)])
    all_ts = np.concatenate([last_ts.astype(np.float64), new_ts.astype(np.float64)])
    unique, inverse = np.unique(all_rows, return_inverse=True)
    summed = np.zeros(unique.size, dtype=np.float32)
    np.add.at(summed, inverse, all_weights)
    latest = np.full(unique.size, -np.inf)
    np.maximum.at(latest, inverse, all_ts)
    order = np.lexsort((unique, -latest))
    return unique[order], summed[order], latest[order]


def with_events(user: UserProfile, item_rows: np.ndarray, event_types: Sequence[str],
                timestamps: np.ndarray) -> UserProfile:
    """The profile with live events applied (non-positive events and unknown rows, -1, are ignored)."""
    weights = np.asarray([EVENT_WEIGHTS.get(t, 0) for t in event_types], dtype=np.float32)
    keep = (weights > 0) & (item_rows >= 0)
    if not keep.any():
        return user
    rows, summed, latest = fold_history(user.history_rows, user.history_weights, user.history_last_ts,
                                        item_rows[keep], weights[keep], timestamps[keep])
    return UserProfile(user_id=user.user_id, known=True, history_rows=rows, history_weights=summed,
                       history_last_ts=latest, preference_rows=user.preference_rows, home_lat=user.home_lat,
                       home_lon=user.home_lon, age_band=user.age_band, gender=user.gender)
