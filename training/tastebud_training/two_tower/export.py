"""Towers -> ONNX (tf2onnx, opset 17) for in-process serving, with parity checks against Keras.

The user tower encodes requests; the item tower embeds items added after training (PUT /v1/items).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tastebud.two_tower_features import HISTORY_LENGTH, ITEM_INPUTS, MAX_PREFERENCES, USER_INPUTS

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
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {i.name: inputs[i.name.split(":")[0]] for i in session.get_inputs()})
    keras_out = tower(inputs, training=False).numpy()
    return float(np.max(np.abs(onnx_out - keras_out)))
