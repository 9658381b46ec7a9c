"""Simulated users: a public profile (the users table) and hidden tastes that drive their behaviour."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tastebud_training.simulator import lexicon
from tastebud_training.simulator.catalog import DAY, N_FACTORS, RESTAURANT, SLOT_DOMAIN, SLOTS

NEW_USER_SHARE = 0.10
STATED_SHARE = 0.60
DIETS = ("", "vegetarian", "vegan")
DIET_WEIGHTS = (0.84, 0.12, 0.04)
# Younger users react more to price.
AGE_PRICE_SENSITIVITY = (1.3, 1.1, 1.0, 0.9, 0.85, 0.9)
_MEAT_SLOTS = np.array([SLOTS.index("meat"), SLOTS.index("seafood")])
_DAIRY_SLOT = SLOTS.index("dairy")
_VEGAN_SLOT = SLOTS.index("vegan")


@dataclass(frozen=True)
class Population:
    """Users: the contract table plus hidden tastes (never written except as a summary).

    Attributes:
        users: contract table.
        taste: (n_users, n_slots) category affinity; the restaurant block and the grocery block each sum to 1.
        factors: (n_users, N_FACTORS) latent taste matched against item factors.
        diet: index into DIETS; vegetarians never buy meat or fish, vegans only vegan items.
        price_sensitivity: weight of log(price / typical price) in the utility.
        grocery_share: probability that a session is a grocery session.
        activity: relative session rate (heavy-tailed, mean 1).
        home_lat: home latitude.
        home_lon: home longitude.
        created: sign-up time, epoch seconds.
        stated: (n_users, n_slots) slots named in the user's stated preferences.
    """

    users: pd.DataFrame
    taste: np.ndarray
    factors: np.ndarray
    diet: np.ndarray
    price_sensitivity: np.ndarray
    grocery_share: np.ndarray
    activity: np.ndarray
    home_lat: np.ndarray
    home_lon: np.ndarray
    created: np.ndarray
    stated: np.ndarray


def _tastes(n: int, diet: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    restaurant = SLOT_DOMAIN == RESTAURANT
    taste = np.zeros((n, len(SLOTS)))
    # Sparse cuisine tastes (a few favourites), broader grocery needs.
    taste[:, restaurant] = rng.dirichlet(np.full(restaurant.sum(), 0.3), n)
    taste[:, ~restaurant] = rng.dirichlet(np.full((~restaurant).sum(), 0.8), n)
    plant = diet > 0
    taste[plant, _VEGAN_SLOT] += 0.3  # vegetarians and vegans like vegan kitchens more than most
    taste[np.ix_(plant, _MEAT_SLOTS)] = 0.0
    taste[diet == 2, _DAIRY_SLOT] *= 0.2
    for block in (restaurant, ~restaurant):
        taste[:, block] /= taste[:, block].sum(axis=1, keepdims=True)
    return taste


def _stated(taste: np.ndarray, diet: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Stated preferences of ~60% of users: their diet and 1-3 cuisines, mostly their true favourites."""
    n = len(taste)
    stated = np.zeros_like(taste, dtype=bool)
    texts = [""] * n
    # The "vegan" kitchen is left to the diet word, so that a stated "vegan" always means the diet.
    restaurant = np.flatnonzero((SLOT_DOMAIN == RESTAURANT) & (np.arange(len(SLOTS)) != _VEGAN_SLOT))
    says = rng.random(n) < STATED_SHARE
    n_named = rng.integers(1, 4, n)
    top = restaurant[np.argsort(-taste[:, restaurant], axis=1, kind="stable")]
    random_pick = rng.choice(restaurant, (n, 3))
    wrong = rng.random((n, 3)) < 0.15  # people misreport or change their minds
    for u in np.flatnonzero(says):
        named = np.where(wrong[u], random_pick[u], top[u, :3])[: n_named[u]]
        stated[u, named] = True
        words = ([DIETS[diet[u]]] if diet[u] else []) + [SLOTS[s] for s in dict.fromkeys(named.tolist())]
        texts[u] = ";".join(words)
    return stated, texts


def build_population(n_users: int, window_start: int, days: int, rng: np.random.Generator) -> Population:
    """``n_users`` users with homes near the city's neighbourhoods; ~10% sign up during the window."""
    age = rng.choice(len(lexicon.AGE_BANDS), n_users, p=lexicon.AGE_BAND_WEIGHTS)
    gender = rng.choice(len(lexicon.GENDERS), n_users, p=lexicon.GENDER_WEIGHTS)
    diet = rng.choice(len(DIETS), n_users, p=DIET_WEIGHTS)
    hood_weights = np.linspace(1.3, 0.8, len(lexicon.NEIGHBOURHOODS))
    hood = rng.choice(len(lexicon.NEIGHBOURHOODS), n_users, p=hood_weights / hood_weights.sum())
    centres = np.array([(lat, lon) for _, lat, lon in lexicon.NEIGHBOURHOODS])
    home_lat = np.round(centres[hood, 0] + rng.normal(0, 0.011, n_users), 5)
    home_lon = np.round(centres[hood, 1] + rng.normal(0, 0.018, n_users), 5)

    new = rng.random(n_users) < NEW_USER_SHARE
    signup_day = rng.integers(1, max(2, days - 2), n_users)
    created = np.where(
        new,
        window_start + signup_day * DAY + rng.integers(0, DAY, n_users),
        window_start - rng.integers(DAY, 3 * 365 * DAY, n_users),
    ).astype(np.int64)

    taste = _tastes(n_users, diet, rng)
    stated, preferences = _stated(taste, diet, rng)
    price_sensitivity = rng.lognormal(0, 0.35, n_users) * np.array(AGE_PRICE_SENSITIVITY)[age]
    grocery_share = rng.beta(2.0, 4.0, n_users)
    activity = rng.lognormal(0, 1.0, n_users)
    activity /= activity.mean()
    factors = rng.normal(0, 1 / np.sqrt(N_FACTORS), (n_users, N_FACTORS))

    users = pd.DataFrame(
        {
            "user_id": [f"u{u:05d}" for u in range(n_users)],
            "created_at": created,
            "age_band": np.array(lexicon.AGE_BANDS)[age],
            "gender": np.array(lexicon.GENDERS)[gender],
            "home_lat": home_lat,
            "home_lon": home_lon,
            "preferences": preferences,
        }
    )
    return Population(
        users=users,
        taste=taste,
        factors=factors,
        diet=diet,
        price_sensitivity=price_sensitivity,
        grocery_share=grocery_share,
        activity=activity,
        home_lat=home_lat,
        home_lon=home_lon,
        created=created,
        stated=stated,
    )
