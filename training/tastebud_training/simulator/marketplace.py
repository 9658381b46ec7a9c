"""Marketplace simulator: `tastebud data generate`. Writes a complete, valid data directory (Parquet).

Restaurants and grocery stores in one city, their dishes and products, users with hidden tastes, and 60
days of sessions: impressions from an old production system, then views, clicks, carts and purchases drawn
from a ground-truth choice model with position bias and strong reorder habits. Items come with small photos
(``images/<item_id>.png``; about 10% have none) whose look follows their category and domain. Deterministic
by seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tastebud_training.data.atomic_dir import check_replaceable, write_dataset_dir
from tastebud_training.data.schema import EVENT_TYPES
from tastebud_training.simulator import event_log, photos, replenishment
from tastebud_training.simulator.catalog import DAY, GROCERY, Catalog, build_catalog
from tastebud_training.simulator.population import DIETS, Population, build_population
from tastebud_training.simulator.purchase_only import purchase_only_tables
from tastebud_training.simulator.summary import SimulationSummary, full_counts, purchase_only_counts

GENERATOR = "tastebud-simulator"
# A fixed calendar keeps output byte-identical across runs; weekdays and meal times are in UTC.
WINDOW_START = int(datetime(2025, 9, 1, tzinfo=UTC).timestamp())
OUT_OF_STOCK_SHARE = 0.03
CADENCE_STREAM = 22  # the replenishment cycles' own random stream (with the seed)


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("simulating days"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("days", total=total)
        yield lambda _day: bar.advance(task)


def _stock(catalog: Catalog, rng: np.random.Generator) -> pd.DataFrame:
    n = len(catalog.item_domain)
    out = rng.random(n) < OUT_OF_STOCK_SHARE
    if not out.any():
        out[rng.integers(n)] = True  # even a tiny catalog shows the stock filter something to do
    # Grocery shelves count units; restaurants cook to order and only mark dishes sold out.
    shelf = np.round(rng.lognormal(np.log(40), 0.8, n))
    quantity = np.where(catalog.item_domain == GROCERY, shelf, np.nan)
    return pd.DataFrame(
        {"item_id": catalog.items["item_id"], "in_stock": ~out, "quantity": np.where(out, 0.0, quantity)}
    )


def _interactions(log: event_log.Log, catalog: Catalog, population: Population) -> pd.DataFrame:
    events = log.events
    user_ids = population.users["user_id"].to_numpy(dtype=object)
    item_ids = catalog.items["item_id"].to_numpy(dtype=object)
    session_ids = np.array([f"s{s:07d}" for s in range(log.n_sessions)], dtype=object)
    request_ids = np.array([f"r{r:07d}" for r in range(log.n_requests)] + [""], dtype=object)  # [-1] = none
    return pd.DataFrame(
        {
            "user_id": user_ids[events.user],
            "item_id": item_ids[events.item],
            "event_type": np.array(EVENT_TYPES, dtype=object)[events.event],
            "timestamp": events.ts,
            "session_id": session_ids[events.session],
            "request_id": request_ids[events.request],
            "position": np.where(events.position > 0, events.position, np.nan),
            "quantity": np.where(events.quantity > 0, events.quantity, np.nan),
        }
    )


def _ground_truth(
    seed: int, users: int, items: int, days: int, population: Population, summary: dict[str, Any], images: bool,
    cadence: bool = False,
) -> dict[str, Any]:
    """Parameters and a summary of the hidden tastes; for people reading the data, never for models."""
    return {
        "generator": GENERATOR,
        "seed": seed,
        "params": {"users": users, "items": items, "days": days},
        "window": {
            "start": datetime.fromtimestamp(WINDOW_START, tz=UTC).isoformat(),
            "end": datetime.fromtimestamp(WINDOW_START + days * DAY, tz=UTC).isoformat(),
        },
        "choice_model": {
            "taste": event_log.BETA_TASTE,
            "latent": event_log.BETA_LATENT,
            "price": event_log.BETA_PRICE,
            "popularity": event_log.BETA_POP,
            "km_penalty_restaurant_grocery": event_log.KM_PENALTY.tolist(),
            "repeat_bonus": event_log.REPEAT_BONUS,
            "replenishment": replenishment.PARAMETERS if cadence else None,
            "examination": "1 / log2(1 + position)",
        },
        "hidden_tastes": {
            "diet_shares": {d or "none": round(float(np.mean(population.diet == i)), 4) for i, d in enumerate(DIETS)},
            "mean_grocery_share": round(float(population.grocery_share.mean()), 4),
            "activity_p50_p90_p99": [round(float(q), 3) for q in np.quantile(population.activity, [0.5, 0.9, 0.99])],
            "mean_price_sensitivity": round(float(population.price_sensitivity.mean()), 4),
        },
        "images": {
            "directory": photos.IMAGE_DIR,
            "format": f"PNG, {photos.IMAGE_SIZE}x{photos.IMAGE_SIZE} RGB",
            "missing_share": photos.MISSING_SHARE,
            "look": "background hue, food/packaging colour and stripe pattern by category; "
            "a plate for restaurant dishes, a box or bottle for groceries; size, position, light, texture per item",
        }
        if images
        else None,
        "summary": summary,
    }


def _check_options(users: int, items: int, days: int, purchase_only: bool, single_merchant: bool) -> None:
    if users < 1 or items < 10 or days < 1:
        raise ValueError("need users >= 1, items >= 10 and days >= 1")
    if single_merchant and not purchase_only:
        raise ValueError("single_merchant (--single-merchant) is a variant of the purchase_only (--purchase-only) log")


def _choose_photographed(catalog: Catalog, seed: int, images: bool) -> np.ndarray:
    """Which items get a photo (bool per item row); sets their ``image_uri``."""
    # Photos use their own random streams: the other tables of a seed are the same with or without them.
    item_ids = catalog.items["item_id"].to_numpy(dtype=object)
    has_image = photos.choose_photographed(len(item_ids), seed) if images else np.zeros(len(item_ids), bool)
    catalog.items["image_uri"] = np.where(has_image, [photos.image_uri(i) for i in item_ids], "").astype(object)
    return has_image


def _image_writer(catalog: Catalog, has_image: np.ndarray, seed: int) -> Callable[[Path], None]:
    """Writes the photos into the staging directory, so they are published with the tables or not at all."""

    def add_images(staging: Path) -> None:
        photos.write_images(
            staging / photos.IMAGE_DIR,
            catalog.items["item_id"].to_numpy(dtype=object)[has_image].tolist(),
            catalog.items["category"].to_numpy(dtype=object)[has_image].tolist(),
            catalog.item_slot[has_image],
            catalog.item_domain[has_image],
            seed,
        )

    return add_images


def _simulate_log(
    catalog: Catalog, population: Population, days: int, rng: np.random.Generator, seed: int, progress: bool,
    cadence: bool,
) -> event_log.Log:
    """The interaction log, with a progress bar by day if asked."""
    with _progress(progress, days) as advance:
        cycles = (replenishment.Replenishment.draw(catalog.item_domain, np.random.default_rng([seed, CADENCE_STREAM]))
                  if cadence else None)
        return event_log.simulate_log(catalog, population, WINDOW_START, days, rng, on_day=advance, cadence=cycles)


def generate(
    out: Path,
    *,
    users: int = 3000,
    items: int = 12000,
    seed: int = 7,
    days: int = 60,
    progress: bool = True,
    images: bool = True,
    purchase_only: bool = False,
    single_merchant: bool = False,
    cadence: bool = False,
) -> SimulationSummary:
    """Generate a marketplace data directory at ``out`` (replaced only if it holds generated data).

    Args:
        out: target directory; written atomically.
        users: number of users.
        items: number of items (merchants ~ items / 25).
        seed: random seed; the same seed gives byte-identical files.
        days: length of the interaction log.
        progress: show a progress bar on stderr.
        images: write a photo per item (about 10% get none) under ``images/`` and set ``image_uri``.
        purchase_only: write only what a real order log has (purchases; no text, images, impressions, stock,
            locations or profiles): simulator/purchase_only.py. Implies ``images=False``.
        single_merchant: with ``purchase_only``, one grocery store's log (grocery products only, one item per
            product).
        cadence: shoppers re-buy each item on their own cycle and restock what is due (replenishment.py); its
            cycles come from their own random stream, so without it a seed's files are unchanged.

    Returns:
        Counts of what was written.
    """
    _check_options(users, items, days, purchase_only, single_merchant)
    images = images and not purchase_only
    out = Path(out)
    check_replaceable(out)  # fail before the work, not after it
    began = time.perf_counter()
    rng = np.random.default_rng(seed)
    catalog = build_catalog(items, WINDOW_START, days, rng)
    population = build_population(users, WINDOW_START, days, rng)
    has_image = _choose_photographed(catalog, seed, images)
    log = _simulate_log(catalog, population, days, rng, seed, progress, cadence)
    stock = _stock(catalog, rng)
    interactions = _interactions(log, catalog, population)
    counts = full_counts(catalog, population, log, interactions, stock, has_image, cadence, WINDOW_START)
    tables = {"merchants": catalog.merchants, "items": catalog.items, "users": population.users,
              "interactions": interactions, "stock": stock}
    if purchase_only:
        tables = purchase_only_tables(tables, single_merchant=single_merchant)
        counts.update(purchase_only_counts(tables, WINDOW_START))
        counts["variant"] = "purchase_only_single_merchant" if single_merchant else "purchase_only"
    truth = _ground_truth(seed, users, items, days, population, counts, images, cadence)
    add_images = _image_writer(catalog, has_image, seed) if images else None
    write_dataset_dir(out, tables, "ground_truth.json", truth, extra=add_images)
    return SimulationSummary(out=out, seed=seed, days=days, seconds=time.perf_counter() - began, **counts)
