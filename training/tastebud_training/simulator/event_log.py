"""Simulated interaction log: sessions, the old production system's impressions, and users' choices.

Sessions are simulated one day at a time (vectorised over the day's sessions), so that what a user bought
on earlier days drives reorders: food is re-ordered, and models must be able to learn that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tastebud_training.simulator.catalog import DAY, GROCERY, RESTAURANT, SLOT_DOMAIN, Catalog
from tastebud_training.simulator.population import Population
from tastebud_training.simulator.replenishment import GROCERY_VISITS, RESTOCK_SHARE, Replenishment

IMPRESSION, VIEW, CLICK, ADD_TO_CART, PURCHASE = range(5)  # codes into schema.EVENT_TYPES

SESSIONS_PER_USER_DAY = 0.13  # about 8 sessions per average user in 60 days; heavy users many more
LIST_LENGTH = (10, 16)  # impressions per request, inclusive
# Where the old production system took the impressions from: popular, nearby, personalised, bought before.
SOURCE_SHARES = (0.36, 0.25, 0.31, 0.08)
N_NEAR = 10  # merchants a user counts as nearby, per domain
DIRECT_REORDER = 0.07  # sessions that go straight to "order again" when the user has bought in the domain

# Ground-truth choice model (logit scale).
BETA_TASTE = 0.8
BETA_LATENT = 2.0
BETA_PRICE = 1.0
BETA_POP = 0.35
KM_PENALTY = np.array([0.30, 0.10])  # per km, by domain: hot food must travel; groceries less so
REPEAT_BONUS = 1.5
REPEAT_PER_LOG_COUNT = 0.5
FORBIDDEN = -30.0  # diet violation: never chosen
NOISE_SD = 0.5
CLICK_BIAS = -1.6
CART_BIAS = -0.6
CHECKOUT = 0.85
_KM_PER_DEG_LAT = 111.2
_KM_PER_DEG_LON = 111.2 * np.cos(np.radians(52.5))


@dataclass(frozen=True)
class _Sessions:
    user: np.ndarray
    domain: np.ndarray
    start: np.ndarray
    day: np.ndarray


class EventRows(NamedTuple):
    """Event rows as parallel int64 arrays; request is -1 and position/quantity 0 where there is none."""

    user: np.ndarray
    item: np.ndarray
    event: np.ndarray  # index into schema.EVENT_TYPES
    ts: np.ndarray
    session: np.ndarray
    request: np.ndarray
    position: np.ndarray  # 1-based
    quantity: np.ndarray

    @classmethod
    def concat(cls, parts: list[EventRows]) -> EventRows:
        return cls(
            *(
                np.concatenate([np.asarray(p[k], dtype=np.int64) for p in parts] + [np.empty(0, np.int64)])
                for k in range(len(cls._fields))
            )
        )


@dataclass(frozen=True)
class Log:
    """The simulated log: events in time order, and counts the summary reports."""

    events: EventRows
    n_sessions: int
    n_requests: int
    repeat_purchases: int


@dataclass(frozen=True)
class _Day:
    rows: list[EventRows]
    requests: int
    repeat_purchases: int


def _plan_sessions(pop: Population, window_start: int, days: int, rng: np.random.Generator,
                   grocery_visits: float = 1.0) -> _Sessions:
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
    return _Sessions(user, domain, start, day)


def _sample_segments(cumulative: np.ndarray, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Weighted draw of one position in [lo, hi) per query; -1 where the segment has no weight."""
    lo, hi = np.broadcast_arrays(lo, hi)
    base = np.where(lo > 0, cumulative[np.maximum(lo - 1, 0)], 0.0)
    top = np.where(hi > lo, cumulative[np.maximum(hi - 1, 0)], base)
    mass = top - base
    position = np.searchsorted(cumulative, base + u * mass, side="right")
    position = np.clip(position, lo, np.maximum(hi - 1, lo))
    return np.where(mass > 0, position, -1)


def _history_ranges(keys: np.ndarray, users: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    return np.searchsorted(keys, users * n_items), np.searchsorted(keys, (users + 1) * n_items)


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


class _Simulator:
    """Holds the catalog, population and running purchase history while days are simulated."""

    def __init__(self, catalog: Catalog, pop: Population, rng: np.random.Generator,
                 cadence: Replenishment | None = None) -> None:
        self.c, self.p, self.rng = catalog, pop, rng
        self.cadence = cadence
        self.n_items = len(catalog.item_domain)
        self.slot_order = np.argsort(catalog.item_slot, kind="stable")
        self.slot_bounds = np.searchsorted(catalog.item_slot[self.slot_order], np.arange(len(SLOT_DOMAIN) + 1))
        restaurant_slots = int((SLOT_DOMAIN == RESTAURANT).sum())
        self.domain_bounds = np.array(
            [[0, self.slot_bounds[restaurant_slots]], [self.slot_bounds[restaurant_slots], self.n_items]]
        )
        self.slots_in_domain = np.array([restaurant_slots, len(SLOT_DOMAIN) - restaurant_slots])
        self.pop_weight = np.exp(catalog.item_log_pop)
        self.near = [self._nearest(d) for d in (RESTAURANT, GROCERY)]
        # The old system's idea of a user's taste: partly right, partly the stated preferences, partly nothing.
        stated = pop.stated / np.maximum(pop.stated.sum(axis=1, keepdims=True), 1)
        self.estimated_taste = 0.55 * pop.taste + 0.25 * stated + 0.20 / len(SLOT_DOMAIN)
        self.history = [np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)]  # sorted user*n_items+item keys

    def _nearest(self, domain: int) -> np.ndarray:
        merchants = np.flatnonzero(self.c.merchant_domain == domain)
        if len(merchants) == 0:
            return np.empty((len(self.p.home_lat), 0), dtype=np.int64)
        km = self._km(self.p.home_lat[:, None], self.p.home_lon[:, None], merchants[None, :])
        nearest = np.argsort(km, axis=1, kind="stable")[:, :N_NEAR]
        return merchants[nearest]

    def _km(self, lat: np.ndarray, lon: np.ndarray, merchant: np.ndarray) -> np.ndarray:
        dlat = (self.c.merchant_lat[merchant] - lat) * _KM_PER_DEG_LAT
        dlon = (self.c.merchant_lon[merchant] - lon) * _KM_PER_DEG_LON
        return np.sqrt(dlat**2 + dlon**2)

    def _repeat_counts(self, users: np.ndarray, items: np.ndarray, domain: np.ndarray) -> np.ndarray:
        keys = users * self.n_items + items
        counts = np.zeros(keys.shape, dtype=np.int64)
        for d in (RESTAURANT, GROCERY):
            history, mine = self.history[d], domain == d
            counts[mine] = np.searchsorted(history, keys[mine], "right") - np.searchsorted(history, keys[mine], "left")
        return counts

    def _from_history(self, users: np.ndarray, domain: np.ndarray, u: np.ndarray) -> np.ndarray:
        """An item the user bought before in the domain, weighted by how often; -1 without history."""
        picked = np.full(u.shape, -1, dtype=np.int64)
        for d in (RESTAURANT, GROCERY):
            mine = domain == d
            lo, hi = _history_ranges(self.history[d], users[mine], self.n_items)
            lo, hi = np.broadcast_to(lo[:, None], u[mine].shape), np.broadcast_to(hi[:, None], u[mine].shape)
            index = lo + np.floor(u[mine] * (hi - lo)).astype(np.int64)
            keys = self.history[d][np.minimum(index, len(self.history[d]) - 1)] if len(self.history[d]) else index
            picked[mine] = np.where(hi > lo, keys % self.n_items, -1)
        return picked

    def _impressions(
        self, users: np.ndarray, domain: np.ndarray, weight: np.ndarray, has_history: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The old system's lists: items (n, width) and a validity mask, compacted to the left."""
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

        again = self._from_history(users, domain, rng.random((n, width)))
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

    def _utility(self, users: np.ndarray, items: np.ndarray, domain: np.ndarray, repeats: np.ndarray,
                 now: np.ndarray) -> np.ndarray:
        c, p = self.c, self.p
        due = (np.where(repeats > 0, self.cadence.utility(users[:, None] * self.n_items + items, now[:, None]), 0.0)
               if self.cadence is not None else 0.0)
        slot = c.item_slot[items]
        affinity = p.taste[users[:, None], slot] * self.slots_in_domain[c.item_domain[items]]
        km = self._km(p.home_lat[users][:, None], p.home_lon[users][:, None], c.item_merchant[items])
        diet = p.diet[users][:, None]
        forbidden = ((diet == 1) & c.item_meat[items]) | ((diet == 2) & ~c.item_vegan[items])
        utility = (
            BETA_TASTE * np.log(affinity + 0.05)
            + BETA_LATENT * np.einsum("sd,swd->sw", p.factors[users], c.item_factors[items])
            - BETA_PRICE * p.price_sensitivity[users][:, None] * c.item_log_price_ratio[items]
            + BETA_POP * c.item_log_pop[items]
            - KM_PENALTY[domain][:, None] * km
            + np.where(repeats > 0, REPEAT_BONUS + REPEAT_PER_LOG_COUNT * np.log(np.maximum(repeats, 1)), 0.0)
            + due
            + self.rng.normal(0.0, NOISE_SD, items.shape)
        )
        return np.where(forbidden, FORBIDDEN, utility)

    def _direct_reorders(
        self, sessions: np.ndarray, users: np.ndarray, domain: np.ndarray, start: np.ndarray
    ) -> EventRows:
        """Sessions that go straight to "order again": one or two favourites, no impressions."""
        rng = self.rng
        picks = self._from_history(users, domain, rng.random((len(users), 2)))
        second = (rng.random(len(users)) < 0.35) & (picks[:, 1] != picks[:, 0])
        picks[:, 1] = np.where(second, picks[:, 1], -1)
        row, col = np.nonzero(picks >= 0)
        return EventRows(
            user=users[row],
            item=picks[row, col],
            event=np.full(len(row), PURCHASE),
            ts=start[row] + rng.integers(20, 120, len(row)) + 10 * col,
            session=sessions[row],
            request=np.full(len(row), -1),
            position=np.zeros(len(row), dtype=np.int64),
            quantity=1 + (rng.random(len(row)) < 0.2),
        )

    def _restock(self, sessions: np.ndarray, users: np.ndarray, domain: np.ndarray, start: np.ndarray,
                 cadence: Replenishment) -> EventRows:
        """Restock sessions (--cadence): the bought-before items of the domain that are due (replenishment.py)."""
        rng = self.rng
        owners, keys = [], []
        for d in (RESTAURANT, GROCERY):
            mine = np.flatnonzero(domain == d)
            lo, hi = _history_ranges(self.history[d], users[mine], self.n_items)
            length = hi - lo
            owner = np.repeat(mine, length)
            offset = np.arange(owner.size) - np.repeat(np.cumsum(length) - length, length)
            key = self.history[d][np.repeat(lo, length) + offset]
            distinct = np.r_[True, (key[1:] != key[:-1]) | (owner[1:] != owner[:-1])] if key.size else key.astype(bool)
            owners.append(owner[distinct])
            keys.append(key[distinct])
        owner, key = np.concatenate(owners), np.concatenate(keys)
        owner, key = cadence.restock(key, owner, start[owner], rng.random(owner.size))
        position = np.arange(owner.size) - np.searchsorted(owner, owner)  # 0, 1, ... within a session
        return EventRows(
            user=users[owner],
            item=key % self.n_items,
            event=np.full(owner.size, PURCHASE),
            ts=start[owner] + rng.integers(20, 120, owner.size) + 10 * position,
            session=sessions[owner],
            request=np.full(owner.size, -1),
            position=np.zeros(owner.size, dtype=np.int64),
            quantity=1 + (rng.random(owner.size) < 0.2),
        )

    def _browse(
        self,
        sessions: np.ndarray,
        users: np.ndarray,
        domain: np.ndarray,
        start: np.ndarray,
        weight: np.ndarray,
        has_history: np.ndarray,
        first_request: int,
    ) -> tuple[list[EventRows], int, int]:
        """Sessions with a request: impressions, then the funnel. Returns rows, requests, repeat purchases."""
        rng, c = self.rng, self.c
        items, valid = self._impressions(users, domain, weight, has_history)
        keep = valid.any(axis=1)  # a domain with nothing open yet shows nothing
        sessions, users, domain, start, items, valid = (a[keep] for a in (sessions, users, domain, start, items, valid))
        n = len(users)
        request = first_request + np.arange(n)
        items = np.where(valid, items, 0)
        repeats = self._repeat_counts(users[:, None], items, np.broadcast_to(domain[:, None], items.shape))
        utility = self._utility(users, items, domain, repeats, start)
        position = np.cumsum(valid, axis=1) * valid
        examined = valid & (rng.random(items.shape) < 1.0 / np.log2(1.0 + np.maximum(position, 1)))
        clicked = examined & (rng.random(items.shape) < 1 / (1 + np.exp(-(utility + CLICK_BIAS))))
        carted = clicked & (rng.random(items.shape) < 1 / (1 + np.exp(-(utility + CART_BIAS))))
        # One order per session, from one merchant: the one of the best item in the cart.
        best = np.argmax(np.where(carted, utility, -np.inf), axis=1)
        best_merchant = c.item_merchant[items[np.arange(n), best]]
        checkout = carted.any(axis=1) & (rng.random(n) < CHECKOUT)
        bought = carted & (c.item_merchant[items] == best_merchant[:, None]) & checkout[:, None]

        view_ts = start[:, None] + 2 * position + rng.integers(0, 2, items.shape)
        click_ts = view_ts + rng.integers(3, 20, items.shape)
        cart_ts = click_ts + rng.integers(5, 60, items.shape)
        order_ts = np.max(np.where(carted, cart_ts, 0), axis=1) + rng.integers(30, 240, n)
        quantity = np.where(
            domain[:, None] == GROCERY, 1 + rng.poisson(0.4, items.shape), 1 + (rng.random(items.shape) < 0.15)
        )
        funnel = (
            (IMPRESSION, valid, np.broadcast_to(start[:, None], items.shape)),
            (VIEW, examined, view_ts),
            (CLICK, clicked, click_ts),
            (ADD_TO_CART, carted, cart_ts),
            (PURCHASE, bought, np.broadcast_to(order_ts[:, None], items.shape)),
        )
        rows = []
        for event, mask, times in funnel:
            row, col = np.nonzero(mask)
            rows.append(
                EventRows(
                    user=users[row],
                    item=items[row, col],
                    event=np.full(len(row), event),
                    ts=times[row, col],
                    session=sessions[row],
                    request=request[row],
                    position=position[row, col],
                    quantity=quantity[row, col] if event == PURCHASE else np.zeros(len(row), dtype=np.int64),
                )
            )
        return rows, n, int((bought & (repeats > 0)).sum())

    def day(self, sessions: np.ndarray, plan: _Sessions, first_request: int, window_start: int) -> _Day:
        """Simulate one day's sessions and remember what was bought."""
        c = self.c
        day = int(plan.day[sessions[0]])
        weight = self.pop_weight * (c.item_created < window_start + day * DAY)  # only what already exists
        users, domain, start = plan.user[sessions], plan.domain[sessions], plan.start[sessions]
        has_history = np.zeros(len(sessions), dtype=bool)
        for d in (RESTAURANT, GROCERY):
            lo, hi = _history_ranges(self.history[d], users[domain == d], self.n_items)
            has_history[domain == d] = hi > lo
        if self.cadence is None:
            direct = has_history & (self.rng.random(len(sessions)) < DIRECT_REORDER)
            reorders = self._direct_reorders(sessions[direct], users[direct], domain[direct], start[direct])
        else:
            share = np.where(domain == GROCERY, RESTOCK_SHARE[GROCERY], RESTOCK_SHARE[RESTAURANT])
            direct = has_history & (self.rng.random(len(sessions)) < share)
            reorders = self._restock(sessions[direct], users[direct], domain[direct], start[direct], self.cadence)
        # With cadence a grocery restock is a weekly shop: the shopper also browses for something new.
        browse = ~direct | ((domain == GROCERY) & (self.cadence is not None))
        rows, n_requests, repeats = self._browse(
            sessions[browse], users[browse], domain[browse], start[browse], weight, has_history[browse], first_request
        )
        bought = EventRows.concat([reorders, rows[-1]])
        keys = bought.user * self.n_items + bought.item
        if self.cadence is not None:
            self.cadence.remember(keys, bought.ts)
        for d in (RESTAURANT, GROCERY):
            self.history[d] = np.sort(np.concatenate([self.history[d], keys[c.item_domain[bought.item] == d]]))
        return _Day([reorders, *rows], n_requests, repeats + len(reorders.user))


def simulate_log(
    catalog: Catalog,
    pop: Population,
    window_start: int,
    days: int,
    rng: np.random.Generator,
    on_day: Callable[[int], None] | None = None,
    cadence: Replenishment | None = None,
) -> Log:
    """Simulate ``days`` days of sessions; ``on_day`` is called after each day (progress); ``cadence``: shoppers
    re-buy on per-item cycles (replenishment.py)."""
    plan = _plan_sessions(pop, window_start, days, rng, GROCERY_VISITS if cadence is not None else 1.0)
    sim = _Simulator(catalog, pop, rng, cadence)
    bounds = np.searchsorted(plan.day, np.arange(days + 1))
    rows: list[EventRows] = []
    n_requests = repeat_purchases = 0
    for day in range(days):
        sessions = np.arange(bounds[day], bounds[day + 1])
        if len(sessions):
            result = sim.day(sessions, plan, n_requests, window_start)
            rows += result.rows
            n_requests += result.requests
            repeat_purchases += result.repeat_purchases
        if on_day is not None:
            on_day(day)
    events = EventRows.concat(rows)
    order = np.lexsort((events.position, events.event, events.session, events.ts))
    return Log(
        events=EventRows(*(column[order] for column in events)),
        n_sessions=len(plan.user),
        n_requests=n_requests,
        repeat_purchases=repeat_purchases,
    )
