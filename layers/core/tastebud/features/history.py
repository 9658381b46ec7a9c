"""A user's history: event types, their weights, and how events fold into a history.

Defined once for the data contract, training snapshots, ranker examples, every feature store and the live event
path, so a purchase weighs the same, a re-order is counted the same and a history is ordered the same wherever it
is computed.

A history has one entry per item the user had positives on, most recent first, with:
  * ``weight``: graded positives summed (click 1, add_to_cart 2, purchase 3);
  * ``last_ts``: the time of the latest positive;
  * ``repeat``: the re-consumption statistics of the item's purchases (``REPEAT_COLUMNS``): how many, the first
    and last purchase time, the summed unit vectors of their hour of day and day of week (circular means, so
    a 23:00 and a 01:00 order average to midnight), and their time-decayed count at a few half-lives
    (``decayed_purchases``). Every column folds with an associative reduction
    (``REPEAT_REDUCE``), so a history can be updated event by event, in any order, or built from a whole log,
    with the same result.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tastebud.domain import UserProfile, day_of_week, hour_of_day
from tastebud.event_types import EVENT_TYPES, EVENT_WEIGHTS, POSITIVE_EVENTS, REPEAT_EVENT

__all__ = ["EVENT_TYPES", "EVENT_WEIGHTS", "POSITIVE_EVENTS", "REPEAT_EVENT", "fold_history", "fold_log",
           "with_events"]

# Time-decayed purchase counts, exact at any request time: Σ 2^((t - DECAY_EPOCH) / half-life) is a plain sum
# (it folds in any order, and DynamoDB can ADD it); × 0.5^((now - DECAY_EPOCH) / half-life) it is Σ 0.5^(age /
# half-life). The epoch keeps the terms inside float64 and DynamoDB's number range (|x| < 1e126, i.e. 2^418):
# with the shortest half-life, 14 days, until 2041; move it (a FEATURE_VERSION bump) before then.
DECAY_HALF_LIVES_DAYS = (14.0, 30.0, 60.0, 120.0)
DECAY_EPOCH = 1_735_689_600.0  # 2025-01-01T00:00:00Z
DECAY_COLUMN_NAMES = tuple(f"decay_{h:g}d" for h in DECAY_HALF_LIVES_DAYS)
REPEAT_COLUMNS = ("purchases", "first_purchase_ts", "last_purchase_ts", "hour_sin", "hour_cos", "weekday_sin",
                  "weekday_cos", *DECAY_COLUMN_NAMES)
PURCHASES, FIRST_PURCHASE_TS, LAST_PURCHASE_TS, HOUR_SIN, HOUR_COS, WEEKDAY_SIN, WEEKDAY_COS = range(7)
DECAY_COLUMNS = tuple(range(7, 7 + len(DECAY_HALF_LIVES_DAYS)))
REPEAT_REDUCE = (np.add, np.minimum, np.maximum, np.add, np.add, np.add, np.add, *(np.add,) * len(DECAY_COLUMNS))
_IDENTITY = (0.0, np.inf, -np.inf, 0.0, 0.0, 0.0, 0.0,
             *(0.0,) * len(DECAY_COLUMNS))  # a non-purchase positive contributes nothing
_DAY = 86400.0


def empty_repeat(n: int = 0) -> np.ndarray:
    return np.tile(np.asarray(_IDENTITY, dtype=np.float64), (n, 1))


def repeat_contributions(purchase: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Each event's row of ``REPEAT_COLUMNS`` (identity for events that are not purchases)."""
    out = empty_repeat(purchase.size)
    ts = ts.astype(np.float64)
    hour = 2 * np.pi * hour_of_day(ts) / 24.0
    weekday = 2 * np.pi * day_of_week(ts) / 7.0
    decays = [np.exp2((ts - DECAY_EPOCH) / (h * _DAY)) for h in DECAY_HALF_LIVES_DAYS]
    out[purchase] = np.column_stack([np.ones(purchase.size), ts, ts, np.sin(hour), np.cos(hour), np.sin(weekday),
                                     np.cos(weekday), *decays])[purchase]
    return out


def decayed_purchases(repeat: np.ndarray, now: float) -> np.ndarray:
    """(entries, len(DECAY_HALF_LIVES_DAYS)): Σ 0.5^(age_days / half-life) over each entry's purchases at ``now``."""
    scale = np.exp2(-(now - DECAY_EPOCH) / (np.asarray(DECAY_HALF_LIVES_DAYS) * _DAY))
    return repeat[:, DECAY_COLUMNS] * scale


def event_weights(event_types: Sequence[str] | np.ndarray) -> np.ndarray:
    return np.asarray([EVENT_WEIGHTS.get(str(t), 0) for t in event_types], dtype=np.float32)


def fold_keys(keys: np.ndarray, weights: np.ndarray, last_ts: np.ndarray,
              repeat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reduce entries with the same key: (unique keys ascending, weights summed, latest times, repeat folded)."""
    unique, inverse = np.unique(keys.astype(np.int64), return_inverse=True)
    summed = np.zeros(unique.size, dtype=np.float32)
    np.add.at(summed, inverse, weights.astype(np.float32))
    latest = np.full(unique.size, -np.inf)
    np.maximum.at(latest, inverse, last_ts.astype(np.float64))
    folded = empty_repeat(unique.size)
    for column, reduce in enumerate(REPEAT_REDUCE):
        reduce.at(folded[:, column], inverse, repeat[:, column])
    return unique, summed, latest, folded


def fold_log(user_index: np.ndarray, rows: np.ndarray, event_types: Sequence[str] | np.ndarray, ts: np.ndarray,
             n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A whole log of positives folded into every user's history at once (training snapshots).

    Returns (user index, rows, weights, last_ts, repeat) sorted by user, then most recent first, then row: the
    order ``fold_history`` gives one user.
    """
    weights = event_weights(event_types)
    keep = (weights > 0) & (rows >= 0)
    purchase = np.asarray(event_types) == REPEAT_EVENT
    keys = user_index[keep].astype(np.int64) * n_rows + rows[keep].astype(np.int64)
    unique, summed, latest, repeat = fold_keys(keys, weights[keep], ts[keep],
                                               repeat_contributions(purchase[keep], ts[keep]))
    users, item_rows = unique // n_rows, unique % n_rows
    order = np.lexsort((item_rows, -latest, users))
    return users[order], item_rows[order], summed[order], latest[order], repeat[order]


def fold_history(rows: np.ndarray, weights: np.ndarray, last_ts: np.ndarray, repeat: np.ndarray,
                 new_rows: np.ndarray, new_weights: np.ndarray, new_ts: np.ndarray,
                 new_repeat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Add entries to one user's history; returns (rows, weights, last_ts, repeat): unique rows, most recent first.

    A row's weight is the sum of its entries' weights and its time the latest of them; ties in time keep the
    lower row first (the order ``fold_log`` produces from a log).
    """
    unique, summed, latest, folded = fold_keys(
        np.concatenate([rows, new_rows]).astype(np.int64), np.concatenate([weights, new_weights]),
        np.concatenate([last_ts, new_ts]), np.concatenate([_repeat_of(rows, repeat), new_repeat]))
    order = np.lexsort((unique, -latest))
    return unique[order], summed[order], latest[order], folded[order]


def _repeat_of(rows: np.ndarray, repeat: np.ndarray) -> np.ndarray:
    """A history's repeat statistics; histories stored before they existed have none (identity, i.e. unknown)."""
    return repeat if repeat.shape == (rows.size, len(REPEAT_COLUMNS)) else empty_repeat(rows.size)


def with_events(user: UserProfile, item_rows: np.ndarray, event_types: Sequence[str],
                timestamps: np.ndarray) -> UserProfile:
    """The profile with live events applied (non-positive events and unknown rows, -1, are ignored)."""
    weights = event_weights(event_types)
    keep = (weights > 0) & (item_rows >= 0)
    if not keep.any():
        return user
    purchase = np.asarray(event_types) == REPEAT_EVENT
    rows, summed, latest, repeat = fold_history(
        user.history_rows, user.history_weights, user.history_last_ts, user.history_repeat,
        item_rows[keep], weights[keep], timestamps[keep], repeat_contributions(purchase[keep], timestamps[keep]))
    return UserProfile(user_id=user.user_id, known=True, history_rows=rows, history_weights=summed,
                       history_last_ts=latest, history_repeat=repeat, preference_rows=user.preference_rows,
                       home_lat=user.home_lat, home_lon=user.home_lon, age_band=user.age_band, gender=user.gender)
