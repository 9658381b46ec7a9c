"""Find a data directory's table files (one per table, plus a server's append-only parts) and read them unparsed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from tastebud_training.data.errors import GENERATE_HINT, DataError
from tastebud_training.data.raw_table import ErrorLog, RawTable
from tastebud_training.data.schema import SUPPORTED_SUFFIXES, TABLES, Table


def find_files(path: Path) -> dict[str, Path]:
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
    errors = ErrorLog()
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


def partitions(path: Path, table: Table) -> list[Path]:
    """Append-only parts of a table written by a running server (``<table>/day=YYYY-MM-DD*.csv``), oldest first."""
    folder = path / table.name
    return sorted(folder.glob("*.csv")) if folder.is_dir() else []


def read_table(file: Path, table: Table, errors: ErrorLog) -> RawTable | None:
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
    return RawTable(table, label, frame, lines)
