"""Write a generated data directory all at once: into a temporary sibling, then rename into place.

A reader (or a crash) never sees a half-written directory. An existing directory is replaced only when it
is empty or holds nothing but an earlier tastebud-generated data set; anything else is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tastebud_training.data.schema import TABLE_NAMES

# The JSON file that marks a directory as generated, and by which generator.
MARKER_FILES = ("ground_truth.json", "source.json")
GENERATORS = ("tastebud-simulator", "tastebud-movielens-100k", "tastebud-instacart", "tastebud-dunnhumby")
# Sub-folders a generator may write, and the only file suffix allowed inside each (simulated item photos).
OWNED_FOLDERS = {"images": ".png"}
_OWNED = frozenset({f"{name}.parquet" for name in TABLE_NAMES} | set(MARKER_FILES) | set(OWNED_FOLDERS))


def _owned_folder_is_ours(folder: Path) -> bool:
    if folder.is_symlink() or not folder.is_dir():
        return False
    suffix = OWNED_FOLDERS[folder.name]
    return all(e.name.endswith(suffix) and e.is_file(follow_symlinks=False) for e in os.scandir(folder))


def _generated_by_tastebud(directory: Path) -> bool:
    names = {p.name for p in directory.iterdir()}
    if not names <= _OWNED:
        return False
    if not all(_owned_folder_is_ours(directory / name) for name in names & set(OWNED_FOLDERS)):
        return False
    for marker in MARKER_FILES:
        if marker in names:
            try:
                generator = json.loads((directory / marker).read_text(encoding="utf-8")).get("generator")
            except (OSError, ValueError, AttributeError):
                return False
            return generator in GENERATORS
    return False


def check_replaceable(out: Path) -> None:
    """Raise unless ``out`` is absent, empty, or an earlier generated data set (call before expensive work)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a directory")
    if any(out.iterdir()) and not _generated_by_tastebud(out):
        raise FileExistsError(
            f"{out} is not empty and does not hold a generated data set; refusing to overwrite it "
            "(choose another --out or remove it yourself)"
        )


def write_dataset_dir(out: Path, tables: Mapping[str, pd.DataFrame], marker: str, meta: Mapping[str, Any],
                      *, extra: Callable[[Path], None] | None = None) -> None:
    """Write tables as Parquet plus a JSON marker file into ``out``, atomically.

    Args:
        out: target directory (created, or replaced if it holds an earlier generated data set).
        tables: table name -> frame; written as ``<name>.parquet`` without the index.
        marker: JSON file name from MARKER_FILES.
        meta: marker content; must carry ``generator`` from GENERATORS.
        extra: writes more content (an OWNED_FOLDERS folder) into the staging directory before the swap.
    """
    if marker not in MARKER_FILES or meta.get("generator") not in GENERATORS:
        raise ValueError(f"unknown marker {marker!r} or generator {meta.get('generator')!r}")
    out = Path(out).absolute()
    check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for name, frame in tables.items():
            frame.to_parquet(staging / f"{name}.parquet", index=False, engine="pyarrow", compression="zstd")
        (staging / marker).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if extra is not None:
            extra(staging)
        os.chmod(staging, 0o755)  # mkdtemp makes it 0700; a data directory is readable like any other
        check_replaceable(out)  # again: someone may have put files there while we were writing
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, retired / out.name)
            try:
                os.rename(staging, out)
            except OSError:
                os.rename(retired / out.name, out)  # put the old data back rather than leave nothing
                raise
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
