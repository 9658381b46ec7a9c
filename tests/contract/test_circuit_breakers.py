"""Circuit breakers around the AWS adapters, on their wire doubles (SageMaker runtime, OpenSearch) and moto
(DynamoDB): after N consecutive failed calls further calls fail at once with a DependencyError and make NO
network call; after T seconds one probe goes through and a success closes the circuit again."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pybreaker
import pytest
from aws_doubles import (
    FakeOpenSearchDomain,
    create_feature_tables,
    model_error,
    opensearch_client,
    opensearch_error,
    sagemaker_reply,
    sagemaker_runtime_client,
)
from urllib3.exceptions import ReadTimeoutError

from tastebud.adapters.aws.dynamodb_features import DynamoFeatureStore
from tastebud.adapters.aws.opensearch_admin import OpenSearchIndexAdmin
from tastebud.adapters.aws.opensearch_index import OpenSearchIndex
from tastebud.adapters.aws.retry import RetryPolicy
from tastebud.adapters.aws.sagemaker_encoder import SageMakerUserEncoder, history_payload
from tastebud.circuit import breaker_state, circuit_breaker
from tastebud.domain import UserProfile
from tastebud.errors import DependencyError

from factories import context, make_catalog, unit_vectors

N, DIM = 30, 8
CATALOG = make_catalog(N)
VECTORS = unit_vectors(N, dim=DIM, seed=3)
FAIL_MAX, RESET_S = 3, 0.2
NO_SLEEP = RetryPolicy(attempts=2, sleep=lambda s: None)


def breaker(name: str) -> pybreaker.CircuitBreaker:
    return circuit_breaker(name, fail_max=FAIL_MAX, reset_timeout_s=RESET_S, throw_new_error_on_trip=False)


def wait_for_half_open() -> None:
    time.sleep(RESET_S * 1.5)  # the breaker's own timeout (pybreaker reads the wall clock): not a timing assertion


def warm_user() -> UserProfile:
    return UserProfile("u1", True, history_rows=np.asarray([4, 9, 2]),
                       history_weights=np.asarray([3, 1, 2], np.float32),
                       history_last_ts=np.asarray([3.0, 2.0, 1.0], np.float32))


# --- SageMaker user encoder ------------------------------------------------------------------------------------


def test_sagemaker_circuit_opens_after_n_failures_skips_the_call_and_recovers() -> None:
    healthy = [False]

    def endpoint(request: Any) -> Any:
        if healthy[0]:
            return sagemaker_reply([VECTORS[0].tolist()])
        return model_error(500, {"error": "OOM when allocating tensor"})

    client, sent = sagemaker_runtime_client(endpoint)
    guard = breaker("sagemaker")
    encoder = SageMakerUserEncoder("user-tower", history_payload(CATALOG), dimension=DIM, client=client,
                                   retry=NO_SLEEP, breaker=guard)
    for attempt in range(FAIL_MAX):
        with pytest.raises(DependencyError, match="container 500"):  # the real cause, the trip included
            encoder.encode(warm_user(), context())
        assert len(sent) == attempt + 1  # ModelError is not retried: one call per request
    assert breaker_state(guard) == "down"

    started = time.perf_counter()
    with pytest.raises(DependencyError, match=r"retrieve: .*circuit sagemaker open") as caught:
        encoder.encode(warm_user(), context())
    assert len(sent) == FAIL_MAX  # no network call while open
    assert isinstance(caught.value.__cause__, pybreaker.CircuitBreakerError)
    assert time.perf_counter() - started < 1.0  # fails at once (generous bound: never a timeout's worth)

    healthy[0] = True
    wait_for_half_open()
    vector = encoder.encode(warm_user(), context())  # the half-open probe
    assert vector is not None and len(sent) == FAIL_MAX + 1
    assert breaker_state(guard) == "ok"


def test_sagemaker_failed_probe_opens_the_circuit_again() -> None:
    client, sent = sagemaker_runtime_client(lambda r: model_error(500, {"error": "still broken"}))
    guard = breaker("sagemaker")
    encoder = SageMakerUserEncoder("user-tower", history_payload(CATALOG), dimension=DIM, client=client,
                                   retry=NO_SLEEP, breaker=guard)
    for _ in range(FAIL_MAX):
        with pytest.raises(DependencyError):
            encoder.encode(warm_user(), context())
    wait_for_half_open()
    with pytest.raises(DependencyError, match="still broken"):
        encoder.encode(warm_user(), context())  # the probe goes out and fails
    assert len(sent) == FAIL_MAX + 1 and breaker_state(guard) == "down"
    with pytest.raises(DependencyError, match="circuit sagemaker open"):
        encoder.encode(warm_user(), context())
    assert len(sent) == FAIL_MAX + 1


def test_one_request_counts_once_even_when_retried() -> None:
    from botocore.exceptions import ReadTimeoutError as BotoReadTimeout

    client, sent = sagemaker_runtime_client(lambda r: BotoReadTimeout(endpoint_url=r.url, error="Read timed out"))
    guard = breaker("sagemaker")
    encoder = SageMakerUserEncoder("user-tower", history_payload(CATALOG), dimension=DIM, client=client,
                                   retry=NO_SLEEP, breaker=guard)
    with pytest.raises(DependencyError, match="ReadTimeoutError"):
        encoder.encode(warm_user(), context())
    assert len(sent) == 2 and guard.fail_counter == 1 and breaker_state(guard) == "degraded"


# --- OpenSearch k-NN search and stock-flag updates ---------------------------------------------------------------


@pytest.fixture
def domain() -> FakeOpenSearchDomain:
    domain = FakeOpenSearchDomain()
    admin = OpenSearchIndexAdmin(opensearch_client(domain), "items", retry=NO_SLEEP)
    name = admin.create("v1", DIM)
    admin.bulk_load(name, admin.documents(CATALOG, VECTORS))
    admin.swap_alias(name)
    domain.requests.clear()
    return domain


def test_opensearch_search_circuit_opens_skips_and_recovers(domain: FakeOpenSearchDomain) -> None:
    guard = breaker("opensearch")
    index = OpenSearchIndex(opensearch_client(domain), "items", CATALOG, "v1", breaker=guard)
    domain.failures += [opensearch_error(503, "cluster_block_exception", "no master")] * FAIL_MAX
    for _ in range(FAIL_MAX):
        with pytest.raises(DependencyError, match="HTTP 503 cluster_block_exception"):
            index.search(VECTORS[0], 5)
    assert len(domain.requests) == FAIL_MAX and breaker_state(guard) == "down"

    with pytest.raises(DependencyError, match=r"retrieve: .*circuit opensearch open"):
        index.search(VECTORS[0], 5)
    assert len(domain.requests) == FAIL_MAX  # skipped: nothing reached the domain

    wait_for_half_open()
    rows, _ = index.search(VECTORS[0], 5)
    assert rows.tolist()[0] == 0 and len(domain.requests) == FAIL_MAX + 1 and breaker_state(guard) == "ok"


def test_stock_updates_share_the_domain_circuit_and_only_outages_count(domain: FakeOpenSearchDomain) -> None:
    guard = breaker("opensearch")
    admin = OpenSearchIndexAdmin(opensearch_client(domain), "items", breaker=guard)
    index = OpenSearchIndex(opensearch_client(domain), "items", CATALOG, "v1", breaker=guard)
    for _ in range(FAIL_MAX + 2):  # a missing document is the domain answering, not an outage
        with pytest.raises(DependencyError, match="document_missing_exception"):
            admin.set_in_stock("nope", False)
    assert breaker_state(guard) == "ok"

    domain.failures += [ReadTimeoutError(None, "/items/_update/i1", "Read timed out")] * FAIL_MAX
    for _ in range(FAIL_MAX):
        with pytest.raises(DependencyError, match="index: updating i1"):
            admin.set_in_stock("i1", False)
    sent = len(domain.requests)
    with pytest.raises(DependencyError, match="circuit opensearch open"):
        admin.set_in_stock("i1", False)
    with pytest.raises(DependencyError, match="circuit opensearch open"):
        index.search(VECTORS[0], 5)  # the same domain: the search is skipped too
    assert len(domain.requests) == sent

    wait_for_half_open()
    admin.set_in_stock("i1", False)
    assert domain.indices["items-v1"]["docs"]["i1"]["in_stock"] is False and breaker_state(guard) == "ok"


# --- DynamoDB feature store (moto) ------------------------------------------------------------------------------


def test_dynamodb_circuit_opens_skips_and_recovers(dynamodb: Any) -> None:
    calls: list[str] = []
    dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **kwargs: calls.append(model.name))
    guard = breaker("dynamodb")
    store = DynamoFeatureStore("profiles", "history", CATALOG, client=dynamodb, breaker=guard)
    assert store.user("u1").known is False  # healthy: an unknown user is cold
    calls.clear()

    dynamodb.delete_table(TableName="profiles")  # every read now fails (ResourceNotFoundException)
    dynamodb.delete_table(TableName="history")
    calls.clear()
    for _ in range(FAIL_MAX):
        with pytest.raises(DependencyError, match=r"features: .*ResourceNotFoundException"):
            store.user("u1")
    assert calls == ["GetItem"] * FAIL_MAX and breaker_state(guard) == "down"

    with pytest.raises(DependencyError, match=r"features: .*circuit dynamodb open"):
        store.user("u1")
    assert calls == ["GetItem"] * FAIL_MAX  # no call while open

    create_feature_tables(dynamodb)
    calls.clear()
    wait_for_half_open()
    assert store.user("u1").user_id == "u1"
    assert calls == ["GetItem", "Query"] and breaker_state(guard) == "ok"
