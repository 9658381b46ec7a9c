"""Check a read table against the contract, column by column, and normalise its values.

All checks are vectorised; each problem names the file, row and column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tastebud_training.data import parsing
from tastebud_training.data.errors import DataError
from tastebud_training.data.raw_table import ErrorLog, RawTable
from tastebud_training.data.schema import INTERACTIONS, Column, Kind

# Kinds whose values must all be present when the column is required (text such as a title may be empty).
_VALUE_REQUIRED = (Kind.ID, Kind.ENUM, Kind.TIMESTAMP, Kind.BOOL)
# Outside this range a number is almost surely epoch milliseconds or garbage, not seconds (years 1800..2286).
_EPOCH_RANGE = (-5.4e9, 1e10)


def _shown(value: object) -> str:
    """A raw value as quoted in a message (numpy scalars shown as plain Python values)."""
    item = getattr(value, "item", None)
    return repr(item() if callable(item) else value)


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


def _check_column(raw: RawTable, column: Column, known_ids: dict[str, pd.Series], errors: ErrorLog) -> pd.Series:
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


def check_table(raw: RawTable, known_ids: dict[str, pd.Series], errors: ErrorLog,
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
