"""TF Serving's REST predict path, run by the serving container's TensorFlow (.venv-tf219, mk/parity.mk).

No TF Serving binary ships in a package registry, so this reproduces what the model server does, from its
sources (tensorflow_serving/util/json_tensor.cc, servables/tensorflow/predict_util.cc) and the REST API docs:

1. Load: ``LoadSavedModel`` with tag ``serve``, the TF1 way: import the MetaGraphDef, run the saver's restore
   op, run the init op. ``tf.compat.v1.saved_model.loader.load`` does the same in Python (``saved_model_cli``
   uses it too). ``tf.saved_model.load`` (object graph) is NOT what TF Serving does: it restores variables a
   session-based loader never sees.
2. Parse ``{"instances": [...]}`` (row format) against the signature_def's input dtypes: every instance an
   object whose keys equal the input names; each value a dense nested list (ragged lists are rejected) of the
   dtype's JSON type: an integer token for DT_INT64 (``3.0`` is a double and is rejected), any number that fits
   a float for DT_FLOAT, strings or ``{"b64": ...}`` for DT_STRING, true/false for DT_BOOL. The instances are
   batched along a new first axis.
3. ``Session::Run`` feeding the signature's input tensor names, fetching its output tensor names.
4. Answer ``{"predictions": [...]}`` (one output: its values per instance; several: one object per instance),
   or ``{"error": "..."}`` with status 400 for a request the parser rejects.

Usage (by tests/aws/test_tf_serving_parity.py; prints JSON on stdout):
    python tf_serving_predict.py predict SAVED_MODEL_DIR REQUESTS_JSON   (a JSON list of request bodies)
    python tf_serving_predict.py ops OUT_TXT                             (this TF's op registry)
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

INT32_RANGE = (-(2**31), 2**31 - 1)
INT64_RANGE = (-(2**63), 2**63 - 1)
FLOAT_MAX_INT = 2**24 - 1  # json_tensor.cc IsLosslessDecimal<float>: integers a float holds exactly
FLOAT_MAX = float(np.finfo(np.float32).max)
# tensorflow_serving/model_servers/http_rest_api_handler: ToHTTPStatusCode.
HTTP_STATUS = {tf.errors.InvalidArgumentError: 400, tf.errors.FailedPreconditionError: 400,
               tf.errors.OutOfRangeError: 400, tf.errors.NotFoundError: 404, tf.errors.UnimplementedError: 501,
               tf.errors.UnavailableError: 503, tf.errors.DeadlineExceededError: 504}


class BadRequest(ValueError):
    """What TF Serving answers with HTTP 400 and {"error": message}."""


def _type_error(value: Any, dtype: tf.DType) -> BadRequest:
    kind = {bool: "True" if value else "False", str: "String", dict: "Object", list: "Array"}.get(type(value), "Number")
    return BadRequest(f"JSON Value: {json.dumps(value)} Type: {kind} is not of expected type: {dtype.name}")


def _is_integer_token(value: Any) -> bool:
    # Python's json gives int for an integer token and float for one with a fraction or exponent, as rapidjson's
    # IsInt64() / IsDouble() tell them apart; bool is an int subclass but a JSON true/false, never a number.
    return isinstance(value, int) and not isinstance(value, bool)


def json_scalar(value: Any, dtype: tf.DType) -> Any:
    """json_tensor.cc AddValueToTensor: one JSON leaf as ``dtype``, or the error TF Serving reports."""
    if dtype == tf.string:
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
            return base64.b64decode(value["b64"], validate=True)
        raise _type_error(value, dtype)
    if dtype == tf.bool:
        if isinstance(value, bool):
            return value
        raise _type_error(value, dtype)
    if dtype in (tf.int64, tf.int32, tf.int16, tf.int8, tf.uint8):
        low, high = INT64_RANGE if dtype == tf.int64 else INT32_RANGE
        if _is_integer_token(value) and low <= value <= high:
            return value
        raise _type_error(value, dtype)
    if dtype in (tf.float32, tf.float64):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(value, dtype)
        if dtype == tf.float32 and np.isfinite(value):
            lossy = abs(value) > FLOAT_MAX_INT if _is_integer_token(value) else abs(value) > FLOAT_MAX
            if lossy:
                raise BadRequest(f"Cannot convert JSON value: {value} to float without loss of precision.")
        return value
    raise BadRequest(f"Conversion of JSON Value: {json.dumps(value)} to type: {dtype.name} is not implemented")


def dense_shape(value: Any) -> list[int]:
    """json_tensor.cc GetDenseTensorShape: the shape read along the first elements."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def fill(value: Any, level: int, shape: list[int], dtype: tf.DType, out: list[Any]) -> None:
    """json_tensor.cc FillTensorProto: leaves only at depth == rank, every list of its level's size."""
    if not isinstance(value, list):
        if level != len(shape):
            raise BadRequest(f"JSON Value: {json.dumps(value)} found at incorrect level: {level + 1} in the JSON "
                             f"DOM. Expected at level: {len(shape)}")
        out.append(json_scalar(value, dtype))
        return
    if level >= len(shape):
        raise BadRequest(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise BadRequest(f"Encountered list at unexpected size: {len(value)} at level: {level} "
                         f"expected size: {shape[level]}")
    for item in value:
        fill(item, level + 1, shape, dtype, out)


def instances_to_tensors(body: bytes, inputs: dict[str, tf.TensorSpec]) -> dict[str, np.ndarray]:
    """json_tensor.cc FillPredictRequestFromJson, row format, for a signature of several named inputs."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise BadRequest(f"JSON Parse error: {exc}") from exc
    if not isinstance(document, dict):
        raise BadRequest("Is not object")
    if "inputs" in document:
        raise BadRequest("this harness models the row format ('instances') the Lambda sends")
    instances = document.get("instances")
    if not isinstance(instances, list):
        raise BadRequest("Excepting 'instances' to be an list/array")
    if not instances:
        raise BadRequest("No values in 'instances' array")
    if not isinstance(instances[0], dict) and len(inputs) > 1:
        raise BadRequest("instances is a plain list, but expecting list of objects as multiple input tensors "
                         "required as per tensorinfo_map")
    values: dict[str, list[Any]] = {name: [] for name in inputs}
    shapes: dict[str, list[int]] = {}
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise BadRequest(f"Expecting object but got list at item {index} of input list")
        for name, value in instance.items():
            if name not in inputs:
                raise BadRequest(f"Failed to process element: {index} key: {name} of 'instances' list. Error: "
                                 f"JSON object: does not have named input: {name}")
            shape = dense_shape(value)
            try:
                fill(value, 0, shape, inputs[name].dtype, values[name])
            except BadRequest as exc:
                raise BadRequest(f"Failed to process element: {index} key: {name} of 'instances' list. "
                                 f"Error: {exc}") from exc
            if shapes.setdefault(name, shape) != shape:
                raise BadRequest(f"Failed to process element: {index} key: {name} of 'instances' list. Error: "
                                 f"Expecting shape {shapes[name]} but got: {shape}")
        if set(instance) != set(inputs):
            raise BadRequest(f"Failed to process element: {index} of 'instances' list. JSON object: "
                             f"{json.dumps(instance)} keys must be equal to: {','.join(sorted(inputs))}")
    tensors = {name: np.asarray(values[name], dtype=inputs[name].dtype.as_numpy_dtype).reshape(
        [len(instances), *shapes[name]]) for name in inputs}
    for name, tensor in tensors.items():  # Session::Run would fail (or misread) a tensor of another shape
        if not inputs[name].shape.is_compatible_with(tensor.shape):
            raise BadRequest(f"input {name}: shape {list(tensor.shape)} does not match the signature's "
                             f"{inputs[name].shape}")
    return tensors


def _float_json(value: float) -> float:
    # TF Serving writes a float32 with the shortest digits that round-trip it (json_tensor.cc WriteDecimal).
    return float(str(np.float32(value)))


def predictions_json(outputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """json_tensor.cc MakeJsonFromTensors, row format."""
    def plain(array: np.ndarray) -> Any:
        return [_float_json(v) for v in array.tolist()] if array.ndim == 1 and array.dtype.kind == "f" \
            else [plain(row) for row in array] if array.ndim > 1 else array.tolist()

    if len(outputs) == 1:
        (only,) = outputs.values()
        return {"predictions": [plain(row) for row in only]}
    names = sorted(outputs)
    batch = len(next(iter(outputs.values())))
    return {"predictions": [{name: plain(outputs[name][i]) for name in names} for i in range(batch)]}


def predict(model_dir: Path, bodies: list[str]) -> list[dict[str, Any]]:
    """Each request as TF Serving answers it, plus (``object_graph``) what ``tf.saved_model.load`` computes."""
    answers: list[dict[str, Any]] = []
    parsed: list[dict[str, np.ndarray] | None] = []
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(model_dir))
        signature = meta_graph.signature_def["serving_default"]
        specs = {name: tf.TensorSpec(tf.TensorShape(info.tensor_shape), tf.as_dtype(info.dtype))
                 for name, info in signature.inputs.items()}
        fetches = {name: info.name for name, info in signature.outputs.items()}
        for body in bodies:
            tensors = None
            try:
                tensors = instances_to_tensors(body.encode(), specs)
                outputs = session.run(fetches, {signature.inputs[name].name: value for name, value in tensors.items()})
                answers.append({"status": 200, "body": predictions_json(outputs)})
            except BadRequest as exc:
                answers.append({"status": 400, "body": {"error": str(exc)}})
            except tf.errors.OpError as exc:  # the status TF Serving's HTTP layer maps the error code to
                answers.append({"status": HTTP_STATUS.get(type(exc), 500), "body": {"error": exc.message}})
            parsed.append(tensors)
    serving_default = tf.saved_model.load(str(model_dir)).signatures["serving_default"]  # eager, after the session
    for answer, tensors in zip(answers, parsed, strict=True):
        if tensors is not None:
            outputs = {name: value.numpy() for name, value in serving_default(**tensors).items()}
            answer["object_graph"] = predictions_json(outputs)["predictions"]
    return answers


def op_registry() -> str:
    """This TF's registered ops and their attributes, in the format ``OpRegistry.parse`` reads."""
    from tensorflow.core.framework import op_def_pb2
    from tensorflow.python.client import pywrap_tf_session

    ops = op_def_pb2.OpList()
    ops.ParseFromString(pywrap_tf_session.TF_GetBuffer(pywrap_tf_session.TF_GetAllOpList()))
    lines = [f"# TensorFlow {tf.__version__} op registry (tests/aws/tf_serving_predict.py ops)",
             f"# graph_def_version {tf.version.GRAPH_DEF_VERSION}"]
    lines += sorted(" ".join([op.name, *sorted(attr.name for attr in op.attr)]) for op in ops.op)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv[:1] == ["predict"] and len(argv) == 3:
        print(json.dumps(predict(Path(argv[1]), json.loads(Path(argv[2]).read_text()))))
        return 0
    if argv[:1] == ["ops"] and len(argv) == 2:
        Path(argv[1]).write_text(op_registry())
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
