"""Simulated catalog: merchants in one city and their dishes and grocery products, with latent popularity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tastebud_training.simulator import lexicon
from tastebud_training.simulator.listings import menu, shelf

DAY = 86_400
RESTAURANT, GROCERY = 0, 1
RESTAURANT_SHARE = 0.65
NEW_MERCHANT_SHARE = 0.08
NEW_ITEM_SHARE = 0.02  # new dishes/products at merchants that were already open
ITEMS_PER_MERCHANT = 25
# Typical menu / shelf sizes: restaurants list fewer items than grocery stores.
MEAN_ITEMS = {RESTAURANT: 18.0, GROCERY: 38.0}
N_FACTORS = 8
_KM_PER_DEG_LAT = 111.2
_KM_PER_DEG_LON = 111.2 * np.cos(np.radians(52.5))  # at the city's latitude; it is small enough to be flat
SLOTS = (*lexicon.RESTAURANT_CATEGORIES, *lexicon.GROCERY_CATEGORIES)
SLOT_DOMAIN = np.array([RESTAURANT] * len(lexicon.RESTAURANT_CATEGORIES) + [GROCERY] * len(lexicon.GROCERY_CATEGORIES))
_SLOT_INDEX = {(RESTAURANT, name): i for i, name in enumerate(lexicon.RESTAURANT_CATEGORIES)} | {
    (GROCERY, name): len(lexicon.RESTAURANT_CATEGORIES) + i for i, name in enumerate(lexicon.GROCERY_CATEGORIES)
}


@dataclass(frozen=True)
class Catalog:
    """Merchants and items as contract tables plus the per-item arrays the behaviour model needs.

    Item arrays are indexed by item row; items of one merchant are contiguous (sorted by merchant row).
    Slots are taste dimensions: restaurant categories first, then grocery categories (see SLOTS).
    """

    merchants: pd.DataFrame
    items: pd.DataFrame
    merchant_domain: np.ndarray
    merchant_lat: np.ndarray
    merchant_lon: np.ndarray
    merchant_start: np.ndarray  # first item row of each merchant; merchant_start[m + 1] ends it
    item_merchant: np.ndarray
    item_domain: np.ndarray
    item_slot: np.ndarray
    item_meat: np.ndarray
    item_vegan: np.ndarray
    item_log_price_ratio: np.ndarray  # log(price / median price of the item's slot)
    item_log_pop: np.ndarray  # latent popularity (log, mean 0)
    item_factors: np.ndarray  # (n_items, N_FACTORS) latent taste vector
    item_created: np.ndarray  # epoch seconds

    def km(self, lat: np.ndarray, lon: np.ndarray, merchant: np.ndarray) -> np.ndarray:
        """Distance in km from points (lat, lon) to merchants (rows), broadcast."""
        dlat = (self.merchant_lat[merchant] - lat) * _KM_PER_DEG_LAT
        dlon = (self.merchant_lon[merchant] - lon) * _KM_PER_DEG_LON
        return np.sqrt(dlat**2 + dlon**2)


def _allocate(total: int, weights: np.ndarray, minimum: int) -> np.ndarray:
    """Split ``total`` into integer counts proportional to ``weights``, each at least ``minimum``."""
    spare = total - minimum * len(weights)
    if spare < 0:
        raise ValueError(f"{total} items are too few for {len(weights)} merchants")
    share = spare * weights / weights.sum()
    counts = np.floor(share).astype(np.int64)
    remainder = spare - counts.sum()
    counts[np.argsort(-(share - counts), kind="stable")[:remainder]] += 1
    return counts + minimum


def _unique_name(name: str, neighbourhood: str, taken: set[str]) -> str:
    if name in taken:
        name = f"{name} {neighbourhood}"
    base, n = name, 2
    while name in taken:
        name, n = f"{base} {n}", n + 1
    taken.add(name)
    return name


def _round_price(price: np.ndarray, domain: int) -> np.ndarray:
    if domain == RESTAURANT:
        return np.round(price * 2) / 2  # menus say 12.50, 13.00
    return np.round(np.round(price * 10) / 10 - 0.01, 2)  # shelves say 2.49, 3.99


def _opening_times(
    n: int, new: np.ndarray, window_start: int, days: int, rng: np.random.Generator, max_age_days: float
) -> np.ndarray:
    """Creation times: before the window, or for ``new`` rows some hours before the start of a day inside it.

    Things created during the window exist from the start of their opening day on, so every event the
    simulator places on that day or later finds them existing.
    """
    created = window_start - rng.uniform(1.0, max_age_days, n) * DAY
    first, last = min(2, days - 1), max(min(2, days - 1) + 1, int(days * 0.85))
    open_day = rng.integers(first, last, n)
    opened = window_start + open_day * DAY - rng.uniform(3_600, 6 * 3_600, n)
    return np.floor(np.where(new, opened, created)).astype(np.int64)



@dataclass(frozen=True)
class _Merchants:
    """Per merchant row: what and where it is, when it opened, how many items it lists, how good and dear it is."""

    domain: np.ndarray  # RESTAURANT or GROCERY
    hood: np.ndarray  # index into lexicon.NEIGHBOURHOODS
    lat: np.ndarray
    lon: np.ndarray
    is_new: np.ndarray  # opened during the window
    created: np.ndarray  # epoch seconds
    kind: np.ndarray  # index into lexicon.CUISINES (restaurants) or lexicon.STORE_TYPES (grocery stores)
    counts: np.ndarray  # items listed
    quality: np.ndarray  # merchant-level pull of all its items
    price_level: np.ndarray  # multiplies the prices of all its items


def _draw_merchants(n_items: int, window_start: int, days: int, rng: np.random.Generator) -> _Merchants:
    """Merchants (~n_items/25, 65% restaurants) and how many of the ``n_items`` items each lists."""
    n_merchants = max(2, round(n_items / ITEMS_PER_MERCHANT))
    n_restaurants = min(n_merchants - 1, max(1, round(RESTAURANT_SHARE * n_merchants)))
    domain = np.array([RESTAURANT] * n_restaurants + [GROCERY] * (n_merchants - n_restaurants))
    domain = domain[rng.permutation(n_merchants)]

    # Where: clustered around neighbourhood centres, a little under a kilometre of spread each.
    hood_weights = np.linspace(1.6, 0.6, len(lexicon.NEIGHBOURHOODS))
    hood = rng.choice(len(lexicon.NEIGHBOURHOODS), n_merchants, p=hood_weights / hood_weights.sum())
    centres = np.array([(lat, lon) for _, lat, lon in lexicon.NEIGHBOURHOODS])
    lat = np.round(centres[hood, 0] + rng.normal(0, 0.008, n_merchants), 6)
    lon = np.round(centres[hood, 1] + rng.normal(0, 0.013, n_merchants), 6)

    n_new = max(1, round(NEW_MERCHANT_SHARE * n_merchants))
    is_new = np.zeros(n_merchants, dtype=bool)
    is_new[rng.choice(n_merchants, n_new, replace=False)] = True
    created = _opening_times(n_merchants, is_new, window_start, days, rng, max_age_days=5 * 365)

    cuisine_p = np.array([c.weight for c in lexicon.CUISINES])
    store_p = np.array([s.weight for s in lexicon.STORE_TYPES])
    kind = np.where(
        domain == RESTAURANT,
        rng.choice(len(lexicon.CUISINES), n_merchants, p=cuisine_p / cuisine_p.sum()),
        rng.choice(len(lexicon.STORE_TYPES), n_merchants, p=store_p / store_p.sum()),
    )
    size_weight = np.array([MEAN_ITEMS[d] for d in domain]) * rng.lognormal(0, 0.35, n_merchants)
    counts = _allocate(n_items, size_weight, minimum=3)
    quality = rng.normal(0, 1, n_merchants)
    price_level = rng.lognormal(0, 0.15, n_merchants)
    return _Merchants(domain, hood, lat, lon, is_new, created, kind, counts, quality, price_level)


def _list_items(merchants: _Merchants, rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    """Each merchant's row (name, domain, category) and its items' rows (merchant row, text, flags, base price)."""
    taken: set[str] = set()
    merchant_rows, item_rows = [], []
    for m in range(len(merchants.domain)):
        hood_name = lexicon.NEIGHBOURHOODS[merchants.hood[m]][0]
        if merchants.domain[m] == RESTAURANT:
            cuisine = lexicon.CUISINES[merchants.kind[m]]
            heads, tails, category = cuisine.name_heads, cuisine.name_tails, cuisine.name
            rows = menu(cuisine, int(merchants.counts[m]), rng, halal=rng.random() < cuisine.halal_share)
        else:
            store = lexicon.STORE_TYPES[merchants.kind[m]]
            heads, tails, category = store.name_heads, store.name_tails, store.name
            rows = shelf(store, int(merchants.counts[m]), rng)
            for row in rows:
                row["price"] *= store.price_level
        name = _unique_name(f"{heads[rng.integers(len(heads))]} {tails[rng.integers(len(tails))]}", hood_name, taken)
        domain_name = ("restaurant", "grocery")[merchants.domain[m]]
        merchant_rows.append({"name": name, "domain": domain_name, "category": category})
        for row in rows:
            row["merchant"] = m
        item_rows += rows
    return merchant_rows, item_rows


def _item_prices(
    base_price: np.ndarray, item_domain: np.ndarray, item_price_level: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Base prices at the merchant's price level with some noise, clipped and rounded as menus and shelves are."""
    price = base_price * item_price_level * rng.lognormal(0, 0.1, len(base_price))
    price = np.where(item_domain == RESTAURANT, np.clip(price, 1.5, 39.0), np.clip(price, 0.49, 24.99))
    return np.where(item_domain == RESTAURANT, _round_price(price, RESTAURANT), _round_price(price, GROCERY))


def _latent_appeal(
    item_slot: np.ndarray, item_quality: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Latent popularity (log, mean 0) and taste vectors (n_items, N_FACTORS) of the items."""
    n = len(item_slot)
    # Popularity: Zipf-like over a random ranking, tilted by merchant quality.
    rank = rng.permutation(n) + 1
    log_pop = -0.8 * np.log(rank) + 0.6 * item_quality
    log_pop -= log_pop.mean()
    # Latent taste vectors: items of one category share a centroid, so content predicts taste for cold items.
    centroids = rng.normal(0, 1 / np.sqrt(N_FACTORS), (len(SLOTS), N_FACTORS))
    factors = 0.6 * centroids[item_slot] + 0.8 * rng.normal(0, 1 / np.sqrt(N_FACTORS), (n, N_FACTORS))
    return log_pop, factors


def _item_created(
    merchants: _Merchants, item_merchant: np.ndarray, window_start: int, days: int, rng: np.random.Generator
) -> np.ndarray:
    """Creation times of the items: a new merchant's items come with it; no item is older than its merchant."""
    n = len(item_merchant)
    with_new_merchant = merchants.is_new[item_merchant]
    new_item = with_new_merchant | (rng.random(n) < NEW_ITEM_SHARE)
    created = _opening_times(n, new_item, window_start, days, rng, max_age_days=2 * 365)
    return np.where(
        with_new_merchant,
        merchants.created[item_merchant] + rng.integers(0, 1_800, n),
        np.maximum(created, merchants.created[item_merchant] + 1),
    )


def _tables(
    merchants: _Merchants,
    merchant_rows: list[dict],
    item_rows: list[dict],
    item_merchant: np.ndarray,
    price: np.ndarray,
    item_created: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The merchants and items contract tables."""
    merchant_table = pd.DataFrame(
        {
            "merchant_id": [f"m{m:05d}" for m in range(len(merchant_rows))],
            "name": [r["name"] for r in merchant_rows],
            "domain": [r["domain"] for r in merchant_rows],
            "category": [r["category"] for r in merchant_rows],
            "lat": merchants.lat,
            "lon": merchants.lon,
            "created_at": merchants.created,
        }
    )
    n = len(item_rows)
    item_table = pd.DataFrame(
        {
            "item_id": [f"i{i:06d}" for i in range(n)],
            "merchant_id": merchant_table["merchant_id"].to_numpy()[item_merchant],
            "title": [r["title"] for r in item_rows],
            "category": [r["category"] for r in item_rows],
            "description": [r["description"] for r in item_rows],
            "price": price,
            "image_uri": [""] * n,  # filled by the simulator when it writes photos (simulator.photos)
            "created_at": item_created,
        }
    )
    return merchant_table, item_table


def build_catalog(n_items: int, window_start: int, days: int, rng: np.random.Generator) -> Catalog:
    """Merchants (~n_items/25, 65% restaurants) and exactly ``n_items`` items."""
    merchants = _draw_merchants(n_items, window_start, days, rng)
    merchant_rows, item_rows = _list_items(merchants, rng)
    item_merchant = np.repeat(np.arange(len(merchants.domain)), merchants.counts)
    item_domain = merchants.domain[item_merchant]
    item_slot = np.array([_SLOT_INDEX[(d, r["category"])] for d, r in zip(item_domain, item_rows, strict=True)])
    base_price = np.array([r["price"] for r in item_rows])
    price = _item_prices(base_price, item_domain, merchants.price_level[item_merchant], rng)
    slot_median = pd.Series(price).groupby(item_slot).median()
    log_pop, factors = _latent_appeal(item_slot, merchants.quality[item_merchant], rng)
    item_created = _item_created(merchants, item_merchant, window_start, days, rng)
    merchant_table, item_table = _tables(merchants, merchant_rows, item_rows, item_merchant, price, item_created)
    return Catalog(
        merchants=merchant_table,
        items=item_table,
        merchant_domain=merchants.domain,
        merchant_lat=merchants.lat,
        merchant_lon=merchants.lon,
        merchant_start=np.concatenate([[0], np.cumsum(merchants.counts)]),
        item_merchant=item_merchant,
        item_domain=item_domain,
        item_slot=item_slot,
        item_meat=np.array([r["meat"] for r in item_rows]),
        item_vegan=np.array([r["vegan"] for r in item_rows]),
        item_log_price_ratio=np.log(price / slot_median.loc[item_slot].to_numpy()),
        item_log_pop=log_pop,
        item_factors=factors,
        item_created=item_created,
    )
