"""Item photo -> EfficientNetB0 feature (1280-d, unit length) in process with ONNX Runtime.

Decoding, resizing and normalisation are tastebud.features.image, the functions training used, so the
item tower sees the same image vector as it did for the trained catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tastebud.adapters.embedded.onnx_session import single_thread_session
from tastebud.features.image import load_pixels, unit_rows


class OnnxImageEncoder:
    """Image files -> float32 ``[n, 1280]`` unit vectors."""

    def __init__(self, model_path: Path, size: int) -> None:
        self._session = single_thread_session(model_path)
        self._input = self._session.get_inputs()[0].name
        self.size = size
        self.dimension = int(self._session.get_outputs()[0].shape[-1])

    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Raw pooled features of ``[n, size, size, 3]`` RGB floats in 0..255 (not normalised)."""
        (features,) = self._session.run(None, {self._input: np.ascontiguousarray(pixels, dtype=np.float32)})
        return np.asarray(features, dtype=np.float32)

    def encode(self, paths: Sequence[Path]) -> np.ndarray:
        """Unit-length features, one row per file.

        Raises:
            tastebud.features.image.UnreadableImageError: a file cannot be decoded.
        """
        if not paths:
            return np.zeros((0, self.dimension), dtype=np.float32)
        pixels = np.stack([load_pixels(path, self.size) for path in paths])
        return unit_rows(self.encode_pixels(pixels))
