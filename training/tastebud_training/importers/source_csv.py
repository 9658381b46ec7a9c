"""Reading a public data set's CSV files for an importer: the columns it needs, typed, or an error that names the
file, the line and the column (DataValidationError, as `tastebud data validate` reports). Nothing is written
until every file has been read and checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from tastebud_training.data.errors import DataError, DataValidationError
from tastebud_training.data.schema import MAX_ERRORS

ColumnKind = Literal["int", "float", "text"]
# Errors shown per bad column: the first few lines are enough to find the problem.
_SHOWN_PER_COLUMN = 3


def read_source_csv(path: Path, columns: Mapping[str, ColumnKind], *, optional: frozenset[str] = frozenset()
                    ) -> pd.DataFrame:
    """The named columns of ``path``, typed: ``int`` (every value a whole number), ``float`` (empty = NaN, not
    negative) or ``text`` (empty = ''). Column names match case-insensitively (the public files differ in
    case); other columns are ignored. A column in ``optional`` may be absent (it is then all NaN / '')."""
    name = path.name
    if not path.is_file():
        raise DataValidationError([DataError(name, None, None, f"file not found: {path}")])
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataValidationError([DataError(name, None, None, f"not a readable CSV file: {exc}")]) from exc
    by_lower = {str(c).strip().lower(): str(c) for c in header}
    missing = [c for c in columns if c.lower() not in by_lower and c not in optional]
    if missing:
        raise DataValidationError([DataError(name, None, c, "required column is missing") for c in missing])
    present = {c: by_lower[c.lower()] for c in columns if c.lower() in by_lower}
    try:
        raw = pd.read_csv(path, usecols=list(present.values()), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataValidationError([DataError(name, None, None, f"not a readable CSV file: {exc}")]) from exc
    errors: list[DataError] = []
    out: dict[str, pd.Series] = {}
    for column, kind in columns.items():
        if column not in present:
            out[column] = pd.Series(np.nan if kind != "text" else "", index=raw.index)
            continue
        values = raw[present[column]].str.strip()
        if kind == "text":
            out[column] = values
            continue
        numbers = pd.to_numeric(values.replace("", np.nan), errors="coerce")
        if kind == "int":
            bad = numbers.isna() | (numbers != np.floor(numbers)) | (numbers < 0)
            why = "must be a whole number >= 0"
        else:
            bad = (numbers.isna() & (values != "")) | (numbers < 0)
            why = "must be a number >= 0 or empty"
        for row in np.flatnonzero(bad.to_numpy())[:_SHOWN_PER_COLUMN]:
            errors.append(DataError(name, int(row) + 2, column, f"{values.iloc[row]!r} {why}"))  # +2: header, 1-based
        out[column] = numbers.fillna(-1).astype(np.int64) if kind == "int" else numbers.astype(float)
    if errors:
        raise DataValidationError(errors[:MAX_ERRORS], truncated=len(errors) > MAX_ERRORS)
    return pd.DataFrame(out)


def unknown_references(frame: pd.DataFrame, column: str, known: pd.Index, file: str, referenced: str
                       ) -> list[DataError]:
    """An error per row (the first few) of ``file`` whose ``column`` value is not in ``known`` (from ``referenced``)."""
    bad = np.flatnonzero(~frame[column].isin(known).to_numpy())
    return [DataError(file, int(row) + 2, column, f"{str(frame[column].iloc[row])!r} is not in {referenced}")
            for row in bad[:_SHOWN_PER_COLUMN]]
