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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tastebud_training.data.atomic_dir import check_replaceable, write_dataset_dir
from tastebud_training.data.schema import EVENT_TYPES, POSITIVE_EVENTS
from tastebud_training.simulator import event_log, photos, replenishment
from tastebud_training.simulator.catalog import DAY, GROCERY, Catalog, build_catalog
from tastebud_training.simulator.population import DIETS, Population, build_population
from tastebud_training.simulator.purchase_only import purchase_only_tables

GENERATOR = "tastebud-simulator"
# A fixed calendar keeps output byte-identical across runs; weekdays and meal times are in UTC.
WINDOW_START = int(datetime(2025, 9, 1, tzinfo=UTC).timestamp())
OUT_OF_STOCK_SHARE = 0.03
CADENCE_STREAM = 22  # the replenishment cycles' own random stream (with the seed)


@dataclass(frozen=True)
class SimulationSummary:
    """What was generated (the CLI prints ``rows()``)."""

    out: Path
    seed: int
    days: int
    users: int
    new_users: int
    merchants: int
    new_merchants: int
    items: int
    new_items: int
    interactions: int
    sessions: int
    requests: int
    positives: int
    repeat_purchase_share: float
    out_of_stock: int
    seconds: float
    event_counts: dict[str, int] = field(default_factory=dict)
    images: int = 0  # item photos written
    items_without_image: int = 0
    variant: str = "full"  # "full", "purchase_only" or "purchase_only_single_merchant" (purchase_only.py)
    cadence: bool = False  # shoppers re-buy on per-item cycles (replenishment.py)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "out": str(self.out)}

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs for a two-column table."""
        rows = [
            ("output", str(self.out)),
            ("variant", self.variant + (" with replenishment cadence" if self.cadence else "")),
            ("seed / days", f"{self.seed} / {self.days}"),
            ("merchants", f"{self.merchants:,} ({self.new_merchants:,} opened during the window)"),
            ("items", f"{self.items:,} ({self.new_items:,} created during the window)"),
            ("users", f"{self.users:,} ({self.new_users:,} signed up during the window)"),
            ("sessions / requests", f"{self.sessions:,} / {self.requests:,}"),
            ("interactions", f"{self.interactions:,}"),
        ]
        rows += [(f"  {event}", f"{self.event_counts.get(event, 0):,}") for event in EVENT_TYPES]
        rows += [
            ("positives", f"{self.positives:,}"),
            ("repeat purchases", f"{self.repeat_purchase_share:.0%}"),
            ("out of stock", f"{self.out_of_stock:,} items"),
            ("images", f"{self.images:,} ({self.items_without_image:,} items without)" if self.images else "none"),
            ("time", f"{self.seconds:.1f} s"),
        ]
        return rows


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


def _purchase_only_counts(tables: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The summary's counts for the tables a purchase-only variant writes (impression-era counts become 0)."""
    purchases = tables["interactions"]
    items = tables["items"]
    return {
        "merchants": len(tables["merchants"]),
        "new_merchants": 0,  # merchants carry no opening date in this variant
        "items": len(items),
        "new_items": int((items["created_at"] >= WINDOW_START).sum()),
        "interactions": len(purchases),
        "sessions": 0,
        "requests": 0,
        "positives": len(purchases),
        # A purchase of a (user, item) pair bought before: after the single store merges twin products this
        # is higher than the full simulation's share.
        "repeat_purchase_share": round(float(purchases.duplicated(["user_id", "item_id"]).mean()), 4)
        if len(purchases) else 0.0,
        "out_of_stock": 0,
        "event_counts": {event: len(purchases) if event == "purchase" else 0 for event in EVENT_TYPES},
        "images": 0,
        "items_without_image": len(items),
    }


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
    if users < 1 or items < 10 or days < 1:
        raise ValueError("need users >= 1, items >= 10 and days >= 1")
    if single_merchant and not purchase_only:
        raise ValueError("single_merchant (--single-merchant) is a variant of the purchase_only (--purchase-only) log")
    images = images and not purchase_only
    out = Path(out)
    check_replaceable(out)  # fail before the work, not after it
    began = time.perf_counter()
    rng = np.random.default_rng(seed)
    catalog = build_catalog(items, WINDOW_START, days, rng)
    population = build_population(users, WINDOW_START, days, rng)
    # Photos use their own random streams: the other tables of a seed are the same with or without them.
    item_ids = catalog.items["item_id"].to_numpy(dtype=object)
    has_image = photos.choose_photographed(len(item_ids), seed) if images else np.zeros(len(item_ids), bool)
    catalog.items["image_uri"] = np.where(has_image, [photos.image_uri(i) for i in item_ids], "").astype(object)
    with _progress(progress, days) as advance:
        cycles = (replenishment.Replenishment.draw(catalog.item_domain, np.random.default_rng([seed, CADENCE_STREAM]))
                  if cadence else None)
        log = event_log.simulate_log(catalog, population, WINDOW_START, days, rng, on_day=advance, cadence=cycles)
    stock = _stock(catalog, rng)
    interactions = _interactions(log, catalog, population)

    events = interactions["event_type"].value_counts()
    event_counts = {event: int(events.get(event, 0)) for event in EVENT_TYPES}
    counts: dict[str, Any] = {
        "merchants": len(catalog.merchants),
        "new_merchants": int((catalog.merchants["created_at"] >= WINDOW_START).sum()),
        "items": len(catalog.items),
        "new_items": int((catalog.items["created_at"] >= WINDOW_START).sum()),
        "users": len(population.users),
        "new_users": int((population.created >= WINDOW_START).sum()),
        "interactions": len(interactions),
        "sessions": log.n_sessions,
        "requests": log.n_requests,
        "positives": sum(event_counts[e] for e in POSITIVE_EVENTS),
        "repeat_purchase_share": round(log.repeat_purchases / max(event_counts["purchase"], 1), 4),
        "out_of_stock": int((~stock["in_stock"]).sum()),
        "event_counts": event_counts,
        "images": int(has_image.sum()),
        "items_without_image": int((~has_image).sum()),
        "cadence": cadence,
    }

    def add_images(staging: Path) -> None:
        photos.write_images(
            staging / photos.IMAGE_DIR,
            item_ids[has_image].tolist(),
            catalog.items["category"].to_numpy(dtype=object)[has_image].tolist(),
            catalog.item_slot[has_image],
            catalog.item_domain[has_image],
            seed,
        )

    tables = {"merchants": catalog.merchants, "items": catalog.items, "users": population.users,
              "interactions": interactions, "stock": stock}
    if purchase_only:
        tables = purchase_only_tables(tables, single_merchant=single_merchant)
        counts.update(_purchase_only_counts(tables))
        counts["variant"] = "purchase_only_single_merchant" if single_merchant else "purchase_only"
    truth = _ground_truth(seed, users, items, days, population, counts, images, cadence)
    write_dataset_dir(out, tables, "ground_truth.json", truth, extra=add_images if images else None)
    return SimulationSummary(out=out, seed=seed, days=days, seconds=time.perf_counter() - began, **counts)
