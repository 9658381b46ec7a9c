"""Load a data directory: find the table files, check every value against the contract, normalise.

All checks are vectorised. Problems are collected (up to MAX_ERRORS) and raised together as one
DataValidationError; a directory that fails is never partly returned.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from tastebud_training.data.dataset import Dataset, ValidationSummary, summarize
from tastebud_training.data.raw_table import ErrorLog
from tastebud_training.data.schema import POSITIVE_EVENTS, TABLES
from tastebud_training.data.table_checks import check_table
from tastebud_training.data.table_files import find_files, partitions, read_table

logger = logging.getLogger(__name__)


def _warnings(tables: dict[str, pd.DataFrame]) -> list[str]:
    notes: list[str] = []
    interactions = tables["interactions"]
    unknown_users = ~interactions["user_id"].isin(tables["users"]["user_id"])
    if unknown_users.any():
        n_users = interactions.loc[unknown_users, "user_id"].nunique()
        notes.append(
            f"{int(unknown_users.sum())} interactions by {n_users} users absent from the users table (allowed)"
        )
    if "stock" in tables:
        orphans = ~tables["stock"]["item_id"].isin(tables["items"]["item_id"])
        if orphans.any():
            notes.append(f"{int(orphans.sum())} stock rows name items absent from the items table (ignored)")
    if not interactions["event_type"].isin(POSITIVE_EVENTS).any():
        notes.append(f"no positive interactions ({', '.join(POSITIVE_EVENTS)}): nothing to train or evaluate on")
    return notes


def load_dataset(path: Path) -> Dataset:
    """Load and validate a data directory (DESIGN.md §3).

    Args:
        path: directory with merchants, items, users, interactions and optionally stock, each as .csv or .parquet.

    Returns:
        The normalised data set.

    Raises:
        FileNotFoundError: the directory does not exist or holds no data files.
        DataValidationError: any file breaks the contract; ``.errors`` names file, row and column of each problem.
    """
    path = Path(path)
    read_at = time.time()
    files = find_files(path)
    errors = ErrorLog()
    tables: dict[str, pd.DataFrame] = {}
    known_ids: dict[str, pd.Series] = {}
    for table in TABLES:
        if table.name not in files:
            continue
        raw = read_table(files[table.name], table, errors)
        checked = None if raw is None else check_table(raw, known_ids, errors)
        parts = [checked]
        for part in partitions(path, table):
            if table.primary_key is not None and checked is not None:
                known_ids[table.name] = checked[table.primary_key]  # a part may reference its own table's keys
            raw_part = read_table(part, table, errors)
            parts.append(None if raw_part is None else check_table(raw_part, known_ids, errors, overrides=True))
        if len(parts) > 1 and all(p is not None for p in parts):
            checked = pd.concat(parts, ignore_index=True)
            if table.primary_key is not None:
                checked = checked.drop_duplicates(table.primary_key, keep="last").reset_index(drop=True)
        if checked is not None:
            tables[table.name] = checked
            if table.primary_key is not None:
                known_ids[table.name] = checked[table.primary_key]
        if errors.full:
            break  # enough to act on; later tables would only add noise
    errors.raise_if_any()
    interactions = tables["interactions"].sort_values("ts", kind="stable").reset_index(drop=True)
    tables["interactions"] = interactions
    notes = _warnings(tables)
    for note in notes:
        logger.warning("%s: %s", path, note)
    return Dataset(
        merchants=tables["merchants"],
        items=tables["items"],
        users=tables["users"],
        interactions=interactions,
        stock=tables.get("stock"),
        source=path,
        warnings=tuple(notes),
        read_at=read_at,
    )


def validate_dir(path: Path) -> ValidationSummary:
    """Validate a data directory and summarise it; raises like :func:`load_dataset`."""
    return summarize(load_dataset(path))
