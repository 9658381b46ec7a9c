"""What a simulation run reports: the counts of what it wrote (SimulationSummary; the CLI prints its ``rows()``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tastebud_training.data.schema import EVENT_TYPES, POSITIVE_EVENTS
from tastebud_training.simulator.catalog import Catalog
from tastebud_training.simulator.event_log import Log
from tastebud_training.simulator.population import Population


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


def full_counts(
    catalog: Catalog, population: Population, log: Log, interactions: pd.DataFrame, stock: pd.DataFrame,
    has_image: np.ndarray, cadence: bool, window_start: int,
) -> dict[str, Any]:
    """The summary's counts of the full simulation (SimulationSummary fields)."""
    events = interactions["event_type"].value_counts()
    event_counts = {event: int(events.get(event, 0)) for event in EVENT_TYPES}
    return {
        "merchants": len(catalog.merchants),
        "new_merchants": int((catalog.merchants["created_at"] >= window_start).sum()),
        "items": len(catalog.items),
        "new_items": int((catalog.items["created_at"] >= window_start).sum()),
        "users": len(population.users),
        "new_users": int((population.created >= window_start).sum()),
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


def purchase_only_counts(tables: dict[str, pd.DataFrame], window_start: int) -> dict[str, Any]:
    """The summary's counts for the tables a purchase-only variant writes (impression-era counts become 0)."""
    purchases = tables["interactions"]
    items = tables["items"]
    return {
        "merchants": len(tables["merchants"]),
        "new_merchants": 0,  # merchants carry no opening date in this variant
        "items": len(items),
        "new_items": int((items["created_at"] >= window_start).sum()),
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
