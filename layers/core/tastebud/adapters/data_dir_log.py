"""Appends what a running server accepted to the data directory, so the next `tastebud train` learns from it.

Parts partitioned by day, in the data contract's columns (the loader reads ``<table>/*.csv`` after the table):
    DATA/interactions/day=YYYY-MM-DD.csv   events, by the day of their timestamp (UTC)
    DATA/items/day=YYYY-MM-DD.csv          item upserts, by the day they were received (a later row wins)
Every worker process may append: an exclusive file lock keeps lines whole, and each file has its header once.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tastebud.domain import InteractionEvent, ItemDraft

EVENT_COLUMNS = ("event_id", "user_id", "item_id", "event_type", "timestamp", "session_id", "request_id", "position",
                 "quantity")
ITEM_COLUMNS = ("item_id", "merchant_id", "title", "category", "description", "price", "image_uri", "created_at")


def _day(epoch_seconds: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch_seconds))


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None and NaN are empty cells
        return ""
    return repr(value) if isinstance(value, float) else str(value)


class DataDirLog:
    """Day-partitioned CSV parts under a data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def append_events(self, events: Sequence[InteractionEvent]) -> None:
        by_day: dict[str, list[list[str]]] = defaultdict(list)
        for e in events:
            by_day[_day(e.timestamp)].append([_cell(getattr(e, c)) for c in EVENT_COLUMNS])
        for day, rows in by_day.items():
            self._append(self.data_dir / "interactions" / f"day={day}.csv", EVENT_COLUMNS, rows)

    def append_items(self, drafts: Sequence[ItemDraft], received_at: float) -> None:
        rows = [[_cell(getattr(d, c)) if c != "created_at" else _cell(received_at) for c in ITEM_COLUMNS]
                for d in drafts]
        self._append(self.data_dir / "items" / f"day={_day(received_at)}.csv", ITEM_COLUMNS, rows)

    @staticmethod
    def _append(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)  # a CR in a value stays inside
        writer.writerows(rows)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8", newline="") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                if handle.tell() == 0:
                    handle.write(",".join(header) + "\n")
                handle.write(buffer.getvalue())
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
