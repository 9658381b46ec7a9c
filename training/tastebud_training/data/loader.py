"""Load a data directory: find the table files, check every value against the contract, normalise.

All checks are vectorised. Problems are collected (up to MAX_ERRORS) and raised together as one
DataValidationError; a directory that fails is never partly returned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from tastebud_training.data import parsing
from tastebud_training.data.dataset import Dataset, ValidationSummary, summarize
from tastebud_training.data.errors import GENERATE_HINT, DataError, DataValidationError
from tastebud_training.data.schema import (
    INTERACTIONS,
    MAX_ERRORS,
    POSITIVE_EVENTS,
    SUPPORTED_SUFFIXES,
    TABLES,
    Column,
    Kind,
    Table,
)

logger = logging.getLogger(__name__)

# Kinds whose values must all be present when the column is required (text such as a title may be empty).
_VALUE_REQUIRED = (Kind.ID, Kind.ENUM, Kind.TIMESTAMP, Kind.BOOL)
# Outside this range a number is almost surely epoch milliseconds or garbage, not seconds (years 1800..2286).
_EPOCH_RANGE = (-5.4e9, 1e10)


@dataclass(frozen=True)
class _RawTable:
    """A table as read from its file, before any parsing."""

    table: Table
    file: str
    frame: pd.DataFrame
    row_numbers: np.ndarray  # where each row is in the file, as the user counts (CSV line / Parquet row)


class _ErrorLog:
    """Collects DataErrors up to a limit and remembers whether more were left out."""

    def __init__(self, limit: int = MAX_ERRORS) -> None:
        self.limit = limit
        self.errors: list[DataError] = []
        self.truncated = False

    @property
    def full(self) -> bool:
        return len(self.errors) >= self.limit

    def add(self, error: DataError) -> None:
        if self.full:
            self.truncated = True
        else:
            self.errors.append(error)

    def add_rows(self, raw: _RawTable, column: str, mask: np.ndarray, describe: Callable[[int], str]) -> None:
        """Add one error per True in ``mask``; ``describe`` gets the row's position in the frame."""
        positions = np.flatnonzero(mask)
        room = self.limit - len(self.errors)
        if len(positions) > room:
            self.truncated = True
        for position in positions[: max(room, 0)]:
            self.errors.append(DataError(raw.file, int(raw.row_numbers[position]), column, describe(int(position))))

    def raise_if_any(self) -> None:
        if self.errors:
            raise DataValidationError(self.errors, truncated=self.truncated)


def _shown(value: object) -> str:
    """A raw value as quoted in a message (numpy scalars shown as plain Python values)."""
    item = getattr(value, "item", None)
    return repr(item() if callable(item) else value)


def _find_files(path: Path) -> dict[str, Path]:
    if not path.exists():
        raise FileNotFoundError(f"data directory {path} does not exist. {GENERATE_HINT}")
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a directory. {GENERATE_HINT}")
    found = {
        # A ``.parquet`` may also be a folder of part files (what Spark writes: the ETL's output, etl/spark_etl.py).
        t.name: [path / f"{t.name}{s}" for s in SUPPORTED_SUFFIXES if (path / f"{t.name}{s}").is_file()
                 or (s == ".parquet" and (path / f"{t.name}{s}").is_dir())] for t in TABLES
    }
    if not any(found[t.name] for t in TABLES if t.required):
        names = ", ".join(t.name for t in TABLES if t.required)
        raise FileNotFoundError(f"{path} holds no data files (expected {names} as .csv or .parquet). {GENERATE_HINT}")
    errors = _ErrorLog()
    for table in TABLES:
        files = found[table.name]
        if len(files) > 1:
            both = " and ".join(f.name for f in files)
            errors.add(DataError(both, None, None, "both are present; keep exactly one file per table"))
        elif not files and table.required:
            either = " or ".join(f"{table.name}{s}" for s in SUPPORTED_SUFFIXES)
            errors.add(DataError(either, None, None, f"required file is missing in {path}"))
    errors.raise_if_any()
    return {name: files[0] for name, files in found.items() if files}


def _partitions(path: Path, table: Table) -> list[Path]:
    """Append-only parts of a table written by a running server (``<table>/day=YYYY-MM-DD*.csv``), oldest first."""
    folder = path / table.name
    return sorted(folder.glob("*.csv")) if folder.is_dir() else []


def _read(file: Path, table: Table, errors: _ErrorLog) -> _RawTable | None:
    try:
        if file.suffix == ".csv":
            # Everything as text: pandas must not turn id "007" into 7 or "NA" into NaN; the parsers decide.
            frame = pd.read_csv(
                file, dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False, encoding="utf-8-sig"
            )
            lines = np.arange(len(frame)) + 2  # line 1 is the header
            blank = (frame == "").all(axis=1).to_numpy() if len(frame.columns) else np.ones(len(frame), dtype=bool)
            frame, lines = frame.loc[~blank].reset_index(drop=True), lines[~blank]
        else:
            frame = pd.read_parquet(file).reset_index(drop=True)
            lines = np.arange(len(frame)) + 1
    except pd.errors.EmptyDataError:
        errors.add(DataError(file.name, None, None, "file is empty (a header line is needed at least)"))
        return None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, pa.ArrowException) as exc:
        errors.add(DataError(file.name, None, None, f"cannot be read: {exc}".strip()))
        return None
    frame.columns = [str(c).strip() for c in frame.columns]
    label = f"{table.name}/{file.name}" if file.parent.name == table.name else file.name  # parts name their folder
    return _RawTable(table, label, frame, lines)


def _parse(column: Column, values: pd.Series) -> parsing.Parsed:
    match column.kind:
        case Kind.ID:
            return parsing.to_text(values, strip=True)
        case Kind.TEXT:
            return parsing.to_text(values)
        case Kind.ENUM:
            return parsing.to_enum(values, column.choices)
        case Kind.FLOAT:
            return parsing.to_float(values)
        case Kind.TIMESTAMP:
            return parsing.to_timestamp(values)
        case Kind.BOOL:
            return parsing.to_bool(values)
    raise AssertionError(column.kind)


def _invalid_message(column: Column, shown: str) -> str:
    match column.kind:
        case Kind.ENUM:
            return f"invalid value {shown}; expected one of {', '.join(column.choices)}"
        case Kind.FLOAT:
            return f"not a number: {shown}"
        case Kind.TIMESTAMP:
            return f"cannot parse timestamp {shown}; use ISO-8601 (e.g. 2025-03-01T12:30:00Z) or epoch seconds"
        case Kind.BOOL:
            return f"invalid boolean {shown}; use true/false, 1/0 or yes/no"
    return f"invalid value {shown}"


def _check_column(raw: _RawTable, column: Column, known_ids: dict[str, pd.Series], errors: _ErrorLog) -> pd.Series:
    source = raw.frame[column.name]
    parsed = _parse(column, source)

    def shown(position: int) -> str:
        return _shown(source.iloc[position])

    if column.kind is Kind.BOOL and not column.required:
        # An optional flag keeps "not said" apart from false (a merchant without is_open is open).
        errors.add_rows(raw, column.name, parsed.invalid, lambda p: _invalid_message(column, shown(p)))
        return parsed.values.astype("float64").where(~parsed.missing)
    if column.required and column.kind in _VALUE_REQUIRED:
        errors.add_rows(raw, column.name, parsed.missing, lambda _: f"{column.name} is empty")
    errors.add_rows(raw, column.name, parsed.invalid, lambda p: _invalid_message(column, shown(p)))
    numbers = parsed.values.to_numpy() if column.kind in (Kind.FLOAT, Kind.TIMESTAMP) else None
    if numbers is not None:
        low, high = _EPOCH_RANGE if column.kind is Kind.TIMESTAMP else (column.min_value, column.max_value)
        with np.errstate(invalid="ignore"):
            if low is not None:
                errors.add_rows(raw, column.name, numbers < low, lambda p: f"{shown(p)} is below {low:g}")
            if high is not None:
                errors.add_rows(raw, column.name, numbers > high, lambda p: f"{shown(p)} is above {high:g}")
    if column.references is not None and column.references in known_ids:
        unknown = ~parsed.values.isin(known_ids[column.references]).to_numpy() & ~parsed.missing
        target = column.references
        errors.add_rows(raw, column.name, unknown, lambda p: f"unknown {column.name} {shown(p)} (not in {target})")
    return parsed.values


def _check_table(raw: _RawTable, known_ids: dict[str, pd.Series], errors: _ErrorLog,
                 *, overrides: bool = False) -> pd.DataFrame | None:
    """Parse and check one table; None when required columns are missing (its rows cannot be checked).

    ``overrides``: the file is an append-only part where a later row replaces an earlier one with the same key.
    """
    table, frame = raw.table, raw.frame
    absent = [c.name for c in table.columns if c.required and c.name not in frame.columns]
    for name in absent:
        found = ", ".join(map(str, frame.columns)) or "none"
        errors.add(DataError(raw.file, None, name, f"required column is missing (columns found: {found})"))
    if absent:
        return None
    normalised: dict[str, pd.Series] = {}
    for column in table.columns:
        if column.name in frame.columns:
            normalised[column.name] = _check_column(raw, column, known_ids, errors)
        elif column.kind is Kind.TEXT:
            normalised[column.name] = pd.Series([""] * len(frame), dtype=str)
        else:
            normalised[column.name] = pd.Series(np.full(len(frame), np.nan))
    if table.primary_key is not None and not overrides:
        keys = normalised[table.primary_key]
        duplicated = (keys.duplicated(keep="first") & (keys != "")).to_numpy()

        def first_seen(position: int) -> str:
            first = int(np.flatnonzero((keys == keys.iloc[position]).to_numpy())[0])
            unit = "line" if raw.file.endswith(".csv") else "row"
            return f"duplicate {table.primary_key} {keys.iloc[position]!r} (first at {unit} {raw.row_numbers[first]})"

        errors.add_rows(raw, table.primary_key, duplicated, first_seen)
    out = pd.DataFrame(normalised)
    if table is INTERACTIONS:
        out = out.rename(columns={"timestamp": "ts"})
        out["ts"] = np.floor(out["ts"].fillna(0.0).to_numpy()).astype(np.int64)
    # Unknown columns are kept as read, after the known ones; a clash with a normalised name loses.
    for name in frame.columns:
        if name not in out.columns and name not in normalised:
            out[name] = frame[name].to_numpy()
    return out


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
    files = _find_files(path)
    errors = _ErrorLog()
    tables: dict[str, pd.DataFrame] = {}
    known_ids: dict[str, pd.Series] = {}
    for table in TABLES:
        if table.name not in files:
            continue
        raw = _read(files[table.name], table, errors)
        checked = None if raw is None else _check_table(raw, known_ids, errors)
        parts = [checked]
        for part in _partitions(path, table):
            if table.primary_key is not None and checked is not None:
                known_ids[table.name] = checked[table.primary_key]  # a part may reference its own table's keys
            raw_part = _read(part, table, errors)
            parts.append(None if raw_part is None else _check_table(raw_part, known_ids, errors, overrides=True))
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
