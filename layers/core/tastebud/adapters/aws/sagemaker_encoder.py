"""UserEncoder on a SageMaker real-time endpoint that serves the user tower with TensorFlow Serving.

Wire format (TF Serving REST "predict", row format; SageMaker's TF Serving container forwards the body of
``InvokeEndpoint`` to ``/v1/models/<model>:predict`` unchanged):

    request   Content-Type: application/json   {"instances": [{<feature name>: <value or list>, ...}]}
    response  Content-Type: application/json   {"predictions": [[f0, f1, ..., f127]]}
              or, for a SavedModel signature with several named outputs,
                                               {"predictions": [{"user_embedding": [...], ...}]}
    error     the container answers {"error": "<message>"} with a 4xx/5xx status, which SageMaker wraps
              as ModelError (HTTP 424) with OriginalStatusCode / OriginalMessage.

Which features go into an instance is decided by a ``payload_builder`` (the two-tower feature builder
plugs in here); ``history_payload`` is the default: recent item ids, their weights, stated preferences
and request time/domain.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from tastebud.adapters.aws.retry import RetryPolicy
from tastebud.catalog import Catalog
from tastebud.circuit import guarded_call
from tastebud.domain import RequestContext, UserProfile
from tastebud.errors import DependencyError
from tastebud.features.two_tower import TwoTowerVocab, profile_endpoint_inputs

PayloadBuilder = Callable[[UserProfile, RequestContext], "dict[str, Any] | None"]

# Transient by SageMaker's documentation: retry once with jitter; anything else fails fast.
RETRYABLE_CODES = frozenset({"ThrottlingException", "ServiceUnavailable", "InternalFailure",
                             "InternalDependencyException", "ModelNotReadyException"})
STAGE = "retrieve"


def history_payload(catalog: Catalog, *, max_history: int = 50) -> PayloadBuilder:
    """Default payload: the user's recent positive items (ids, graded weights), preferences, time and domain.

    Returns None for a user with neither history nor stated preferences: retrieval then uses popularity
    and the endpoint is not called at all (no signal, no cost).
    """

    def build(user: UserProfile, context: RequestContext) -> dict[str, Any] | None:
        if not user.has_history and not user.preference_rows.size:
            return None
        rows = user.history_rows[:max_history]
        return {
            "history_item_ids": catalog.item_ids[rows].tolist(),
            "history_weights": [round(float(w), 4) for w in user.history_weights[: rows.size].tolist()],
            "preference_rows": [int(r) for r in user.preference_rows.tolist()],
            "hour_of_day": context.hour_of_day,
            "day_of_week": context.day_of_week,
            "domain": context.domain,
        }

    return build


def two_tower_payload(vocab: TwoTowerVocab) -> PayloadBuilder:
    """The endpoint model's named inputs (``ENDPOINT_USER_INPUTS``) as one TF Serving instance (row format).

    Built by ``profile_endpoint_inputs``, the same code path the in-process ONNX encoder and training use,
    except that the history goes as catalog rows (``hist_row``): the endpoint's model holds the item-text
    table and averages the history's text itself (TFRS style; two_tower/serving.py), so the function never
    loads the items x 384 text matrix. Every user gets a vector (cold users too).
    """

    def build(user: UserProfile, context: RequestContext) -> dict[str, Any] | None:
        return {name: value[0].tolist() for name, value in profile_endpoint_inputs(vocab, user, context).items()}

    return build


def _is_retryable(exc: Exception) -> bool:
    from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code") in RETRYABLE_CODES
    return isinstance(exc, ReadTimeoutError | ConnectionError)


def _describe(exc: Exception) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        response: dict[str, Any] = dict(exc.response)
        error = response.get("Error", {})
        text = f"{error.get('Code')}: {error.get('Message')}"
        if "OriginalStatusCode" in response:  # ModelError: what the container itself answered
            text += f" (container {response['OriginalStatusCode']}: {response.get('OriginalMessage')})"
        return text
    return f"{type(exc).__name__}: {exc}"


class SageMakerUserEncoder:
    """Calls ``sagemaker-runtime.invoke_endpoint`` once per request; returns the L2-normalised user vector.

    Args:
        endpoint_name: the SageMaker endpoint serving the user tower.
        payload_builder: user + context -> one TF Serving instance (or None when the user gives no signal).
        dimension: expected embedding size (the index's dimension); anything else is an error.
        client: a boto3 ``sagemaker-runtime`` client (built with short timeouts and no SDK retries by
            ``tastebud.composition.aws``); tests inject a stubbed one.
        retry: retries of transient errors (throttling, 5xx, timeouts), full jitter.
        breaker: circuit breaker of the endpoint (``tastebud.circuit``): one request's call (retry and
            response parsing included) counts once; while it is open ``encode`` fails at once, with no call.
    """

    def __init__(self, endpoint_name: str, payload_builder: PayloadBuilder, *, dimension: int, client: Any,
                 retry: RetryPolicy | None = None, output_name: str | None = None, breaker: Any = None) -> None:
        self._client = client
        self._endpoint = endpoint_name
        self._build = payload_builder
        self._dimension = dimension
        self._retry = retry or RetryPolicy()
        self._output_name = output_name
        self._breaker = breaker

    def request_body(self, user: UserProfile, context: RequestContext) -> bytes | None:
        instance = self._build(user, context)
        if instance is None:
            return None
        return json.dumps({"instances": [instance]}, separators=(",", ":")).encode()

    def encode(self, user: UserProfile, context: RequestContext) -> np.ndarray | None:
        body = self.request_body(user, context)
        if body is None:
            return None

        def invoke() -> Any:
            return self._client.invoke_endpoint(EndpointName=self._endpoint, ContentType="application/json",
                                                Accept="application/json", Body=body)

        def invoke_and_parse() -> np.ndarray:
            response = self._retry.call(invoke, _is_retryable)
            return self.parse(response["Body"].read())

        return guarded_call(self._breaker, STAGE, f"sagemaker endpoint {self._endpoint}", invoke_and_parse,
                            describe=_describe)

    def parse(self, payload: bytes) -> np.ndarray:
        """TF Serving row-format response -> float32 vector of ``dimension``, L2-normalised."""
        try:
            document = json.loads(payload)
            if "error" in document:
                raise ValueError(f"model error: {document['error']}")
            prediction = document["predictions"][0]
            if isinstance(prediction, dict):
                if self._output_name is not None:
                    prediction = prediction[self._output_name]
                elif len(prediction) == 1:
                    (prediction,) = prediction.values()
                else:
                    raise ValueError(f"several outputs {sorted(prediction)}; set output_name")
            vector = np.asarray(prediction, dtype=np.float32)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise DependencyError(STAGE, f"sagemaker endpoint {self._endpoint}: unreadable response: {exc}") from exc
        if vector.shape != (self._dimension,) or not np.all(np.isfinite(vector)):
            raise DependencyError(STAGE, f"sagemaker endpoint {self._endpoint}: expected a finite vector of "
                                         f"{self._dimension} floats, got shape {vector.shape}")
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            raise DependencyError(STAGE, f"sagemaker endpoint {self._endpoint}: zero vector")
        return vector / np.float32(norm)
