"""Faults of every AWS dependency on the request path, through the clients the AWS composition builds: a dependency
that is hung, failing, throttling or resetting connections adds at most its budget to a request.

The service is ``build_aws_service`` with its own clients (``build_clients``: boto configs, opensearch-py, the
ElastiCache client) pointed at local doubles over TLS, so the timeouts, retries and breakers under test are the
production ones, derived from the ``Settings`` knobs:

  - SageMaker runtime, OpenSearch and DynamoDB: an HTTPS server (the stock cache's test certificate, trusted through
    ``AWS_CA_BUNDLE`` / ``SSL_CERT_FILE``) speaking each service's wire format: InvokeEndpoint (rest-json; errors
    with ``x-amzn-ErrorType`` and the codes and statuses of botocore's service model), the OpenSearch REST API
    (``FakeOpenSearchDomain`` answers the k-NN search; errors with OpenSearch's error body), DynamoDB JSON 1.0
    (``X-Amz-Target``; errors as ``__type`` + ``message`` with ``x-amz-crc32``).
  - ElastiCache: a TCP proxy in front of the redis-server that runs as template.yaml runs the stock cache (TLS +
    AUTH, end to end through the proxy).

Faults (``Fault``): ``hung`` — the process stops answering, as under SIGSTOP: requests on open connections get no
answer, new connections are accepted (the kernel's backlog) but never get a TLS handshake; the service's own
error answers (5xx, throttling) — ElastiCache has neither, so Redis gets only the socket faults; ``reset`` — the
server closes with RST (SO_LINGER 0) when a request arrives, on open and new connections alike.

Each case: healthy requests first (keep-alive connections open, as in a warm container), then the fault; the first
10 requests are timed one by one. The slowest must stay within the dependency's budget: its timeout x attempts +
the jittered back-off cap, plus the request's own work (the slowest healthy request measured just before) and a
scheduling slack. The page is still answered (10 items, the stage in ``degraded``); the circuit opens after
``fail_max`` requests and later requests reach the network no more; once the double behaves and the breaker's
reset time has passed, the next request is served in full again. ``-s`` prints the measured times.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from aws_doubles import (
    FakeOpenSearchDomain,
    model_error,
    opensearch_error,
    sagemaker_error,
    sagemaker_reply,
    tiny_ranker,
)
from aws_doubles import opensearch_client as domain_client
from moto import mock_aws
from redis_servers import StockCache, trust_only

from tastebud import heap
from tastebud.adapters.aws.opensearch_admin import OpenSearchIndexAdmin
from tastebud.adapters.aws.s3_artifacts import S3ArtifactStore
from tastebud.circuit import breaker_state
from tastebud.composition.aws import AwsClients, build_aws_service, request_retry
from tastebud.errors import DependencyError
from tastebud.features.schema import FEATURE_NAMES, FEATURE_VERSION
from tastebud.pipeline.service import RecommendationService
from tastebud.settings import Settings

from factories import NOW, make_catalog, unit_vectors

pytestmark = pytest.mark.usefixtures("frozen_heap")  # as the deployed function after INIT (conftest)
N, DIM, K = 60, 8, 10
CATALOG = make_catalog(N, n_merchants=6, item_id_format="i{:06d}")
VECTORS = unit_vectors(N, dim=DIM, seed=11)
USER = "u00001"
HISTORY_ROWS = (0, 3, 6)
BUCKET = "tastebud-artifacts"
REGION = "eu-west-1"
REQUESTS_AFTER_FAULT = 10
# A breaker reset long enough that the 10 timed requests all fall inside one open period (no probe among them).
BREAKER_RESET_S = 1.0
# Beyond the request's own measured work: the doubles are threads of this process (the GIL and 2 cores shared with
# the client), so a timed-out read returns after its deadline plus a thread wake-up, and a reset or a close of a TLS
# connection costs a few scheduler slices. Small next to every budget's timeouts, so an extra attempt or a longer
# timeout than the knobs say still fails the bound.
SCHEDULING_SLACK_S = 0.025

Reply = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class Fault:
    kind: str  # "hung" | "reply" | "reset"
    reply: Reply | None = None  # kind "reply": the service's own error answer


HUNG = Fault("hung")
RESET = Fault("reset")


# --------------------------------------------------------------------------------------------------- wire formats
def dynamodb_reply(status: int, document: dict[str, Any]) -> Reply:
    """DynamoDB's JSON 1.0 answer; botocore checks ``x-amz-crc32`` against the body when it is present."""
    body = json.dumps(document).encode()
    return status, {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": "R" * 52,
                    "x-amz-crc32": str(zlib.crc32(body))}, body


def dynamodb_error(status: int, code: str, message: str) -> Reply:
    """An error as DynamoDB sends it: the shape name after the service namespace in ``__type``."""
    return dynamodb_reply(status, {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})


PROFILE = {"user_id": {"S": USER}, "preferences": {"L": []}}
HISTORY = [{"item_id": {"S": str(CATALOG.item_ids[row])}, "weight": {"N": "3"}, "last_ts": {"N": str(NOW - 100 * n)}}
           for n, row in enumerate(HISTORY_ROWS)]


@dataclass
class HttpRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


def dynamodb_table(request: HttpRequest) -> Reply:
    """GetItem of the profile and the history Query of ``DynamoFeatureStore`` for USER (others are unknown)."""
    operation = request.headers["x-amz-target"].removeprefix("DynamoDB_20120810.")
    document = json.loads(request.body)
    if operation == "GetItem":
        known = document["Key"]["user_id"]["S"] == USER
        return dynamodb_reply(200, {"Item": PROFILE} if known else {})
    if operation == "Query":
        items = HISTORY if document["ExpressionAttributeValues"][":u"]["S"] == USER else []
        return dynamodb_reply(200, {"Count": len(items), "Items": items, "ScannedCount": len(items)})
    return dynamodb_error(400, "ValidationException", f"unexpected operation {operation}")


def user_tower(request: HttpRequest) -> Reply:
    """InvokeEndpoint of the user tower: the mean of the history items' vectors (the wire format is what matters)."""
    if not urlsplit(request.target).path.endswith("/invocations"):
        return sagemaker_error("ValidationError", 400, {"Message": f"unexpected path {request.target}"})
    (instance,) = json.loads(request.body)["instances"]
    rows = CATALOG.rows_of(instance["history_item_ids"])
    return sagemaker_reply([VECTORS[rows].mean(axis=0).tolist()])


def opensearch_domain() -> FakeOpenSearchDomain:
    domain = FakeOpenSearchDomain()
    admin = OpenSearchIndexAdmin(domain_client(domain), "items")
    admin.swap_alias(admin.create("idx-1", DIM))
    admin.bulk_load("items-idx-1", admin.documents(CATALOG, VECTORS))
    return domain


def domain_answer(domain: FakeOpenSearchDomain) -> Callable[[HttpRequest], Reply]:
    def answer(request: HttpRequest) -> Reply:
        response = domain.urlopen(request.method, request.target, body=request.body, headers=request.headers)
        return response.status, dict(response.headers), response.data

    return answer


# ------------------------------------------------------------------------------------------------------ the doubles
def reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN: SO_LINGER on with a zero timeout discards the connection at once."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


class FaultySocketServer:
    """Accepts connections on 127.0.0.1 and serves each from a thread; ``fault`` changes what new traffic gets.

    ``contacts`` counts every connection accepted and every request received (what "the network was reached"
    means for the breaker checks). ``heal`` clears the fault and releases every held connection.
    """

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = int(self.listener.getsockname()[1])
        self.fault: Fault | None = None
        self.contacts = 0
        self.requests = 0
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def inject(self, fault: Fault) -> None:
        self._released = threading.Event()
        self.fault = fault

    def heal(self) -> None:
        self.fault = None
        self._released.set()

    def close(self) -> None:
        self._closed = True
        self._released.set()
        self.listener.close()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.close()

    def count(self, *, request: bool) -> None:
        with self._lock:
            self.contacts += 1
            self.requests += request

    def hold(self, sock: socket.socket) -> None:
        """Hung: keep the connection open and say nothing until healed (then close it)."""
        self._released.wait()
        with contextlib.suppress(OSError):
            sock.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay on relayed small writes
            self._sockets.append(sock)
            self.count(request=False)
            threading.Thread(target=self._connection, args=(sock,), daemon=True).start()

    def _connection(self, sock: socket.socket) -> None:
        if self.fault is HUNG:
            self.hold(sock)  # a stopped process: the kernel completed the TCP handshake, nobody answers
            return
        try:
            self.serve(sock)
        except OSError:  # the client went away (its timeout) or the test ended
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def serve(self, sock: socket.socket) -> None:
        raise NotImplementedError


class FaultyHttpsService(FaultySocketServer):
    """An HTTPS endpoint of an AWS service: ``healthy`` answers each request unless a fault says otherwise."""

    def __init__(self, tls: ssl.SSLContext, healthy: Callable[[HttpRequest], Reply]) -> None:
        self._tls = tls
        self._healthy = healthy
        super().__init__()

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def serve(self, sock: socket.socket) -> None:
        stream = self._tls.wrap_socket(sock, server_side=True)
        reader = stream.makefile("rb")
        while (request := read_request(reader)) is not None:
            self.count(request=True)
            fault = self.fault
            if fault is HUNG:
                self.hold(stream)
                return
            if fault is RESET:
                reset(stream)
                return
            status, headers, body = fault.reply if fault is not None and fault.reply else self._healthy(request)
            head = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}", f"Content-Length: {len(body)}",
                    "Connection: keep-alive", *(f"{name}: {value}" for name, value in headers.items()
                                                if name.lower() != "content-length")]
            stream.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)


def read_request(reader: Any) -> HttpRequest | None:
    line = reader.readline()
    if not line:
        return None
    method, target, _ = line.decode().split(" ", 2)
    headers: dict[str, str] = {}
    while (header := reader.readline()) not in (b"\r\n", b""):
        name, _, value = header.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", 0)))
    return HttpRequest(method, target, headers, body)


class FaultyTcpProxy(FaultySocketServer):
    """A TCP proxy in front of a Redis server (TLS passes through end to end); every chunk the client sends is a
    request for the fault to act on."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        super().__init__()

    def serve(self, sock: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self._upstream_port))
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sockets.append(upstream)
        threading.Thread(target=self._pump_back, args=(upstream, sock), daemon=True).start()
        try:
            while data := sock.recv(65536):
                self.count(request=True)
                fault = self.fault
                if fault is HUNG:
                    self.hold(sock)
                    return
                if fault is RESET:
                    reset(sock)
                    return
                upstream.sendall(data)
        finally:
            upstream.close()

    @staticmethod
    def _pump_back(upstream: socket.socket, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                sock.sendall(data)


# --------------------------------------------------------------------------------------------------- the service
@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fault-artifacts") / "build"
    directory.mkdir()
    CATALOG.save(directory / "catalog.npz")
    tiny_ranker(directory / "ranker.onnx")
    (directory / "stock_snapshot.json").write_text(json.dumps({"out_of_stock": ["i000002"], "quantities": {}}))
    (directory / "preference_terms.json").write_text("[]")
    (directory / "manifest.json").write_text(json.dumps({
        "version": "v1", "model_version": "two-tower-m1", "index_version": "idx-1", "feature_version": FEATURE_VERSION,
        "created_at": NOW, "retrieval": {"kind": "content", "dimension": DIM},
        "ranker": {"features": list(FEATURE_NAMES)}, "data": {"fingerprint": "f1"}}))
    return directory


@dataclass
class World:
    settings: Settings
    service: RecommendationService
    doubles: dict[str, FaultySocketServer] = field(default_factory=dict)


@pytest.fixture
def world(artifacts: Path, stock_cache: StockCache, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    assert stock_cache.server.tls is not None
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(stock_cache.server.tls.server_cert, stock_cache.server.tls.server_key)
    sagemaker, dynamodb = FaultyHttpsService(tls, user_tower), FaultyHttpsService(tls, dynamodb_table)
    opensearch = FaultyHttpsService(tls, domain_answer(opensearch_domain()))
    elasticache = FaultyTcpProxy(stock_cache.server.port)
    doubles = {"sagemaker": sagemaker, "opensearch": opensearch, "dynamodb": dynamodb, "elasticache": elasticache}
    # Every client trusts the doubles' certificate (the stock cache's CA) through the standard variables.
    trust_only(monkeypatch, stock_cache.trusted_ca)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(stock_cache.trusted_ca))
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", sagemaker.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb.url)
    try:
        with mock_aws():  # S3 (artifacts) and Secrets Manager (the AUTH token) only: used while the service builds
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
            S3ArtifactStore(BUCKET, "artifacts", client=s3).publish(artifacts, "v1")
            secrets = boto3.client("secretsmanager")
            secret = secrets.create_secret(Name="redis-auth", SecretString=stock_cache.deployment.secret_string)["ARN"]
            settings = Settings(
                artifacts=tmp_path / "cache", backend="aws", aws_region=REGION, sagemaker_endpoint="user-tower",
                opensearch_endpoint=opensearch.url, opensearch_index_alias="items",
                redis_url=f"rediss://localhost:{elasticache.port}/0", redis_auth_secret=secret,
                artifacts_s3_uri=f"s3://{BUCKET}/artifacts/", profiles_table="profiles", history_table="history",
            ).with_knobs(aws_breaker_reset_s=BREAKER_RESET_S, redis_breaker_reset_s=BREAKER_RESET_S)
            service = build_aws_service(settings, clients=AwsClients(s3=s3, secretsmanager=secrets),
                                        clock=lambda: NOW)
        heap.freeze_startup_heap()  # and what this world built (botocore's models, moto, TLS: a 60-110 ms collection)
        yield World(settings, service, dict(doubles))
    finally:
        for double in doubles.values():
            double.close()


# ------------------------------------------------------------------------------------------------------ the cases
STAGE = {"sagemaker": "retrieve", "opensearch": "retrieve", "dynamodb": "features", "elasticache": "stock"}
BREAKER = {"sagemaker": "sagemaker", "opensearch": "opensearch", "dynamodb": "dynamodb", "elasticache": "redis"}

CASES: list[tuple[str, str, Fault]] = [
    ("sagemaker", "hung", HUNG),
    ("sagemaker", "503_service_unavailable", Fault("reply", sagemaker_error(
        "ServiceUnavailable", 503, {"Message": "The service is unavailable. Try your call again."}))),
    ("sagemaker", "500_model_error", Fault("reply", model_error(500, {"error": "OOM when allocating tensor"}))),
    ("sagemaker", "throttled", Fault("reply", sagemaker_error(
        "ThrottlingException", 400, {"message": "Rate exceeded"}))),
    ("sagemaker", "reset", RESET),
    ("opensearch", "hung", HUNG),
    ("opensearch", "503", Fault("reply", opensearch_error(
        503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no cluster-manager];"))),
    ("opensearch", "429", Fault("reply", opensearch_error(
        429, "rejected_execution_exception", "rejected execution of coordinating operation [search]"))),
    ("opensearch", "reset", RESET),
    ("dynamodb", "hung", HUNG),
    ("dynamodb", "500_internal_server_error", Fault("reply", dynamodb_error(
        500, "InternalServerError", "Internal server error"))),
    ("dynamodb", "throttled", Fault("reply", dynamodb_error(
        400, "ProvisionedThroughputExceededException", "The level of configured provisioned throughput for the "
        "table was exceeded. Consider increasing your provisioning level with the UpdateTable API."))),
    ("dynamodb", "throttling_exception", Fault("reply", dynamodb_error(
        400, "ThrottlingException", "Throughput exceeds the current capacity for one or more global secondary "
        "indexes. DynamoDB is automatically scaling your index so please try again shortly."))),
    ("dynamodb", "reset", RESET),
    ("elasticache", "hung", HUNG),
    ("elasticache", "reset", RESET),
]


def fault_budget_s(adapter: str, settings: Settings) -> tuple[float, str]:
    """What a failing call of ``adapter`` may cost a request by the knobs: (seconds, how it is made up)."""
    knobs = settings.knobs
    retry = request_retry(knobs)
    backoff = sum(min(retry.max_delay, retry.base_delay * 2**n) for n in range(retry.attempts - 1))
    if adapter in ("sagemaker", "opensearch"):
        timeout_ms = knobs.encoder_timeout_ms if adapter == "sagemaker" else knobs.index_timeout_ms
        return (retry.attempts * timeout_ms / 1000 + backoff,
                f"{timeout_ms} ms x {retry.attempts} attempts + back-off cap {backoff * 1000:g} ms")
    if adapter == "dynamodb":  # no retries (SDK or adapter): the first failed read ends the stage
        return knobs.features_timeout_ms / 1000, f"{knobs.features_timeout_ms} ms x 1 attempt"
    return knobs.redis_timeout_ms / 1000, f"{knobs.redis_timeout_ms} ms x 1 attempt (no client retries)"


def timed(service: RecommendationService) -> tuple[float, Any]:
    started = time.perf_counter()
    page = service.recommend(USER, k=K)
    return time.perf_counter() - started, page


@pytest.mark.parametrize(("adapter", "name", "fault"), CASES, ids=[f"{a}-{n}" for a, n, _ in CASES])
def test_a_fault_costs_the_first_requests_at_most_the_dependency_budget(world: World, adapter: str, name: str,
                                                                        fault: Fault) -> None:
    service, double = world.service, world.doubles[adapter]
    breaker = service.breakers[BREAKER[adapter]]
    fail_max = breaker.fail_max
    stage = STAGE[adapter]

    timed(service)  # opens the keep-alive connections (TLS handshakes): a warm container
    healthy = [timed(service) for _ in range(5)]
    assert all(page.degraded == [] and len(page.items) == K for _, page in healthy), [p.degraded for _, p in healthy]
    work_s = max(elapsed for elapsed, _ in healthy)
    budget_s, made_of = fault_budget_s(adapter, world.settings)
    bound_s = budget_s + work_s + SCHEDULING_SLACK_S

    requests_before = double.requests
    double.inject(fault)
    times: list[float] = []
    contacts_when_open: int | None = None
    opened_at = 0.0
    for n in range(1, REQUESTS_AFTER_FAULT + 1):
        elapsed, page = timed(service)
        times.append(elapsed)
        # The page is still answered: the stage falls back (popular + history, the user as cold, the snapshot).
        assert len(page.items) == K and page.degraded == [stage], (n, page.degraded)
        if contacts_when_open is None and breaker_state(breaker) == "down":
            assert n == fail_max, f"the circuit opened after {n} failed requests, fail_max is {fail_max}"
            contacts_when_open, opened_at = double.contacts, time.monotonic()
    print(f"\n{adapter} x {name}: first request {times[0] * 1000:.1f} ms, slowest of the first "
          f"{REQUESTS_AFTER_FAULT} {max(times) * 1000:.1f} ms; bound {bound_s * 1000:.1f} ms = {made_of} + "
          f"healthy request {work_s * 1000:.1f} ms + slack {SCHEDULING_SLACK_S * 1000:g} ms "
          f"[{', '.join(f'{t * 1000:.0f}' for t in times)}]")
    assert max(times) <= bound_s, (f"{adapter} {name}: slowest of the first {REQUESTS_AFTER_FAULT} requests took "
                                   f"{max(times) * 1000:.0f} ms, over {bound_s * 1000:.0f} ms ({made_of})")

    # No retries beyond the adapter's own (botocore's and urllib3's are off): at most `attempts` requests per call.
    if adapter != "elasticache":  # (the proxy sees TLS records, not commands)
        attempts = 1 if adapter == "dynamodb" else request_retry(world.settings.knobs).attempts
        assert double.requests - requests_before <= fail_max * attempts, double.requests - requests_before
    # Open after fail_max: the later requests never reached the network (no connection, no request).
    assert contacts_when_open is not None and breaker_state(breaker) == "down"
    assert double.contacts == contacts_when_open
    assert service.dependencies()[BREAKER[adapter]] == "down"
    if adapter == "elasticache":  # a stock update has no fallback: the write fails, at once while open
        started = time.perf_counter()
        with pytest.raises(DependencyError, match="stock"):
            service.set_stock(str(CATALOG.item_ids[1]), False, 0)
        assert time.perf_counter() - started <= bound_s
        assert double.contacts == contacts_when_open

    double.heal()
    time.sleep(max(0.0, opened_at + breaker.reset_timeout + 0.05 - time.monotonic()))  # the breaker's own clock
    _, page = timed(service)  # the half-open probe reaches the healed double and closes the circuit
    assert page.degraded == [] and len(page.items) == K
    assert breaker_state(breaker) == "ok" and double.contacts > contacts_when_open
