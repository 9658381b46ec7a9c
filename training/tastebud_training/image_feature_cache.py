"""The cache of item image features: ``.npz`` files keyed by the weights, the input size and every image's content.

Entries are written atomically (a temporary file, then a rename); an unreadable entry, or one of the wrong
shape, is ignored with a warning and recomputed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tastebud.features.image import IMAGE_DIM

CACHE_FORMAT = 1  # bump when the features change meaning (preprocessing, pooling)

# The embedding's logger: cache messages are part of what embedding the images reports.
log = logging.getLogger("tastebud_training.image_embedding")


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def cache_file(cache_dir: Path | None, model: str, weights_id: str, size: int, image_uris: Sequence[str],
               paths: Sequence[Path | None]) -> Path | None:
    """Where the features of these images are cached (None: no caching)."""
    key = cache_key(model, weights_id, size, image_uris, paths)
    return Path(cache_dir) / f"{model.lower()}-{size}-{key[:24]}.npz" if cache_dir else None


def cache_key(model: str, weights_id: str, size: int, image_uris: Sequence[str], paths: Sequence[Path | None]) -> str:
    keras_version = importlib.metadata.version("keras")  # random init and layers may change between versions
    digest = hashlib.sha256(f"{CACHE_FORMAT}|{model}|{keras_version}|{weights_id}|{size}".encode())
    for uri, path in zip(image_uris, paths, strict=True):
        try:
            content = file_sha256(path) if path is not None else "-"
        except OSError:
            content = "unreadable"
        digest.update(f"\x1e{uri}\x1f{content}".encode())
    return digest.hexdigest()


def read_cache(cache_file: Path | None, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    if cache_file is None or not cache_file.is_file():
        return None
    try:
        with np.load(cache_file) as stored:
            features, has_image = stored["features"], stored["has_image"]
    except (OSError, ValueError, KeyError) as error:
        log.warning("ignoring unreadable image feature cache %s: %s", cache_file, error)
        return None
    if features.shape != (n, IMAGE_DIM) or has_image.shape != (n,):
        log.warning("ignoring image feature cache %s with the wrong shape", cache_file)
        return None
    return features.astype(np.float32, copy=False), has_image.astype(bool, copy=False)


def write_cache(cache_file: Path, features: np.ndarray, has_image: np.ndarray) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{cache_file.name}.", suffix=".tmp", dir=cache_file.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, features=features, has_image=has_image)
        os.replace(tmp, cache_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
