"""What a simulated merchant lists: a restaurant's menu of dishes or a grocery store's shelf of products.

Titles, categories, descriptions, diet flags and base prices are composed from lexicon's word lists; the catalog
(catalog.py) sets the merchants and the final prices.
"""

from __future__ import annotations

import re

import numpy as np

from tastebud_training.simulator import lexicon

# A vegan protein does not make a dish vegan when the rest of it has these.
_ANIMAL_WORDS = re.compile(
    r"cream|cheese|cheddar|parmesan|ricotta|mozzarella|butter|egg|béchamel|yoghurt|mayo|tzatziki|feta|milk|"
    r"gruyère|garlic sauce|raita|ghee"
)


def menu(cuisine: lexicon.Cuisine, n: int, rng: np.random.Generator, halal: bool) -> list[dict]:
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


def shelf(store: lexicon.StoreType, n: int, rng: np.random.Generator) -> list[dict]:
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
