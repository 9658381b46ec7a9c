"""The validated, normalised data set and its summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from tastebud_training.data.schema import EVENT_TYPES, POSITIVE_EVENTS


@dataclass(frozen=True)
class Dataset:
    """All tables of a data directory, validated and with normalised columns.

    Known columns come first with fixed types; unknown columns follow unchanged. Missing optional text is '',
    missing numbers and times are NaN. Times are epoch seconds (float64; ``interactions.ts`` is int64).

    Attributes:
        merchants: merchant_id, name, domain, category, lat, lon, created_at.
        items: item_id, merchant_id, title, category, description, price, image_uri, created_at.
        users: user_id, created_at, age_band, gender, home_lat, home_lon, preferences (raw ``;``-separated).
        interactions: user_id, item_id, event_type, ts, session_id, request_id, position, quantity; sorted by ts
            (stable, so file order breaks ties).
        stock: item_id, in_stock (bool), quantity; None when the directory has no stock table.
        source: the directory the data was loaded from.
        warnings: problems that do not reject the data (e.g. interactions by users absent from ``users``).
        read_at: epoch seconds when reading the directory started (None for data sets built in memory).
    """

    merchants: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    interactions: pd.DataFrame
    stock: pd.DataFrame | None
    source: Path
    warnings: tuple[str, ...] = field(default=())
    # When reading started (epoch s): a server's live events received later are not in these tables.
    read_at: float | None = None


@dataclass(frozen=True)
class ValidationSummary:
    """What ``tastebud data validate`` reports about a valid directory.

    Attributes:
        source: the directory.
        rows: row count per table (stock absent when there is no stock table).
        event_counts: interactions per event type.
        n_positives: interactions whose event type is a positive (click, add_to_cart, purchase).
        ts_min: earliest interaction, epoch seconds (None without interactions).
        ts_max: latest interaction, epoch seconds.
        warnings: non-fatal problems.
    """

    source: Path
    rows: dict[str, int]
    event_counts: dict[str, int]
    n_positives: int
    ts_min: int | None
    ts_max: int | None
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "source": str(self.source),
            "rows": dict(self.rows),
            "event_counts": dict(self.event_counts),
            "n_positives": self.n_positives,
            "time_range": [_iso(self.ts_min), _iso(self.ts_max)],
            "warnings": list(self.warnings),
        }


def _iso(ts: int | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def summarize(dataset: Dataset) -> ValidationSummary:
    """Counts and time range of a loaded data set."""
    tables = {
        "merchants": dataset.merchants,
        "items": dataset.items,
        "users": dataset.users,
        "interactions": dataset.interactions,
    }
    if dataset.stock is not None:
        tables["stock"] = dataset.stock
    events = dataset.interactions["event_type"].value_counts()
    ts = dataset.interactions["ts"]
    return ValidationSummary(
        source=dataset.source,
        rows={name: len(frame) for name, frame in tables.items()},
        event_counts={event: int(events.get(event, 0)) for event in EVENT_TYPES},
        n_positives=int(sum(int(events.get(event, 0)) for event in POSITIVE_EVENTS)),
        ts_min=int(ts.min()) if len(ts) else None,
        ts_max=int(ts.max()) if len(ts) else None,
        warnings=dataset.warnings,
    )


def cut_at(dataset: Dataset, as_of: float) -> Dataset:
    """The data set as it was known at ``as_of``: interactions strictly before it (catalog kept whole)."""
    interactions = dataset.interactions[dataset.interactions["ts"] < as_of]
    return Dataset(dataset.merchants, dataset.items, dataset.users, interactions, dataset.stock, dataset.source,
                   dataset.warnings, dataset.read_at)


def frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table's rows as dicts, missing values as None (what DynamoDB and JSON writers take)."""
    return [{k: (None if v != v else v) for k, v in row.items()} for row in frame.to_dict("records")]  # NaN -> None
