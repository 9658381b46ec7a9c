"""Simulated interaction log: users' choices among the lists the old production system showed, and reorders.

When users shop and what they are shown come from traffic.py. Sessions are simulated one day at a time
(vectorised over the day's sessions), so that what a user bought on earlier days drives reorders: food is
re-ordered, and models must be able to learn that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tastebud_training.simulator.catalog import DAY, GROCERY, RESTAURANT, SLOT_DOMAIN, Catalog
from tastebud_training.simulator.population import Population
from tastebud_training.simulator.replenishment import GROCERY_VISITS, RESTOCK_SHARE, Replenishment
from tastebud_training.simulator.traffic import OldSystem, Sessions, plan_sessions

IMPRESSION, VIEW, CLICK, ADD_TO_CART, PURCHASE = range(5)  # codes into schema.EVENT_TYPES

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


def _history_ranges(keys: np.ndarray, users: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    return np.searchsorted(keys, users * n_items), np.searchsorted(keys, (users + 1) * n_items)


class _Simulator:
    """Holds the catalog, population and running purchase history while days are simulated."""

    def __init__(self, catalog: Catalog, pop: Population, rng: np.random.Generator,
                 cadence: Replenishment | None = None) -> None:
        self.c, self.p, self.rng = catalog, pop, rng
        self.cadence = cadence
        self.n_items = len(catalog.item_domain)
        restaurant_slots = int((SLOT_DOMAIN == RESTAURANT).sum())
        self.slots_in_domain = np.array([restaurant_slots, len(SLOT_DOMAIN) - restaurant_slots])
        self.pop_weight = np.exp(catalog.item_log_pop)
        self.old_system = OldSystem(catalog, pop, rng)
        self.history = [np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)]  # sorted user*n_items+item keys

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

    def _utility(self, users: np.ndarray, items: np.ndarray, domain: np.ndarray, repeats: np.ndarray,
                 now: np.ndarray) -> np.ndarray:
        c, p = self.c, self.p
        due = (np.where(repeats > 0, self.cadence.utility(users[:, None] * self.n_items + items, now[:, None]), 0.0)
               if self.cadence is not None else 0.0)
        slot = c.item_slot[items]
        affinity = p.taste[users[:, None], slot] * self.slots_in_domain[c.item_domain[items]]
        km = c.km(p.home_lat[users][:, None], p.home_lon[users][:, None], c.item_merchant[items])
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
        return self._order_again(sessions, users, start, row, picks[row, col], col)

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
        return self._order_again(sessions, users, start, owner, key % self.n_items, position)

    def _order_again(self, sessions: np.ndarray, users: np.ndarray, start: np.ndarray, owner: np.ndarray,
                     item: np.ndarray, rank: np.ndarray) -> EventRows:
        """Purchase rows of items re-ordered without a list: no request or position; ``owner`` is each row's
        session (index into ``sessions``), ``rank`` its place in that order (items are added ten seconds apart)."""
        rng, n = self.rng, len(owner)
        return EventRows(
            user=users[owner],
            item=item,
            event=np.full(n, PURCHASE),
            ts=start[owner] + rng.integers(20, 120, n) + 10 * rank,
            session=sessions[owner],
            request=np.full(n, -1),
            position=np.zeros(n, dtype=np.int64),
            quantity=1 + (rng.random(n) < 0.2),
        )

    def _browse(self, sessions: np.ndarray, users: np.ndarray, domain: np.ndarray, start: np.ndarray,
                weight: np.ndarray, has_history: np.ndarray, first_request: int) -> tuple[list[EventRows], int, int]:
        """Sessions with a request: impressions, then the funnel. Returns rows, requests, repeat purchases."""
        rng, c = self.rng, self.c
        items, valid = self.old_system.impressions(users, domain, weight, has_history, self._from_history)
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

    def day(self, sessions: np.ndarray, plan: Sessions, first_request: int, window_start: int) -> _Day:
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


def simulate_log(catalog: Catalog, pop: Population, window_start: int, days: int, rng: np.random.Generator,
                 on_day: Callable[[int], None] | None = None, cadence: Replenishment | None = None) -> Log:
    """Simulate ``days`` days of sessions; ``on_day`` is called after each day (progress); ``cadence``: shoppers
    re-buy on per-item cycles (replenishment.py)."""
    plan = plan_sessions(pop, window_start, days, rng, GROCERY_VISITS if cadence is not None else 1.0)
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
