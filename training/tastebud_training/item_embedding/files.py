"""Cached model exports: built once per cache key in the training cache directory, linked into each version."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def cached_export(cache_dir: Path, name: str, build: Callable[[Path], None]) -> Path:
    """``cache_dir / name``, built by ``build(tmp_dir)`` when missing; a crash never leaves half an export.

    ``build`` writes its files into the temporary directory it is given, which then replaces the cache entry
    with one rename.
    """
    target = cache_dir / name
    if target.is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=cache_dir))
    try:
        build(tmp)
        os.replace(tmp, target)
    except OSError:
        if not target.is_dir():  # another run published the same export first: keep theirs
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def link_or_copy(source: Path, destination: Path) -> None:
    """Hard-link ``source`` to ``destination`` (no second copy of a 90 MB model), copying across filesystems."""
    destination.unlink(missing_ok=True)
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)
