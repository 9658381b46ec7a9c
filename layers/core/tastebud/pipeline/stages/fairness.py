"""Stage 3 — fairness and diversity: boost new and less popular merchants, cap items per merchant, spread categories.

Boosts (new merchants, less popular merchants, new items) are in units of the candidates' score spread, so they
mean the same whatever the ranker's scale.
Selection is a lazy greedy pass (MMR-like), one screenful (``EXPOSURE_WINDOW`` places) at a time: an item's value
is its boosted score minus a penalty for every item of its category already on that screen, and items of a
merchant that reached the cap on that screen wait for the next one. Penalties only grow within a screen, so a
max-heap with re-checked stale entries gives the exact greedy order in O(n log n) per screen. Flags record what
changed an item's place (see ``reasons``).

A shopper's own basket is left alone: grocery items the user bought at least ``OWN_BASKET_PURCHASES`` times are
neither capped, penalised for their category, passed by a boosted item's boost, nor demoted by the floor (on a
one-store Instacart log the merchant cap reshuffled the user's own groceries and cost 1.6% NDCG@10). Once is
enough: an item bought once is often in the next basket, and protecting only items bought twice still cost 1.5%
Recall@20 on the Instacart half (next basket, 0.5239 -> 0.5163; nothing when once counts). They still count towards the
screen's merchant and category totals, so the explore places around them stay diverse.

Exposure floor: when ``exposure_floor`` is set, at least that share of every ``EXPOSURE_WINDOW`` consecutive places
of the page goes to emerging merchants (new ones, or the less popular part of the catalog's merchants). When a
window has fewer, the best emerging items below it replace its lowest-placed other items, pushed just below it.
"""

from __future__ import annotations

import heapq

import numpy as np

from tastebud.catalog import DOMAIN_CODE, Catalog
from tastebud.domain import Candidates, UserProfile
from tastebud.features.history import PURCHASES, REPEAT_COLUMNS
from tastebud.recommendation import RequestState
from tastebud.settings import ServingKnobs

_DAY = 86400.0

FLAG_NEW_MERCHANT = 1
FLAG_MERCHANT_CAP = 2
FLAG_MOVED_UP = 4
FLAG_EXPOSURE_FLOOR = 8
EXPOSURE_WINDOW = 20  # the floor holds in every 20 consecutive places (a screenful; the audit's top 20)
OWN_BASKET_PURCHASES = 1  # bought this often: part of the shopper's basket, not an exploration


def own_basket(catalog: Catalog, user: UserProfile | None, rows: np.ndarray) -> np.ndarray:
    """Mask of ``rows`` that are grocery items the user bought at least ``OWN_BASKET_PURCHASES`` times."""
    if user is None or not user.history_rows.size or user.history_repeat.shape != (user.history_rows.size,
                                                                                    len(REPEAT_COLUMNS)):
        return np.zeros(rows.size, dtype=bool)
    regular = user.history_rows[user.history_repeat[:, PURCHASES] >= OWN_BASKET_PURCHASES]
    return np.isin(rows, regular) & (catalog.item_domain[rows] == DOMAIN_CODE["grocery"])


def emerging_merchants(catalog: Catalog, knobs: ServingKnobs, merchants: np.ndarray, now: float) -> np.ndarray:
    """Mask of merchants the exposure floor protects: new, or in the least popular ``emerging_popularity_pct``."""
    age_days = (now - catalog.merchant_created_at[merchants]) / _DAY
    is_new = age_days < knobs.new_merchant_days  # NaN age compares False: unknown is not new
    return is_new | (catalog.merchant_popularity_pct[merchants] < knobs.emerging_popularity_pct)


class FairnessDiversity:
    def __init__(self, catalog: Catalog, knobs: ServingKnobs) -> None:
        self._catalog = catalog
        self._knobs = knobs

    def run(self, state: RequestState, candidates: Candidates, slots: int) -> Candidates:
        """Return all candidates re-ordered: the first ``slots`` chosen greedily, the rest by boosted score.
        ``state.user``'s own basket is left alone (module docstring)."""
        context, user = state.context, state.user
        n = len(candidates)
        if n == 0:
            return candidates
        catalog, knobs = self._catalog, self._knobs
        assert candidates.scores is not None
        base = candidates.scores.astype(np.float64)
        spread = float(base.std()) or 1.0
        merchants = catalog.item_merchant[candidates.rows]
        categories = catalog.item_category[candidates.rows]

        merchant_age = (context.now - catalog.merchant_created_at[merchants]) / _DAY
        is_new = merchant_age < knobs.new_merchant_days  # NaN age compares False: unknown is not new
        low_pop = 1.0 - catalog.merchant_popularity_pct[merchants]
        # New items have no history for the ranker to learn from: a boost buys them the exposure that creates it.
        item_age = (context.now - catalog.item_created_at[candidates.rows]) / _DAY
        new_item = (item_age >= 0) & (item_age < knobs.new_item_days)
        kept = own_basket(catalog, user, candidates.rows)
        boost = (knobs.new_merchant_boost * is_new + knobs.low_popularity_boost * low_pop
                 + knobs.new_item_boost * new_item)
        boosted = base + spread * boost * ~kept  # boosts order the explore places

        order, capped = _greedy(boosted.tolist(), merchants.tolist(), categories.tolist(), kept.tolist(),
                                min(slots, n), spread * knobs.category_penalty, knobs.max_per_merchant)
        flags = np.where(is_new, FLAG_NEW_MERCHANT, 0).astype(np.int8)
        flags[capped] |= FLAG_MERCHANT_CAP
        base_rank = np.empty(n, dtype=np.int64)
        base_rank[np.argsort(-base, kind="stable")] = np.arange(n)
        moved_up = base_rank[order] > np.arange(n)
        flags[order[moved_up & ~is_new[order]]] |= FLAG_MOVED_UP

        if knobs.exposure_floor > 0:
            # Per screenful: every consecutive EXPOSURE_WINDOW places of the page hold the floor, not just the page.
            emerging = emerging_merchants(catalog, knobs, merchants, context.now)
            for start in range(0, min(slots, n), EXPOSURE_WINDOW):
                order = np.concatenate([order[:start], _with_floor(
                    order[start:], emerging, kept, min(EXPOSURE_WINDOW, slots - start), knobs.exposure_floor,
                    flags)])
        out = candidates.take(order)
        out.scores = boosted[order].astype(np.float32)
        out.flags = flags[order]
        return out


def _with_floor(order: np.ndarray, emerging: np.ndarray, kept: np.ndarray, slots: int, floor: float,
                flags: np.ndarray) -> np.ndarray:
    """``order`` with at least ceil(floor x slots) emerging items on the page (as many as there are, and as many as
    the page has places that are not the user's own basket)."""
    page, rest = order[:slots], order[slots:]
    missing = int(np.ceil(floor * slots - 1e-9)) - int(emerging[page].sum())
    others = np.flatnonzero(~emerging[page] & ~kept[page])
    promoted = rest[emerging[rest]][:max(min(missing, others.size), 0)]
    if promoted.size == 0:
        return order
    demoted_at = others[others.size - promoted.size:]  # the page's lowest-placed other items
    flags[promoted] |= FLAG_EXPOSURE_FLOOR
    kept = np.delete(page, demoted_at)
    below = rest[~np.isin(rest, promoted)]
    return np.concatenate([kept, promoted, page[demoted_at], below])


def _greedy(values: list[float], merchants: list[int], categories: list[int], kept: list[bool], slots: int,
            penalty: float, cap: int) -> tuple[np.ndarray, list[int]]:
    """Greedy order under category penalties and a per-merchant cap, screenful by screenful; returns (order, capped).

    The cap and the category counts hold within each ``EXPOSURE_WINDOW`` consecutive places (what one screen
    shows), so a 200-item page is 10 diverse screens rather than one screen's rules stretched over 200 places.
    """
    remaining = sorted(range(len(values)), key=values.__getitem__, reverse=True)
    chosen: list[int] = []
    capped: list[int] = []
    while len(chosen) < slots and remaining:
        picked, deferred = _greedy_window(values, merchants, categories, kept, remaining,
                                          min(EXPOSURE_WINDOW, slots - len(chosen)), penalty, cap)
        chosen += picked
        capped += deferred
        taken = set(picked)
        remaining = [i for i in remaining if i not in taken]  # still by boosted score
    return np.asarray(chosen + remaining, dtype=np.int64), capped


def _greedy_window(values: list[float], merchants: list[int], categories: list[int], kept: list[bool],
                   order: list[int], slots: int, penalty: float, cap: int) -> tuple[list[int], list[int]]:
    """One screenful chosen greedily from ``order`` (descending boosted score); returns (chosen, capped).

    Lazy evaluation: candidates are visited in descending boosted score; one whose value dropped since (its
    category filled up) waits in a small heap with its current value. The best of the next unvisited item
    and the heap top is always the true best, because penalties only ever lower a value.
    """
    heap: list[tuple[float, int]] = []
    per_category: dict[int, int] = {}
    per_merchant: dict[int, int] = {}
    chosen: list[int] = []
    deferred: list[int] = []
    position = 0
    while len(chosen) < slots and (position < len(order) or heap):
        if position < len(order) and (not heap or values[order[position]] >= -heap[0][0]):
            i = order[position]
            position += 1
            bound = values[i]
        else:
            negative, i = heapq.heappop(heap)
            bound = -negative
        if kept[i]:  # the user's own basket: no cap, no category penalty (it still counts towards both)
            current = values[i]
        elif per_merchant.get(merchants[i], 0) >= cap:
            deferred.append(i)
            continue
        else:
            current = values[i] - penalty * per_category.get(categories[i], 0)
        if current < bound - 1e-12:
            heapq.heappush(heap, (-current, i))
            continue
        chosen.append(i)
        per_merchant[merchants[i]] = per_merchant.get(merchants[i], 0) + 1
        per_category[categories[i]] = per_category.get(categories[i], 0) + 1
    # Too few merchants to fill the screen under the cap: the capped items fill it, best first.
    fill = slots - len(chosen)
    return chosen + deferred[:fill], deferred[fill:] if fill > 0 else deferred
