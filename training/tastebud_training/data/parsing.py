"""Vectorised parsers that turn a raw column (CSV strings or typed Parquet values) into contract values.

Each parser reports which values are missing and which are present but unparseable, so the loader can decide
what is an error and name the offending rows. Nothing here loops over rows in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from tastebud_training.data.schema import FALSE_WORDS, TRUE_WORDS

_UTC_EPOCH = pd.Timestamp(0, tz="UTC")


@dataclass(frozen=True)
class Parsed:
    """A parsed column.

    Attributes:
        values: normalised values, index aligned with the input.
        missing: True where no value was given (empty string, null).
        invalid: True where a value was given but cannot be parsed.
    """

    values: pd.Series
    missing: np.ndarray
    invalid: np.ndarray


def _numbers_as_text(series: pd.Series) -> pd.Series:
    """Format numbers without a spurious ``.0``: Parquet int ids with nulls arrive as float64."""
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    finite = np.isfinite(values)
    integral = finite & (np.floor(np.where(finite, values, 0.0)) == values) & (np.abs(values) < 2**53)
    text = series.astype(str).to_numpy(dtype=object)
    text[integral] = values[integral].astype(np.int64).astype(str)
    text[~finite] = ""
    return pd.Series(text, index=series.index, dtype=str)


def to_text(series: pd.Series, *, strip: bool = False) -> Parsed:
    """Any column as strings, '' where missing."""
    if ptypes.is_bool_dtype(series):
        text = series.astype(object).where(series.notna(), "").astype(str)
    elif ptypes.is_numeric_dtype(series):
        text = _numbers_as_text(series)
    else:
        text = series.fillna("").astype(str)
    if strip:
        text = text.str.strip()
    missing = (text == "").to_numpy()
    return Parsed(text, missing, np.zeros(len(series), dtype=bool))


def to_enum(series: pd.Series, choices: tuple[str, ...]) -> Parsed:
    """Strings from ``choices``, matched case-insensitively; normalised to lower case."""
    text = to_text(series, strip=True)
    lowered = text.values.str.lower()
    invalid = ~lowered.isin(choices).to_numpy() & ~text.missing
    return Parsed(lowered, text.missing, invalid)


def to_float(series: pd.Series) -> Parsed:
    """Numbers as float64, NaN where missing; NaN, inf or non-numbers given explicitly are invalid."""
    if ptypes.is_bool_dtype(series) and series.dtype != object:
        raw = series.astype("float64")
        missing = raw.isna().to_numpy()
        return Parsed(raw, missing, np.zeros(len(series), dtype=bool))
    if ptypes.is_numeric_dtype(series):
        # Typed storage cannot tell "unknown" from "NaN given": a null/NaN in Parquet means unknown.
        raw = series.astype("float64")
        missing = raw.isna().to_numpy()
        invalid = np.isinf(raw.to_numpy())
        return Parsed(raw.where(~invalid), missing, invalid)
    text = to_text(series, strip=True)
    numbers = pd.to_numeric(text.values.where(~text.missing, None), errors="coerce").astype("float64")
    invalid = ~text.missing & ~np.isfinite(numbers.to_numpy())
    return Parsed(numbers.where(~invalid), text.missing, invalid)


def _datetimes_to_seconds(series: pd.Series) -> pd.Series:
    if getattr(series.dt, "tz", None) is None:
        series = series.dt.tz_localize("UTC")  # naive times are UTC by contract
    return (series.dt.tz_convert("UTC") - _UTC_EPOCH).dt.total_seconds()


def to_timestamp(series: pd.Series) -> Parsed:
    """ISO-8601 strings (naive = UTC) or epoch seconds, mixed freely, as float64 epoch seconds."""
    if ptypes.is_datetime64_any_dtype(series):
        seconds = _datetimes_to_seconds(series)
        missing = seconds.isna().to_numpy()
        return Parsed(seconds.astype("float64"), missing, np.zeros(len(series), dtype=bool))
    if ptypes.is_numeric_dtype(series) and not ptypes.is_bool_dtype(series):
        return to_float(series)
    text = to_text(series, strip=True)
    numbers = pd.to_numeric(text.values.where(~text.missing, None), errors="coerce").astype("float64")
    needs_date = ~text.missing & numbers.isna().to_numpy()
    seconds = numbers.copy()
    if needs_date.any():
        dates = pd.to_datetime(text.values[needs_date], format="ISO8601", utc=True, errors="coerce")
        seconds[needs_date] = _datetimes_to_seconds(dates).to_numpy()
    invalid = ~text.missing & ~np.isfinite(seconds.to_numpy())
    return Parsed(seconds.where(~invalid), text.missing, invalid)


def to_bool(series: pd.Series) -> Parsed:
    """Booleans; strings true/false/1/0/yes/no in any case."""
    if ptypes.is_bool_dtype(series) and series.dtype != object:
        missing = series.isna().to_numpy()
        return Parsed(series.fillna(False).astype(bool), missing, np.zeros(len(series), dtype=bool))
    if ptypes.is_numeric_dtype(series):
        numbers = series.astype("float64")
        missing = numbers.isna().to_numpy()
        invalid = ~missing & ~numbers.isin([0.0, 1.0]).to_numpy()
        return Parsed(numbers == 1.0, missing, invalid)
    text = to_text(series, strip=True)
    lowered = text.values.str.lower()
    is_true = lowered.isin(TRUE_WORDS).to_numpy()
    is_false = lowered.isin(FALSE_WORDS).to_numpy()
    invalid = ~text.missing & ~is_true & ~is_false
    return Parsed(pd.Series(is_true, index=series.index), text.missing, invalid)
