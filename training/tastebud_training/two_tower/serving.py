"""The user tower as the SageMaker endpoint serves it: TF Serving SavedModel in ``model.tar.gz``.

TFRS style, the model holds the item-text table (a non-trainable variable of catalog rows x text dim) and
takes the history's catalog rows (``hist_row``, ``ENDPOINT_USER_INPUTS``): it computes the weighted mean
history text itself, exactly as ``tastebud.two_tower_features.history_text`` does in process. The serving
Lambda then sends ids only and never loads ``text_vectors.npy`` (1.5 GB at 1M items); the table lives
where it scales, in the endpoint instance's memory, loaded once per model version.

Layout of ``model.tar.gz`` (what the SageMaker TensorFlow Serving container expects; the endpoint sets
``SAGEMAKER_TFS_DEFAULT_MODEL_NAME=user_tower``)::

    user_tower/1/saved_model.pb
    user_tower/1/variables/variables.{index,data-*}
    user_tower/1/assets/   (empty)
    tensorflow_version      (the TF that exported it: the DLC serving it must be at least this version)

Serve it with the AWS Deep Learning Container ``tensorflow-inference:<major.minor>-cpu`` whose version is
the one in ``tensorflow_version`` (docs/DEPLOY.md; template parameter ``UserTowerTfVersion``).
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tastebud.two_tower_features import ENDPOINT_USER_INPUTS, HISTORY_LENGTH, MAX_PREFERENCES

MODEL_NAME = "user_tower"
OUTPUT = "user_embedding"


def endpoint_signature() -> dict[str, tf.TensorSpec]:
    shapes = {"pref_idx": (None, MAX_PREFERENCES), "hist_idx": (None, HISTORY_LENGTH),
              "hist_weight": (None, HISTORY_LENGTH), "hist_row": (None, HISTORY_LENGTH)}
    return {name: tf.TensorSpec(shapes.get(name, (None,)), tf.float32 if name == "hist_weight" else tf.int64,
                                name=name) for name in ENDPOINT_USER_INPUTS}


class EndpointUserTower(tf.Module):
    """user tower + item-text table; ``serve`` is the SavedModel's ``serving_default`` signature."""

    def __init__(self, user_tower: keras.Model, text_vectors: np.ndarray) -> None:
        super().__init__(name="endpoint_user_tower")
        self.user_tower = user_tower
        self.item_text = tf.Variable(np.asarray(text_vectors, dtype=np.float32), trainable=False, name="item_text")
        self.serve = tf.function(self._serve, input_signature=[endpoint_signature()])

    def _serve(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        weights = inputs["hist_weight"]
        text = tf.einsum("bl,bld->bd", weights, tf.gather(self.item_text, inputs["hist_row"]))
        text = text / tf.maximum(tf.reduce_sum(weights, axis=1, keepdims=True), 1e-6)
        features = {name: value for name, value in inputs.items() if name != "hist_row"}
        features["hist_text"] = text
        return {OUTPUT: self.user_tower(features, training=False)}


def export_endpoint_model(user_tower: keras.Model, text_vectors: np.ndarray, directory: Path) -> Path:
    """SavedModel of ``EndpointUserTower`` with the ``serving_default`` signature."""
    module = EndpointUserTower(user_tower, text_vectors)
    tf.saved_model.save(module, str(directory), signatures={"serving_default": module.serve.get_concrete_function()})
    return directory


def package_model_tar(user_tower: keras.Model, text_vectors: np.ndarray, archive: Path, *, version: int = 1) -> Path:
    """``model.tar.gz`` in the TF Serving layout (module docstring); written atomically."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=archive.parent) as tmp:
        root = Path(tmp)
        export_endpoint_model(user_tower, text_vectors, root / MODEL_NAME / str(version))
        (root / "tensorflow_version").write_text(tf.__version__ + "\n")
        partial = root / "model.tar.gz"
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(root / MODEL_NAME, arcname=MODEL_NAME)
            tar.add(root / "tensorflow_version", arcname="tensorflow_version")
        shutil.move(str(partial), archive)
    return archive
