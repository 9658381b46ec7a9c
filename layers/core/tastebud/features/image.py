"""Item photo -> EfficientNetB0 input pixels, and the feature normalisation: shared by training and serving.

Training (tastebud_training.image_embedding) and the serving item embedder decode, resize and normalise
images with these functions, so a photo gives the item tower the same vector offline and online.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_DIM = 1280  # EfficientNetB0, global average pooled


class UnreadableImageError(ValueError):
    """The file cannot be opened or decoded as an image."""


def load_pixels(path: Path, size: int) -> np.ndarray:
    """RGB float32 ``[size, size, 3]`` in 0..255 (bilinear resize), the network's input.

    Raises:
        UnreadableImageError: the file is missing, unreadable or not a decodable image.
    """
    from PIL import Image

    try:
        with Image.open(path) as opened:
            rgb = opened.convert("RGB")
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.float32)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UnreadableImageError(f"cannot read image {path}: {error}") from error


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows (no image) stay zero.

    Pooled CNN features differ in scale by orders of magnitude between weight sets (random init gives ~1e-4),
    and the item tower should see direction, not scale.
    """
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return np.where(norms > 0, features / np.maximum(norms, 1e-12), 0.0).astype(np.float32)
