"""A SageMaker real-time endpoint serving the user tower, for `sam local`: InvokeEndpoint's REST API
(``POST /endpoints/<name>/invocations``) answered by the version's ONNX user tower instead of TF Serving.

The body is what the recommend function sends (``SageMakerUserEncoder``, TF Serving's REST "predict" row format,
``ENDPOINT_USER_INPUTS``); like the SavedModel the real endpoint serves (two_tower/serving.py), it averages the
history's text vectors itself from ``hist_row`` and ``hist_weight``. The answers are SageMaker's: the container's
body unchanged on success, a container error wrapped as HTTP 424 ``ModelError``, an unknown endpoint as
``ValidationError``. tests/aws/test_tf_serving_parity.py shows that TF Serving 2.19 and the ONNX tower agree.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from tastebud.artifacts import USER_TOWER
from tastebud.features.two_tower import ENDPOINT_USER_INPUTS, history_text
from tastebud_sam_local.http_thread import serve_in_thread

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ENDPOINT_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
FLOAT_INPUTS = frozenset({"hist_weight"})

Reply = tuple[int, dict[str, str], bytes]


def sagemaker_reply(predictions: Any) -> Reply:
    """What the TF Serving container answers through InvokeEndpoint (body passed through unchanged)."""
    return 200, {"content-type": "application/json", "x-amzn-invoked-production-variant": "AllTraffic"}, \
        json.dumps({"predictions": predictions}).encode()


def sagemaker_error(kind: str, status: int, document: dict[str, Any]) -> Reply:
    return status, {"content-type": "application/json", "x-amzn-errortype": f"{kind}:http://internal.amazon.com/"
                    "coral/com.amazon.sagemaker.runtime/"}, json.dumps(document).encode()


def model_error(original_status: int, original_body: dict[str, Any]) -> Reply:
    """SageMaker's wrapping of a container 4xx/5xx: HTTP 424 ModelError with the container's own answer."""
    original = json.dumps(original_body)
    return sagemaker_error("ModelError", 424, {
        "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if original_status < 500 else "SERVER_ERROR_FROM_MODEL",
        "LogStreamArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/user-tower",
        "Message": f"Received client error ({original_status}) from primary with message \"{original}\". See "
                   f"https://{REGION}.console.aws.amazon.com/cloudwatch/home for more information.",
        "OriginalMessage": original, "OriginalStatusCode": original_status})


class UserTowerEndpoint:
    """One version's user tower as the endpoint's model (float32, as the SavedModel the endpoint serves)."""

    def __init__(self, version_dir: Path) -> None:
        import onnxruntime

        self._text_vectors = np.load(version_dir / "text_vectors.npy")
        self._session = onnxruntime.InferenceSession(str(version_dir / USER_TOWER),
                                                     providers=["CPUExecutionProvider"])
        self._names = [i.name for i in self._session.get_inputs()]

    def predict(self, body: bytes) -> Reply:
        """TF Serving's answer to a "predict" body: 200 with predictions, or its 400 ``{"error": ...}`` wrapped."""
        try:
            instances = json.loads(body)["instances"]
            arrays = {name: np.asarray([instance[name] for instance in instances],
                                       dtype=np.float32 if name in FLOAT_INPUTS else np.int64)
                      for name in ENDPOINT_USER_INPUTS}
        except (ValueError, KeyError, TypeError) as exc:
            return model_error(400, {"error": f"malformed request: {type(exc).__name__}: {exc}"})
        if arrays["hist_row"].size and (arrays["hist_row"].max() >= len(self._text_vectors)
                                        or arrays["hist_row"].min() < 0):
            return model_error(400, {"error": "hist_row outside the item-text table"})
        arrays["hist_text"] = history_text(self._text_vectors, arrays["hist_row"], arrays["hist_weight"])
        (vectors,) = self._session.run(None, {name: arrays[name] for name in self._names})
        return sagemaker_reply(np.asarray(vectors, dtype=np.float32).tolist())


def serve_endpoints(endpoints: Mapping[str, UserTowerEndpoint], host: str, port: int = 0) -> ThreadingHTTPServer:
    """The runtime API for ``endpoints`` (by name) on ``host:port``, in a daemon thread; ``shutdown()`` stops it."""
    lock = threading.Lock()  # one inference at a time, as one instance of the real endpoint's model

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            match = ENDPOINT_PATH.match(self.path.split("?", 1)[0])
            endpoint = endpoints.get(match["name"]) if match else None
            if endpoint is None:
                name = match["name"] if match else self.path
                status, headers, payload = sagemaker_error("ValidationError", 400, {
                    "Message": f"Endpoint {name} of account {ACCOUNT} not found."})
            else:
                with lock:
                    status, headers, payload = endpoint.predict(body)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return serve_in_thread(Handler, host, port, "sagemaker-standin")

