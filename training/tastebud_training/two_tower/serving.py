"""The user tower as the SageMaker endpoint serves it: TF Serving SavedModel in ``model.tar.gz``.

TFRS style, the model holds the item-text table (a non-trainable variable of catalog rows x text dim) and
takes the history's catalog rows (``hist_row``, ``ENDPOINT_USER_INPUTS``): it computes the weighted mean
history text itself, exactly as ``tastebud.features.two_tower.history_text`` does in process. The serving
Lambda then sends ids only and never loads ``text_vectors.npy`` (1.5 GB at 1M items); the table lives
where it scales, in the endpoint instance's memory, loaded once per model version.

Layout of ``model.tar.gz`` (what the SageMaker TensorFlow Serving container expects; the endpoint sets
``SAGEMAKER_TFS_DEFAULT_MODEL_NAME=user_tower``)::

    user_tower/1/saved_model.pb
    user_tower/1/variables/variables.{index,data-*}
    user_tower/1/assets/   (empty)
    tensorflow_version      (the TF that exported it; provenance only)
    tf_serving.json         (``servable_by``: the TF Serving versions whose op registry loads this graph;
                             also written beside model.tar.gz)

TF Serving loads a SavedModel the TF1 way (C++ ``LoadSavedModel``: import the graph, run the saver's restore
op, then ``Session::Run`` on the signature's tensor names), not through Python's object graph. The export is
built for that loader: one variable per weight (see ``EndpointUserTower``), and ``package_model_tar`` refuses
a graph that uses an op or an op attribute the serving TF (``SERVING_TF_VERSION``, the template's
``UserTowerTfVersion`` default) does not register. A version exported by TF 2.20 (the local bootstrap,
pinned for ScaNN) is then served by the TF Serving 2.19 DLC; tests/aws/test_tf_serving_parity.py runs it in
TF 2.19 with the Lambda's exact request.
"""

from __future__ import annotations

import functools
import json
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tastebud.features.two_tower import ENDPOINT_USER_INPUTS, HISTORY_LENGTH, MAX_PREFERENCES

MODEL_NAME = "user_tower"
OUTPUT = "user_embedding"
# The TF Serving version of the default serving image (template.yaml UserTowerTfVersion; no 2.20 DLC exists).
SERVING_TF_VERSION = "2.19"
SERVING_MANIFEST = "tf_serving.json"
OP_REGISTRY_DIR = Path(__file__).with_name("tf_serving_ops")


class ServingVersionError(RuntimeError):
    """The exported graph cannot be loaded by the TF Serving version the endpoint runs."""


def endpoint_signature() -> dict[str, tf.TensorSpec]:
    shapes = {"pref_idx": (None, MAX_PREFERENCES), "hist_idx": (None, HISTORY_LENGTH),
              "hist_weight": (None, HISTORY_LENGTH), "hist_row": (None, HISTORY_LENGTH)}
    return {name: tf.TensorSpec(shapes.get(name, (None,)), tf.float32 if name == "hist_weight" else tf.int64,
                                name=name) for name in ENDPOINT_USER_INPUTS}


class EndpointUserTower(tf.Module):
    """user tower + item-text table; ``serve`` is the SavedModel's ``serving_default`` signature.

    The Keras model is called through an untracked callable and only its backing ``tf.Variable``s are tracked.
    Tracking the Keras model itself saves every weight twice (the ``keras.Variable`` and the ``tf.Variable`` it
    wraps): the saver's restore op fills one copy, the signature reads the other, and a session-based loader
    (TF Serving, ``saved_model_cli``) fails every predict with "Could not find variable ..." although
    ``tf.saved_model.load`` works (tensorflow/tensorflow#72963).
    """

    def __init__(self, user_tower: keras.Model, text_vectors: np.ndarray) -> None:
        super().__init__(name="endpoint_user_tower")
        # A functools.partial is not trackable: the model's layers stay out of the object graph.
        self._call_tower: Callable[..., tf.Tensor] = functools.partial(user_tower.__call__, training=False)
        self.tower_variables = [variable.value for variable in user_tower.variables]
        self.item_text = tf.Variable(np.asarray(text_vectors, dtype=np.float32), trainable=False, name="item_text")
        self.serve = tf.function(self._serve, input_signature=[endpoint_signature()])

    def _serve(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        weights = inputs["hist_weight"]
        text = tf.einsum("bl,bld->bd", weights, tf.gather(self.item_text, inputs["hist_row"]))
        text = text / tf.maximum(tf.reduce_sum(weights, axis=1, keepdims=True), 1e-6)
        features = {name: value for name, value in inputs.items() if name != "hist_row"}
        features["hist_text"] = text
        return {OUTPUT: self._call_tower(features)}


def export_endpoint_model(user_tower: keras.Model, text_vectors: np.ndarray, directory: Path) -> Path:
    """SavedModel of ``EndpointUserTower`` with the ``serving_default`` signature."""
    module = EndpointUserTower(user_tower, text_vectors)
    tf.saved_model.save(module, str(directory), signatures={"serving_default": module.serve.get_concrete_function()})
    return directory


@dataclass(frozen=True)
class OpRegistry:
    """What one TensorFlow version can load: its GraphDef version and, per op, the attributes it declares."""

    tf_version: str
    graph_def_version: int
    ops: dict[str, frozenset[str]]

    @classmethod
    def parse(cls, tf_version: str, text: str) -> OpRegistry:
        """The format ``tests/aws/tf_serving_predict.py ops`` writes: ``# graph_def_version N``, then one
        ``OpName attr attr ...`` line per registered op."""
        graph_def_version, ops = -1, {}
        for line in text.splitlines():
            if line.startswith("# graph_def_version "):
                graph_def_version = int(line.split()[-1])
            elif line and not line.startswith("#"):
                name, *attrs = line.split()
                ops[name] = frozenset(attrs)
        if graph_def_version < 0:
            raise ValueError(f"op registry of TF {tf_version}: no '# graph_def_version' line")
        return cls(tf_version, graph_def_version, ops)

    @classmethod
    def load(cls, tf_version: str, directory: Path | None = None) -> OpRegistry:
        """The checked-in registry ``<directory or OP_REGISTRY_DIR>/<tf_version>.txt`` (``make tf-serving-ops``)."""
        path = (directory or OP_REGISTRY_DIR) / f"{tf_version}.txt"
        if not path.is_file():
            raise ServingVersionError(f"no op registry for TF Serving {tf_version} ({path}): `make tf-serving-ops "
                                      f"TF_SERVING_VERSION={tf_version}` with that TF in .venv-tf219")
        return cls.parse(tf_version, path.read_text())


def graph_ops(saved_model_dir: Path) -> tuple[dict[str, set[str]], int]:
    """Every op the SavedModel's graph runs (graph and function library) with the attributes its nodes set,
    and the graph's ``min_consumer`` version. Attributes starting with ``_`` are internal and never checked."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((saved_model_dir / "saved_model.pb").read_bytes())
    (meta_graph,) = saved.meta_graphs
    graph = meta_graph.graph_def
    functions = {function.signature.name for function in graph.library.function}
    ops: dict[str, set[str]] = {}
    nodes = [*graph.node, *(node for function in graph.library.function for node in function.node_def)]
    for node in nodes:
        if node.op in functions:  # a call of a library function, not a registered op
            continue
        ops.setdefault(node.op, set()).update(name for name in node.attr if not name.startswith("_"))
    return ops, int(graph.versions.min_consumer)


def serving_incompatibilities(saved_model_dir: Path, registry: OpRegistry) -> list[str]:
    """Why ``registry``'s TF cannot load the SavedModel (empty: it can): ops or attributes it does not know,
    or a GraphDef whose ``min_consumer`` is newer than it."""
    ops, min_consumer = graph_ops(saved_model_dir)
    problems = [f"GraphDef min_consumer {min_consumer} > {registry.graph_def_version}"] \
        if min_consumer > registry.graph_def_version else []
    for op, attrs in sorted(ops.items()):
        if op not in registry.ops:
            problems.append(f"op {op} is not registered in TF {registry.tf_version}")
        elif unknown := sorted(attrs - registry.ops[op]):
            problems.append(f"op {op} sets attributes {unknown} unknown to TF {registry.tf_version}")
    return problems


def servable_by(saved_model_dir: Path, registries: Iterable[OpRegistry]) -> dict[str, list[str]]:
    """Per TF Serving version: the reasons it cannot load the SavedModel (an empty list: it can)."""
    return {registry.tf_version: serving_incompatibilities(saved_model_dir, registry) for registry in registries}


def package_model_tar(user_tower: keras.Model, text_vectors: np.ndarray, archive: Path, *, version: int = 1,
                      serving_tf_version: str = SERVING_TF_VERSION) -> Path:
    """``model.tar.gz`` in the TF Serving layout (module docstring); written atomically.

    Raises ``ServingVersionError`` (and writes nothing) when TF Serving ``serving_tf_version`` could not load
    the exported graph: better a failed training than an endpoint that answers every request with an error.
    """
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=archive.parent) as tmp:
        root = Path(tmp)
        saved_model = export_endpoint_model(user_tower, text_vectors, root / MODEL_NAME / str(version))
        checks = servable_by(saved_model, [OpRegistry.load(serving_tf_version)])
        if checks[serving_tf_version]:
            raise ServingVersionError(f"TF Serving {serving_tf_version} cannot load the user tower exported by TF "
                                      f"{tf.__version__}: " + "; ".join(checks[serving_tf_version]))
        (root / "tensorflow_version").write_text(tf.__version__ + "\n")
        ops, min_consumer = graph_ops(saved_model)
        (root / SERVING_MANIFEST).write_text(json.dumps({
            "exported_by_tensorflow": tf.__version__,
            "servable_by": sorted(name for name, problems in checks.items() if not problems),
            "graph_def_min_consumer": min_consumer, "ops": sorted(ops)}, indent=1) + "\n")
        partial = root / "model.tar.gz"
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(root / MODEL_NAME, arcname=MODEL_NAME)
            tar.add(root / "tensorflow_version", arcname="tensorflow_version")
            tar.add(root / SERVING_MANIFEST, arcname=SERVING_MANIFEST)
        shutil.move(str(partial), archive)
        # Also beside the archive: whoever creates the endpoint can check servable_by without unpacking it.
        shutil.copyfile(root / SERVING_MANIFEST, archive.with_name(SERVING_MANIFEST))
    return archive
