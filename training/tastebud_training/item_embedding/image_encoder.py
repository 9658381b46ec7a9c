"""EfficientNetB0 (the network training embedded item photos with) -> ``image_encoder.onnx`` via tf2onnx.

The graph maps RGB floats in 0..255 at the training input size to the raw pooled 1280-d features; serving
(tastebud.adapters.embedded.onnx_image_encoder) decodes, resizes and normalises with tastebud.features.image,
as training did. Conversion takes ~13 s on 2 cores, so the export is cached per weights, size and versions.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

import numpy as np

from tastebud.adapters.embedded.onnx_image_encoder import OnnxImageEncoder
from tastebud_training.image_embedding import ImageConfig, image_network
from tastebud_training.item_embedding.files import cached_export

ONNX_FILE = "image_encoder.onnx"
ONNX_OPSET = 17
_EXPORT_FORMAT = 1


def export_image_encoder(config: ImageConfig, cache_dir: Path) -> tuple[Path, str]:
    """(directory holding ``image_encoder.onnx``, the weights id) for ``config``, built once per cache key.

    Raises:
        tastebud_training.image_embedding.WeightsUnavailableError: the configured weights are not available.
    """
    network, weights_id = image_network(config)
    parts = [str(_EXPORT_FORMAT), weights_id, str(config.size), str(ONNX_OPSET),
             importlib.metadata.version("keras"), importlib.metadata.version("tf2onnx")]
    key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def build(directory: Path) -> None:
        import tensorflow as tf
        import tf2onnx

        signature = [tf.TensorSpec([None, config.size, config.size, 3], tf.float32, name="images")]
        # from_keras, not from_function: from_function leaves the Normalization layer's constants as graph inputs.
        proto, _ = tf2onnx.convert.from_keras(network, input_signature=signature, opset=ONNX_OPSET)
        (directory / ONNX_FILE).write_bytes(proto.SerializeToString())

    return cached_export(cache_dir, f"efficientnetb0-onnx-{config.size}-{key}", build), weights_id


def image_encoder_parity(onnx_path: Path, size: int, paths: list[Path], expected: np.ndarray) -> float:
    """Max |serving encoder(paths) - expected| where ``expected`` are training's unit-length image features."""
    return float(np.max(np.abs(OnnxImageEncoder(onnx_path, size).encode(paths) - expected))) if paths else 0.0
