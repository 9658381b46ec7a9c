"""Simulated catalog: merchants in one city and their dishes and grocery products, with latent popularity."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tastebud_training.simulator import lexicon

DAY = 86_400
RESTAURANT, GROCERY = 0, 1
RESTAURANT_SHARE = 0.65
NEW_MERCHANT_SHARE = 0.08
NEW_ITEM_SHARE = 0.02  # new dishes/products at merchants that were already open
ITEMS_PER_MERCHANT = 25
# Typical menu / shelf sizes: restaurants list fewer items than grocery stores.
MEAN_ITEMS = {RESTAURANT: 18.0, GROCERY: 38.0}
N_FACTORS = 8
# A vegan protein does not make a dish vegan when the rest of it has these.
_ANIMAL_WORDS = re.compile(
    r"cream|cheese|cheddar|parmesan|ricotta|mozzarella|butter|egg|béchamel|yoghurt|mayo|tzatziki|feta|milk|"
    r"gruyère|garlic sauce|raita|ghee"
)
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


def _menu(cuisine: lexicon.Cuisine, n: int, rng: np.random.Generator, halal: bool) -> list[dict]:
    """``n`` distinct dishes of a restaurant: title, category, description, flags and base price."""
    options: list[tuple[lexicon.Dish, lexicon.Protein | None]] = []
    for dish in cuisine.dishes:
        if dish.diet == "protein":
            options += [(dish, lexicon.PROTEINS[p]) for p in cuisine.proteins if p.lower() not in dish.base.lower()]
        else:
            options.append((dish, None))
    rows: list[dict] = []
    titles: set[str] = set()
    order = rng.permutation(len(options))
    attempt = 0
    while len(rows) < n:
        # A first pass over the menu as is; beyond it, variants with a modifier make the menu longer.
        dish, protein = options[order[attempt % len(options)]]
        use_modifier = attempt >= len(options) or rng.random() < 0.12
        attempt += 1
        course = dish.category or cuisine.name
        spice = dish.spice
        words = [f"{protein.name} {dish.base}" if protein else dish.base]
        if use_modifier and course not in ("dessert", "drinks"):
            if rng.random() < 0.35 and spice < 3:
                spice += 1
                words.insert(0, "Spicy")
            else:
                words.insert(0, lexicon.DISH_MODIFIERS[rng.integers(len(lexicon.DISH_MODIFIERS))])
        title = " ".join(words)
        if title in titles and attempt < 50 * n:
            continue  # past that, a long menu may repeat a title
        titles.add(title)
        meat = protein.meat if protein else dish.diet == "meat"
        vegan = (protein.vegan and not _ANIMAL_WORDS.search(dish.ingredients)) if protein else dish.diet == "vegan"
        tags = ["vegan", "vegetarian"] if vegan else [] if meat else ["vegetarian"]
        if meat and halal:
            tags.append("halal")
        if rng.random() < 0.12:
            tags.append("gluten-free")
        ingredients = dish.ingredients
        if protein and protein.name.lower() not in ingredients:
            ingredients = f"{protein.name.lower()}, {ingredients}"
        description = ingredients[0].upper() + ingredients[1:] + "."
        if tags:
            description += " " + ", ".join(tags).capitalize() + "."
        if course not in ("dessert", "drinks"):
            description += f" Spice: {lexicon.SPICE_WORDS[spice]}."
        price = dish.price + (protein.price_delta if protein else 0.0)
        rows.append(
            {
                "title": title,
                "category": course,
                "description": description,
                "meat": meat,
                "vegan": vegan,
                "price": price,
            }
        )
    return rows


def _shelf(store: lexicon.StoreType, n: int, rng: np.random.Generator) -> list[dict]:
    """``n`` distinct products of a grocery store."""
    categories = list(store.mix)
    weights = np.array([store.mix[c] for c in categories])
    weights /= weights.sum()
    rows: list[dict] = []
    titles: set[str] = set()
    attempt = 0
    while len(rows) < n:
        attempt += 1
        category = categories[rng.choice(len(categories), p=weights)]
        products = lexicon.PRODUCTS[category]
        product = products[rng.integers(len(products))]
        size, multiplier = product.sizes[rng.integers(len(product.sizes))]
        words = [product.name, size]
        if product.variants and rng.random() < 0.5:
            words.insert(0, product.variants[rng.integers(len(product.variants))])
        organic = category != "household" and rng.random() < store.organic_share
        if organic:
            words.insert(0, "Organic")
        if rng.random() < 0.3:
            words.insert(0, lexicon.BRANDS[rng.integers(len(lexicon.BRANDS))])
        title = " ".join(words)
        if title in titles and attempt < 50 * n:
            continue  # past that, a big shelf may repeat a title: real catalogs do too
        titles.add(title)
        diet = "Vegan." if product.vegan else "" if product.meat else "Vegetarian."
        description = f"{product.name}, {size}. {category.capitalize()}. {'Organic. ' if organic else ''}{diet}".strip()
        price = product.price * multiplier * (1.25 if organic else 1.0)
        rows.append(
            {
                "title": title,
                "category": category,
                "description": description,
                "meat": product.meat,
                "vegan": product.vegan,
                "price": price,
            }
        )
    return rows


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


def build_catalog(n_items: int, window_start: int, days: int, rng: np.random.Generator) -> Catalog:
    """Merchants (~n_items/25, 65% restaurants) and exactly ``n_items`` items."""
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
    merchant_created = _opening_times(n_merchants, is_new, window_start, days, rng, max_age_days=5 * 365)

    cuisine_p = np.array([c.weight for c in lexicon.CUISINES])
    store_p = np.array([s.weight for s in lexicon.STORE_TYPES])
    kind = np.where(
        domain == RESTAURANT,
        rng.choice(len(lexicon.CUISINES), n_merchants, p=cuisine_p / cuisine_p.sum()),
        rng.choice(len(lexicon.STORE_TYPES), n_merchants, p=store_p / store_p.sum()),
    )
    size_weight = np.array([MEAN_ITEMS[d] for d in domain]) * rng.lognormal(0, 0.35, n_merchants)
    counts = _allocate(n_items, size_weight, minimum=3)
    quality = rng.normal(0, 1, n_merchants)  # merchant-level pull of all its items
    price_level = rng.lognormal(0, 0.15, n_merchants)

    taken: set[str] = set()
    merchant_rows, item_rows = [], []
    for m in range(n_merchants):
        hood_name = lexicon.NEIGHBOURHOODS[hood[m]][0]
        if domain[m] == RESTAURANT:
            cuisine = lexicon.CUISINES[kind[m]]
            heads, tails, category = cuisine.name_heads, cuisine.name_tails, cuisine.name
            rows = _menu(cuisine, int(counts[m]), rng, halal=rng.random() < cuisine.halal_share)
        else:
            store = lexicon.STORE_TYPES[kind[m]]
            heads, tails, category = store.name_heads, store.name_tails, store.name
            rows = _shelf(store, int(counts[m]), rng)
            for row in rows:
                row["price"] *= store.price_level
        name = _unique_name(f"{heads[rng.integers(len(heads))]} {tails[rng.integers(len(tails))]}", hood_name, taken)
        merchant_rows.append({"name": name, "domain": ("restaurant", "grocery")[domain[m]], "category": category})
        for row in rows:
            row["merchant"] = m
        item_rows += rows
    n = len(item_rows)

    item_merchant = np.repeat(np.arange(n_merchants), counts)
    item_domain = domain[item_merchant]
    item_slot = np.array([_SLOT_INDEX[(d, r["category"])] for d, r in zip(item_domain, item_rows, strict=True)])
    price = np.array([r["price"] for r in item_rows]) * price_level[item_merchant] * rng.lognormal(0, 0.1, n)
    price = np.where(item_domain == RESTAURANT, np.clip(price, 1.5, 39.0), np.clip(price, 0.49, 24.99))
    price = np.where(item_domain == RESTAURANT, _round_price(price, RESTAURANT), _round_price(price, GROCERY))
    slot_median = pd.Series(price).groupby(item_slot).median()
    log_price_ratio = np.log(price / slot_median.loc[item_slot].to_numpy())

    # Popularity: Zipf-like over a random ranking, tilted by merchant quality.
    rank = rng.permutation(n) + 1
    log_pop = -0.8 * np.log(rank) + 0.6 * quality[item_merchant]
    log_pop -= log_pop.mean()
    # Latent taste vectors: items of one category share a centroid, so content predicts taste for cold items.
    centroids = rng.normal(0, 1 / np.sqrt(N_FACTORS), (len(SLOTS), N_FACTORS))
    factors = 0.6 * centroids[item_slot] + 0.8 * rng.normal(0, 1 / np.sqrt(N_FACTORS), (n, N_FACTORS))

    new_item = is_new[item_merchant] | (rng.random(n) < NEW_ITEM_SHARE)
    item_created = _opening_times(n, new_item, window_start, days, rng, max_age_days=2 * 365)
    item_created = np.where(
        is_new[item_merchant],
        merchant_created[item_merchant] + rng.integers(0, 1_800, n),
        np.maximum(item_created, merchant_created[item_merchant] + 1),
    )

    merchants = pd.DataFrame(
        {
            "merchant_id": [f"m{m:05d}" for m in range(n_merchants)],
            "name": [r["name"] for r in merchant_rows],
            "domain": [r["domain"] for r in merchant_rows],
            "category": [r["category"] for r in merchant_rows],
            "lat": lat,
            "lon": lon,
            "created_at": merchant_created,
        }
    )
    items = pd.DataFrame(
        {
            "item_id": [f"i{i:06d}" for i in range(n)],
            "merchant_id": merchants["merchant_id"].to_numpy()[item_merchant],
            "title": [r["title"] for r in item_rows],
            "category": [r["category"] for r in item_rows],
            "description": [r["description"] for r in item_rows],
            "price": price,
            "image_uri": [""] * n,  # filled by the simulator when it writes photos (simulator.photos)
            "created_at": item_created,
        }
    )
    return Catalog(
        merchants=merchants,
        items=items,
        merchant_domain=domain,
        merchant_lat=lat,
        merchant_lon=lon,
        merchant_start=np.concatenate([[0], np.cumsum(counts)]),
        item_merchant=item_merchant,
        item_domain=item_domain,
        item_slot=item_slot,
        item_meat=np.array([r["meat"] for r in item_rows]),
        item_vegan=np.array([r["vegan"] for r in item_rows]),
        item_log_price_ratio=log_price_ratio,
        item_log_pop=log_pop,
        item_factors=factors,
        item_created=item_created,
    )
