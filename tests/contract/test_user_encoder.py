"""One contract for every UserEncoder: the in-process content encoder and the SageMaker endpoint adapter.

The SageMaker adapter talks to a real botocore ``sagemaker-runtime`` client whose HTTP layer plays a TF
Serving container (row format, DESIGN/DEPLOY): it decodes the request the adapter sent and answers with
the embedded encoder's vector, so both adapters must agree. Error bodies are SageMaker's documented ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from aws_doubles import (
    ENDPOINT_PATH,
    model_error,
    sagemaker_error,
    sagemaker_reply,
    sagemaker_runtime_client,
)
from botocore.exceptions import ReadTimeoutError

from tastebud.adapters.aws.retry import RetryPolicy
from tastebud.adapters.aws.sagemaker_encoder import SageMakerUserEncoder, history_payload
from tastebud.adapters.embedded.content_encoder import ContentUserEncoder
from tastebud.domain import UserProfile
from tastebud.errors import DependencyError
from tastebud.ports import UserEncoder

from factories import context, make_catalog, unit_vectors

N, DIM = 30, 16
CATALOG = make_catalog(N)
ITEMS = unit_vectors(N, dim=DIM, seed=5)
PREFERENCES = unit_vectors(4, dim=DIM, seed=6)
EMBEDDED = ContentUserEncoder(ITEMS, PREFERENCES)
NO_SLEEP = RetryPolicy(attempts=2, sleep=lambda s: None)

WARM = UserProfile("u1", True, history_rows=np.asarray([4, 9, 2]), history_weights=np.asarray([3, 1, 2], np.float32),
                   history_last_ts=np.asarray([3.0, 2.0, 1.0], np.float32))
PREFERS = UserProfile("u2", True, preference_rows=np.asarray([1, 3]))
COLD = UserProfile.cold("u3")


def tf_serving_container(request: Any) -> Any:
    """What the user-tower container computes, from the instance the adapter sent."""
    (instance,) = json.loads(request.body)["instances"]
    rows = CATALOG.rows_of(instance["history_item_ids"])
    weights = np.asarray(instance["history_weights"], np.float32)
    user = UserProfile("x", True, history_rows=rows, history_weights=weights,
                       preference_rows=np.asarray(instance["preference_rows"], np.int64))
    vector = EMBEDDED.encode(user, context())
    return sagemaker_reply([vector.tolist()])


def sagemaker(responder: Callable[[Any], Any] = tf_serving_container) -> tuple[SageMakerUserEncoder, list[Any]]:
    client, sent = sagemaker_runtime_client(responder)
    return SageMakerUserEncoder("user-tower", history_payload(CATALOG), dimension=DIM, client=client,
                                retry=NO_SLEEP), sent


@pytest.fixture(params=["content", "sagemaker"])
def encoder(request: pytest.FixtureRequest) -> UserEncoder:
    return EMBEDDED if request.param == "content" else sagemaker()[0]


def test_is_a_user_encoder(encoder: UserEncoder) -> None:
    assert isinstance(encoder, UserEncoder)


@pytest.mark.parametrize("user", [WARM, PREFERS], ids=["history", "preferences"])
def test_returns_a_unit_float32_vector_of_the_index_dimension(encoder: UserEncoder, user: UserProfile) -> None:
    vector = encoder.encode(user, context())
    assert vector is not None and vector.dtype == np.float32 and vector.shape == (DIM,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    np.testing.assert_allclose(vector, EMBEDDED.encode(user, context()), atol=1e-6)


def test_a_user_without_signal_gets_none(encoder: UserEncoder) -> None:
    assert encoder.encode(COLD, context()) is None


def test_the_request_is_tf_serving_row_format_to_the_endpoint() -> None:
    encoder, sent = sagemaker()
    encoder.encode(WARM, context(domain="grocery"))
    (request,) = sent
    assert request.method == "POST"
    assert request.url == "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/user-tower/invocations"
    assert ENDPOINT_PATH.match("/endpoints/user-tower/invocations")
    headers = {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
    assert headers["content-type"] == "application/json" and headers["accept"] == "application/json"
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/sagemaker/aws4_request" in headers["authorization"]
    ctx = context(domain="grocery")
    assert json.loads(request.body) == {"instances": [{
        "history_item_ids": ["i4", "i9", "i2"], "history_weights": [3.0, 1.0, 2.0], "preference_rows": [],
        "hour_of_day": ctx.hour_of_day, "day_of_week": ctx.day_of_week, "domain": "grocery"}]}


def test_a_cold_user_costs_no_call() -> None:
    encoder, sent = sagemaker()
    assert encoder.encode(COLD, context()) is None and sent == []


def test_named_outputs_are_read() -> None:
    vector = [1.0] + [0.0] * (DIM - 1)
    encoder, _ = sagemaker(lambda r: sagemaker_reply([{"user_embedding": vector}]))
    assert encoder.encode(WARM, context()).tolist() == vector  # type: ignore[union-attr]


@pytest.mark.parametrize(("reply", "message"), [
    (model_error(400, {"error": "Failed to process element: 0 key: history_item_ids of 'instances' list."}),
     "ModelError"),
    (model_error(500, {"error": "OOM when allocating tensor"}), "container 500"),
    (sagemaker_error("ValidationError", 400, {"message": "Endpoint user-tower of account 123456789012 not found."}),
     "ValidationError: Endpoint user-tower"),
    (sagemaker_reply([[0.1, 0.2]]), "expected a finite vector of 16 floats"),
    (sagemaker_reply([[float("nan")] * DIM]), "finite"),
    ((200, {"content-type": "application/json"}, b'{"error": "Tensor name: x has no shape information"}'),
     "model error"),
    ((200, {"content-type": "text/html"}, b"<html>502 Bad Gateway</html>"), "unreadable response"),
])
def test_error_bodies_become_dependency_errors(reply: Any, message: str) -> None:
    encoder, sent = sagemaker(lambda r: reply)
    with pytest.raises(DependencyError, match="retrieve") as caught:
        encoder.encode(WARM, context())
    assert message in str(caught.value)
    assert len(sent) == 1  # client errors and bad bodies are not retried


def test_throttling_is_retried_with_jitter_then_served() -> None:
    replies = [sagemaker_error("ThrottlingException", 400, {"message": "Rate exceeded"}), None]
    delays: list[float] = []
    client, sent = sagemaker_runtime_client(lambda r: replies.pop(0) or tf_serving_container(r))
    encoder = SageMakerUserEncoder("user-tower", history_payload(CATALOG), dimension=DIM, client=client,
                                   retry=RetryPolicy(attempts=2, base_delay=0.01, sleep=delays.append,
                                                     uniform=lambda lo, hi: hi))
    assert encoder.encode(WARM, context()) is not None
    assert len(sent) == 2 and delays == [0.01]


def test_timeouts_are_retried_then_reported() -> None:
    def timeout(request: Any) -> Exception:
        return ReadTimeoutError(endpoint_url=request.url, error="Read timed out. (read timeout=0.06)")

    encoder, sent = sagemaker(timeout)
    with pytest.raises(DependencyError, match="ReadTimeoutError"):
        encoder.encode(WARM, context())
    assert len(sent) == 2
