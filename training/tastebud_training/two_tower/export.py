"""Towers -> ONNX (tf2onnx, opset 17) for in-process serving, with parity checks against Keras.

The user tower encodes requests; the item tower embeds items added after training (PUT /v1/items).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tastebud.features.two_tower import HISTORY_LENGTH, ITEM_INPUTS, MAX_PREFERENCES, USER_INPUTS

ONNX_OPSET = 17


def user_input_signature(text_dim: int) -> list[tf.TensorSpec]:
    shapes = {"pref_idx": (None, MAX_PREFERENCES), "hist_idx": (None, HISTORY_LENGTH),
              "hist_weight": (None, HISTORY_LENGTH), "hist_text": (None, text_dim)}
    floats = {"hist_weight", "hist_text"}
    return [tf.TensorSpec(shapes.get(name, (None,)), tf.float32 if name in floats else tf.int64, name=name)
            for name in USER_INPUTS]


def item_input_signature(text_dim: int, image_dim: int) -> list[tf.TensorSpec]:
    shapes = {"text": (None, text_dim), "image": (None, image_dim), "has_image": (None, 1)}
    return [tf.TensorSpec(shapes.get(name, (None,)), tf.float32 if name in shapes else tf.int64, name=name)
            for name in ITEM_INPUTS]


def export_user_tower(user_tower: keras.Model, path: Path, text_dim: int) -> None:
    _export_tower(user_tower, USER_INPUTS, user_input_signature(text_dim), path)


def export_item_tower(item_tower: keras.Model, path: Path, text_dim: int, image_dim: int) -> None:
    _export_tower(item_tower, ITEM_INPUTS, item_input_signature(text_dim, image_dim), path)


def _export_tower(tower: keras.Model, names: tuple[str, ...], signature: list[tf.TensorSpec], path: Path) -> None:
    import tf2onnx

    @tf.function
    def serve(*tensors: tf.Tensor) -> tf.Tensor:
        return tower(dict(zip(names, tensors, strict=True)), training=False)

    model_proto, _ = tf2onnx.convert.from_function(serve, input_signature=signature, opset=ONNX_OPSET)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(model_proto.SerializeToString())
    tmp.replace(path)


def user_tower_parity(user_tower: keras.Model, onnx_path: Path, inputs: dict[str, np.ndarray]) -> float:
    """Max absolute difference between Keras and ONNX Runtime on ``inputs``."""
    return tower_parity(user_tower, onnx_path, inputs)


def tower_parity(tower: keras.Model, onnx_path: Path, inputs: dict[str, np.ndarray]) -> float:
    """Max absolute difference between a Keras tower and its ONNX export on ``inputs``."""
    keras_out = tower(inputs, training=False).numpy()
    return float(np.max(np.abs(_onnx_outputs(onnx_path, inputs) - keras_out)))


# int8 is published only when it retrieves what float32 retrieves: the mean share of the exact top-100 neighbours
# (over the whole catalog) that both query vectors find, on the parity sample.
INT8_MIN_NEIGHBOUR_AGREEMENT = 0.95
INT8_AGREEMENT_K = 100


def quantize_tower(fp32_path: Path, int8_path: Path) -> None:
    """Dynamic int8 quantisation of a tower's MatMul weights (one scale per output column); embedding tables and
    activations stay float32 at the interfaces. Why: the request path streams the user tower's dense weights on
    every call (4.4 MB in float32 against a 2 MB L2 on the serving machine); int8 reads a quarter of the bytes."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = int8_path.with_name(int8_path.name + ".tmp")
    root = logging.getLogger()
    root.addFilter(_drop_preprocess_hint)
    try:
        quantize_dynamic(fp32_path, tmp, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         per_channel=True)
    finally:
        root.removeFilter(_drop_preprocess_hint)
    tmp.replace(int8_path)


def _drop_preprocess_hint(record: logging.LogRecord) -> bool:
    """ONNX Runtime's hint to run its pre-processing first: its symbolic shape inference does not complete on
    tf2onnx towers (tried), and the three dense MatMuls are found and quantized without it."""
    return "pre-processing before quantization" not in record.getMessage()


def publish_int8_user_tower(fp32_path: Path, int8_path: Path, inputs: dict[str, np.ndarray],
                            index_vectors: np.ndarray) -> dict[str, Any]:
    """Write the int8 twin of the user tower and measure it against float32; ``published`` is False (and the file
    removed) when it finds less than ``INT8_MIN_NEIGHBOUR_AGREEMENT`` of float32's neighbours."""
    quantize_tower(fp32_path, int8_path)
    agreement: dict[str, Any] = quantized_agreement(fp32_path, int8_path, inputs, index_vectors)
    agreement["published"] = agreement["neighbour_agreement_mean"] >= INT8_MIN_NEIGHBOUR_AGREEMENT
    agreement["threshold"] = INT8_MIN_NEIGHBOUR_AGREEMENT
    if not agreement["published"]:
        int8_path.unlink()
    return agreement


def quantized_agreement(fp32_path: Path, int8_path: Path, inputs: dict[str, np.ndarray], index_vectors: np.ndarray,
                        k: int = INT8_AGREEMENT_K) -> dict[str, float]:
    """How closely the int8 tower follows the float32 one on ``inputs``: cosine of the query vectors, and the share
    of each query's exact top-``k`` items (by dot product over ``index_vectors``) that both vectors retrieve."""
    full = _onnx_outputs(fp32_path, inputs)
    quantized = _onnx_outputs(int8_path, inputs)
    cosine = np.sum(full * quantized, axis=1) / (np.linalg.norm(full, axis=1) * np.linalg.norm(quantized, axis=1))
    k = min(k, index_vectors.shape[0])
    overlap = np.empty(full.shape[0])
    for start in range(0, full.shape[0], 64):  # 64 queries at a time: a (64, n_items) score block, not (512, n)
        stop = start + 64
        top_full = np.argpartition(-(full[start:stop] @ index_vectors.T), k - 1, axis=1)[:, :k]
        top_quantized = np.argpartition(-(quantized[start:stop] @ index_vectors.T), k - 1, axis=1)[:, :k]
        overlap[start:stop] = [np.intersect1d(a, b).size / k for a, b in zip(top_full, top_quantized, strict=True)]
    return {"queries": int(full.shape[0]), "k": k, "neighbour_agreement_mean": round(float(overlap.mean()), 4),
            "neighbour_agreement_min": round(float(overlap.min()), 4),
            "cosine_median": round(float(np.median(cosine)), 5), "cosine_min": round(float(cosine.min()), 5)}


def _onnx_outputs(onnx_path: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {i.name: inputs[i.name.split(":")[0]] for i in session.get_inputs()})
    return np.asarray(output, dtype=np.float32)
