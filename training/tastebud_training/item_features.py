"""Item features built from the catalog for training and evaluation: image vectors per item.

One public entry point, shared by `tastebud train`, `tastebud evaluate` (ablations), the cold-start study
and the SageMaker embeddings job, so every caller embeds images the same way and hits the same cache.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from tastebud.features.image import IMAGE_DIM, unit_rows
from tastebud_training.data import Dataset
from tastebud_training.image_embedding import ImageConfig, embed_images


def _quiet(_message: str) -> None:
    return None


def image_uris(dataset: Dataset) -> list[str]:
    """``image_uri`` per item row ('' where an item has none; an empty list when the column is absent)."""
    return dataset.items["image_uri"].fillna("").astype(str).tolist() if "image_uri" in dataset.items else []


def image_features(dataset: Dataset, cache: Path, *, enabled: bool = True, weights: str | None = None,
                   progress: bool = False, say: Callable[[str], None] = _quiet) -> tuple[np.ndarray, np.ndarray]:
    """EfficientNetB0 features of item images, one unit-length row per item, and ``has_image`` per item.

    Rows are zeros and ``has_image`` False where an item has no image, for every item when ``enabled`` is
    False, and for every item of a data set without images (e.g. a purchase-only log): callers never need
    to special-case missing images. ``weights`` is an EfficientNetB0 weights file (None: random init).
    """
    n = len(dataset.items)
    uris = image_uris(dataset)
    if not enabled or not any(uris):
        return np.zeros((n, IMAGE_DIM), np.float32), np.zeros(n, dtype=bool)
    say(f"embedding {sum(1 for u in uris if u):,} item images with EfficientNetB0 "
        f"(weights: {weights or 'random init — set --image-weights for ImageNet'})")
    features, has_image = embed_images(Path(dataset.source), uris, ImageConfig(weights=weights), cache_dir=cache,
                                       progress=progress)
    return unit_rows(features), has_image  # unit length, as the serving image encoder normalises
