"""Replenishment cadence for the simulator (`tastebud data generate --cadence`, issue 22).

Without it the simulator's repeat utility depends only on log(purchase count), so "buy again" is the best possible
repeat ranker by construction and no timing feature can help. Real shoppers re-buy on a rhythm: milk every few
days, rice every few weeks, each shopper a little faster or slower than others, never exactly on time. Here:

* every item has a cycle (log-normal around ``MEDIAN_CYCLE_DAYS`` of its domain) and every user a personal factor
  per item (log-normal, ``USER_ITEM_SPREAD``), drawn from a hash of (user, item) so nothing per pair is stored;
* the item's *due-ness* is log(days since the user last bought it / the user's cycle for it): about 0 when due,
  negative right after a purchase, positive when overdue;
* browsing: bought-before items get ``DUE_WEIGHT`` × tanh(``DUE_SLOPE`` × due-ness / 2) on top of the log-count
  repeat bonus, so a just-bought item is unlikely and an overdue one likely;
* "order again" sessions become a restock: the shopper buys each bought-before item of the domain with probability
  sigmoid(``DUE_SLOPE`` × due-ness + ``RESTOCK_BIAS``), at most ``MAX_RESTOCK`` of them (the most due first),
  so a basket holds what is due, and a grocery restock also browses (something new joins the basket).
  ``RESTOCK_SHARE`` of grocery sessions with a history are restocks, and shoppers
  visit groceries ``GROCERY_VISITS`` times as often as in the default simulator (its shoppers made 2 grocery
  baskets in 60 days, median, of about one item each: nothing to replenish).

With these, timing (days or baskets since the last purchase against the usual gap) predicts the next basket and
time-decayed counts alone cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from tastebud_training.simulator.catalog import DAY, GROCERY, RESTAURANT

MEDIAN_CYCLE_DAYS = {RESTAURANT: 12.0, GROCERY: 8.0}
ITEM_CYCLE_SPREAD = 0.5  # log-normal sigma of the item cycles around their domain's median
USER_ITEM_SPREAD = 0.35  # log-normal sigma of a shopper's own cycle for an item around the item's
DUE_WEIGHT = 2.0
DUE_SLOPE = 3.0  # per unit of log(since / cycle)
RESTOCK_BIAS = -0.5  # an item exactly due is restocked with probability sigmoid(-0.5) = 0.38
MAX_RESTOCK = 12
RESTOCK_SHARE = {RESTAURANT: 0.07, GROCERY: 0.6}
GROCERY_VISITS = 3.0  # grocery sessions per user, × the default simulator's: a shopper restocks about weekly
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
PARAMETERS = {"median_cycle_days_restaurant_grocery": [MEDIAN_CYCLE_DAYS[RESTAURANT], MEDIAN_CYCLE_DAYS[GROCERY]],
              "item_cycle_spread": ITEM_CYCLE_SPREAD, "user_item_spread": USER_ITEM_SPREAD, "due_weight": DUE_WEIGHT,
              "due_slope": DUE_SLOPE, "restock_bias": RESTOCK_BIAS, "max_restock": MAX_RESTOCK,
              "restock_share_restaurant_grocery": [RESTOCK_SHARE[RESTAURANT], RESTOCK_SHARE[GROCERY]],
              "grocery_visits": GROCERY_VISITS,
              "due": "log(days since the last purchase / the shopper's cycle for the item)"}


def _unit_hash(keys: np.ndarray, salt: int) -> np.ndarray:
    """A uniform in (0, 1) per key (SplitMix64 finaliser), the same for a key every time."""
    z = keys.astype(np.uint64) * _GOLDEN + np.uint64(salt)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


@dataclass
class Replenishment:
    """Each (user, item)'s cycle and last purchase time; keys are user × n_items + item."""

    item_cycle_days: np.ndarray
    salt: int
    last_keys: np.ndarray
    last_ts: np.ndarray

    @classmethod
    def draw(cls, item_domain: np.ndarray, rng: np.random.Generator) -> Replenishment:
        median = np.where(item_domain == GROCERY, MEDIAN_CYCLE_DAYS[GROCERY], MEDIAN_CYCLE_DAYS[RESTAURANT])
        cycles = median * np.exp(rng.normal(0.0, ITEM_CYCLE_SPREAD, item_domain.size))
        return cls(cycles, int(rng.integers(1 << 62)), np.empty(0, np.int64), np.empty(0, np.int64))

    @property
    def n_items(self) -> int:
        return int(self.item_cycle_days.size)

    def cycle_days(self, keys: np.ndarray) -> np.ndarray:
        """The user's own cycle for each item of ``keys``."""
        personal = np.exp(USER_ITEM_SPREAD * ndtri(_unit_hash(keys, self.salt)))
        return self.item_cycle_days[keys % self.n_items] * personal

    def due(self, keys: np.ndarray, now: np.ndarray) -> np.ndarray:
        """log(days since the last purchase / the user's cycle); NaN for an item never bought."""
        position = np.minimum(np.searchsorted(self.last_keys, keys), max(self.last_keys.size - 1, 0))
        found = (self.last_keys[position] == keys) if self.last_keys.size else np.zeros(keys.shape, bool)
        since = np.where(found, (now - self.last_ts[position] if self.last_keys.size else 0.0) / DAY, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(np.maximum(since, 1.0 / 24.0) / self.cycle_days(keys))

    def utility(self, keys: np.ndarray, now: np.ndarray) -> np.ndarray:
        """The browsing utility's due term (0 for an item never bought)."""
        return np.nan_to_num(DUE_WEIGHT * np.tanh(DUE_SLOPE * self.due(keys, now) / 2.0), nan=0.0)

    def restock(self, history_keys: np.ndarray, owner: np.ndarray, now: np.ndarray,
                u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which bought-before items each restock session buys: ``history_keys`` are the sessions' items (one row
        per distinct item), ``owner`` the session of each, ``now`` its start, ``u`` a uniform per row. Returns
        (owner, key) of the purchases, at most ``MAX_RESTOCK`` per session, the most due first; a session whose
        draw buys nothing buys its most due item."""
        if not history_keys.size:
            return owner, history_keys
        due = self.due(history_keys, now)
        chance = 1.0 / (1.0 + np.exp(-(DUE_SLOPE * due + RESTOCK_BIAS)))
        order = np.lexsort((-due, owner))  # per session, the most due first
        owner, keys, chance, u = owner[order], history_keys[order], chance[order], u[order]
        first = np.r_[True, owner[1:] != owner[:-1]]
        taken = u < chance
        starts = np.flatnonzero(first)
        per_session = np.add.reduceat(taken.astype(np.int64), starts)
        taken[starts[per_session == 0]] = True  # nothing drawn: the most due item
        counted = np.cumsum(taken)
        rank: np.ndarray = counted - np.repeat(counted[starts] - taken[starts], np.diff(np.r_[starts, owner.size]))
        keep = taken & (rank <= MAX_RESTOCK)
        return owner[keep], keys[keep]

    def remember(self, keys: np.ndarray, ts: np.ndarray) -> None:
        """Record purchases: each key's last purchase time becomes the latest one seen."""
        all_keys = np.concatenate([self.last_keys, keys.astype(np.int64)])
        all_ts = np.concatenate([self.last_ts, ts.astype(np.int64)])
        order = np.lexsort((all_ts, all_keys))
        all_keys, all_ts = all_keys[order], all_ts[order]
        last = np.r_[all_keys[1:] != all_keys[:-1], True] if all_keys.size else np.zeros(0, bool)
        self.last_keys, self.last_ts = all_keys[last], all_ts[last]
