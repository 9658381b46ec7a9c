"""Simulated traffic: when users shop (the session plan) and what the old production system showed them.

Both are exposure, not choice: the lists are drawn before the user looks at them; event_log draws what users do
with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tastebud_training.simulator.catalog import DAY, GROCERY, RESTAURANT, SLOT_DOMAIN, Catalog
from tastebud_training.simulator.population import Population

SESSIONS_PER_USER_DAY = 0.13  # about 8 sessions per average user in 60 days; heavy users many more
LIST_LENGTH = (10, 16)  # impressions per request, inclusive
# Where the old production system took the impressions from: popular, nearby, personalised, bought before.
SOURCE_SHARES = (0.36, 0.25, 0.31, 0.08)
N_NEAR = 10  # merchants a user counts as nearby, per domain


@dataclass(frozen=True)
class Sessions:
    """The planned sessions, sorted by start time: user, domain, start (epoch seconds) and day of the window."""

    user: np.ndarray
    domain: np.ndarray
    start: np.ndarray
    day: np.ndarray


def plan_sessions(pop: Population, window_start: int, days: int, rng: np.random.Generator,
                  grocery_visits: float = 1.0) -> Sessions:
    """When each user shops: heavy-tailed counts, weekend boost, meal times for restaurants. ``grocery_visits``
    multiplies each user's grocery sessions (restaurant sessions stay as they are)."""
    first_day = np.clip((pop.created - window_start) // DAY + 1, 0, days)  # from the day after sign-up
    rate = pop.activity * SESSIONS_PER_USER_DAY * (days - first_day)
    grocery_share = pop.grocery_share
    if grocery_visits != 1.0:
        rate = rate * (1.0 - grocery_share + grocery_visits * grocery_share)
        grocery_share = grocery_visits * grocery_share / (1.0 - grocery_share + grocery_visits * grocery_share)
    counts = rng.poisson(rate)
    user = np.repeat(np.arange(len(counts)), counts)
    n = len(user)

    weekday = (np.arange(days) + (window_start // DAY + 3)) % 7  # 1970-01-01 was a Thursday; Monday = 0
    weekend = weekday >= 5
    cdf = np.concatenate([[0.0], np.cumsum(np.where(weekend, 1.25, 1.0))])
    lo = first_day[user]
    target = cdf[lo] + rng.random(n) * (cdf[days] - cdf[lo])
    day = np.clip(np.searchsorted(cdf, target, side="right") - 1, lo, days - 1)

    grocery_p = np.clip(grocery_share[user] * np.where(weekend[day], 1.4, 1.0), 0.0, 0.95)
    domain = np.where(rng.random(n) < grocery_p, GROCERY, RESTAURANT)
    meal = rng.choice(3, n, p=[0.38, 0.52, 0.10])  # lunch, dinner, other
    restaurant_hour = np.select(
        [meal == 0, meal == 1], [rng.normal(12.5, 0.8, n), rng.normal(19.3, 1.0, n)], rng.uniform(9.0, 23.5, n)
    )
    grocery_hour = np.where(rng.random(n) < 0.5, rng.normal(11.0, 2.2, n), rng.normal(17.5, 2.0, n))
    hour = np.clip(np.where(domain == RESTAURANT, restaurant_hour, grocery_hour), 6.0, 23.9)
    start = window_start + day.astype(np.int64) * DAY + (hour * 3600).astype(np.int64)
    order = np.lexsort((user, start))
    user, domain, start, day = user[order], domain[order], start[order], day[order]
    if grocery_visits != 1.0:  # a weekly shopper places one grocery order a day at most (days are simulated whole)
        key = (user.astype(np.int64) * days + day) * 2 + domain
        _, first = np.unique(key, return_index=True)
        keep = np.zeros(n, dtype=bool)
        keep[first] = True
        keep |= domain == RESTAURANT
        user, domain, start, day = user[keep], domain[keep], start[keep], day[keep]
    return Sessions(user, domain, start, day)


def _sample_segments(cumulative: np.ndarray, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Weighted draw of one position in [lo, hi) per query; -1 where the segment has no weight."""
    lo, hi = np.broadcast_arrays(lo, hi)
    base = np.where(lo > 0, cumulative[np.maximum(lo - 1, 0)], 0.0)
    top = np.where(hi > lo, cumulative[np.maximum(hi - 1, 0)], base)
    mass = top - base
    position = np.searchsorted(cumulative, base + u * mass, side="right")
    position = np.clip(position, lo, np.maximum(hi - 1, lo))
    return np.where(mass > 0, position, -1)


def _row_duplicates(items: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """True where an item already appears earlier in the same row."""
    width = items.shape[1]
    marked = np.where(valid, items, -1 - np.arange(width))  # invalid cells never collide
    order = np.argsort(marked, axis=1, kind="stable")
    ordered = np.take_along_axis(marked, order, axis=1)
    repeated = np.zeros_like(valid)
    repeated[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    duplicate = np.zeros_like(valid)
    np.put_along_axis(duplicate, order, repeated, axis=1)
    return duplicate


class OldSystem:
    """The production system that chose the logged impressions: popular, nearby, personalised, bought before."""

    def __init__(self, catalog: Catalog, pop: Population, rng: np.random.Generator) -> None:
        self.c, self.rng = catalog, rng
        n_items = len(catalog.item_domain)
        self.slot_order = np.argsort(catalog.item_slot, kind="stable")
        self.slot_bounds = np.searchsorted(catalog.item_slot[self.slot_order], np.arange(len(SLOT_DOMAIN) + 1))
        restaurant_slots = int((SLOT_DOMAIN == RESTAURANT).sum())
        self.domain_bounds = np.array(
            [[0, self.slot_bounds[restaurant_slots]], [self.slot_bounds[restaurant_slots], n_items]]
        )
        self.near = [self._nearest(d, pop) for d in (RESTAURANT, GROCERY)]
        # Its idea of a user's taste: partly right, partly the stated preferences, partly nothing.
        stated = pop.stated / np.maximum(pop.stated.sum(axis=1, keepdims=True), 1)
        self.estimated_taste = 0.55 * pop.taste + 0.25 * stated + 0.20 / len(SLOT_DOMAIN)

    def _nearest(self, domain: int, pop: Population) -> np.ndarray:
        merchants = np.flatnonzero(self.c.merchant_domain == domain)
        if len(merchants) == 0:
            return np.empty((len(pop.home_lat), 0), dtype=np.int64)
        km = self.c.km(pop.home_lat[:, None], pop.home_lon[:, None], merchants[None, :])
        nearest = np.argsort(km, axis=1, kind="stable")[:, :N_NEAR]
        return merchants[nearest]

    def impressions(
        self, users: np.ndarray, domain: np.ndarray, weight: np.ndarray, has_history: np.ndarray,
        bought_before: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """The lists shown to the sessions: items (n, width) and a validity mask, compacted to the left.

        ``weight``: per item, how popular it is (0 for items that do not exist yet); ``bought_before(users,
        domain, u)``: the purchase history's draw of an item each user bought before in the domain, -1 if none.
        """
        rng, c = self.rng, self.c
        n, width = len(users), LIST_LENGTH[1]
        by_slot = np.cumsum(weight[self.slot_order])
        by_item = np.cumsum(weight)
        dlo, dhi = self.domain_bounds[domain, 0][:, None], self.domain_bounds[domain, 1][:, None]

        def popular(shape: tuple[int, ...]) -> np.ndarray:
            position = _sample_segments(by_slot, dlo, dhi, rng.random(shape))
            return np.where(position >= 0, self.slot_order[np.maximum(position, 0)], -1)

        length = rng.integers(LIST_LENGTH[0], LIST_LENGTH[1] + 1, n)
        valid = np.arange(width)[None, :] < length[:, None]
        source = rng.choice(len(SOURCE_SHARES), (n, width), p=SOURCE_SHARES)
        items = popular((n, width))

        near = np.full((n, width), -1, dtype=np.int64)
        for d in (RESTAURANT, GROCERY):
            mine = domain == d
            if self.near[d].shape[1] and mine.any():
                column = rng.integers(0, self.near[d].shape[1], (int(mine.sum()), width))
                merchant = self.near[d][users[mine][:, None], column]
                near[mine] = _sample_segments(
                    by_item, c.merchant_start[merchant], c.merchant_start[merchant + 1], rng.random(column.shape)
                )

        in_domain = SLOT_DOMAIN[None, :] == domain[:, None]
        taste = np.where(in_domain, self.estimated_taste[users], 0.0)
        cdf = np.cumsum(taste, axis=1)
        cdf /= cdf[:, -1:]
        slot = (cdf[:, None, :] < rng.random((n, width))[:, :, None]).sum(axis=2)
        slot = np.minimum(slot, len(SLOT_DOMAIN) - 1)
        personal = _sample_segments(by_slot, self.slot_bounds[slot], self.slot_bounds[slot + 1], rng.random((n, width)))
        personal = np.where(personal >= 0, self.slot_order[np.maximum(personal, 0)], -1)

        again = bought_before(users, domain, rng.random((n, width)))
        again[~has_history] = -1

        chosen = np.select([source == 1, source == 2, source == 3], [near, personal, again], items)
        items = np.where(chosen >= 0, chosen, items)
        valid &= items >= 0
        for _ in range(3):
            duplicate = _row_duplicates(items, valid)
            if not duplicate.any():
                break
            items = np.where(duplicate, popular((n, width)), items)
            valid &= items >= 0
        valid &= ~_row_duplicates(items, valid)
        order = np.argsort(~valid, axis=1, kind="stable")
        return np.take_along_axis(items, order, axis=1), np.take_along_axis(valid, order, axis=1)
