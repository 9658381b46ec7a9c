"""The composition root of ``TASTEBUD_BACKEND=aws``: builds the AWS clients and wires the AWS adapters.

Once per Lambda container (the init phase, via ``composition.lazy_runtime``):
  1. read ``CURRENT`` from the artifacts bucket and download ONLY what the function serves from
     (manifest, catalog, ranker, stock snapshot, preference terms; not the local ScaNN index or vectors)
     into ``TASTEBUD_ARTIFACTS`` (``/tmp``), reused by warm starts;
  2. build clients with short timeouts and NO SDK-level retries (the adapters retry once with jitter, so
     a request's worst case stays bounded): SageMaker runtime, DynamoDB, S3, Secrets Manager, OpenSearch
     (SigV4, HTTPS), ElastiCache (TLS + AUTH token from Secrets Manager);
  3. wire user encoder -> k-NN index -> ONNX ranker -> fairness -> stock filter, exactly like the embedded
     backend (``composition.build_runtime``) but with remote adapters.
Tests pass ready clients through ``AwsClients`` (moto, botocore stubs, a fake OpenSearch connection).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError
from opensearchpy.exceptions import OpenSearchException

from tastebud.adapters.aws.dynamodb_features import DynamoFeatureStore
from tastebud.adapters.aws.live_pointer import LivePointer, read_live
from tastebud.adapters.aws.local_endpoints import local_endpoints_in_use
from tastebud.adapters.aws.opensearch_admin import OpenSearchIndexAdmin
from tastebud.adapters.aws.opensearch_index import OpenSearchIndex
from tastebud.adapters.aws.retry import RetryPolicy
from tastebud.adapters.aws.s3_artifacts import S3ArtifactStore
from tastebud.adapters.aws.sagemaker_encoder import SageMakerUserEncoder, history_payload, two_tower_payload
from tastebud.adapters.aws.stock import (
    IndexSyncedStockStore,
    auth_token_from_secret,
    elasticache_client,
    seed_stock_snapshot,
)
from tastebud.adapters.embedded.onnx_ranker import OnnxRanker
from tastebud.adapters.guarded_redis import redis_breaker
from tastebud.adapters.redis_stock import RedisStockStore
from tastebud.artifacts import Manifest
from tastebud.catalog import Catalog
from tastebud.circuit import circuit_breaker
from tastebud.errors import ArtifactMismatchError, ArtifactsMissingError, TastebudError
from tastebud.features.ranker_prior import with_prior
from tastebud.features.schema import FEATURE_NAMES
from tastebud.features.two_tower import TwoTowerVocab
from tastebud.pipeline.service import RecommendationService
from tastebud.ports import StockStore
from tastebud.recommendation import Versions
from tastebud.serving_version import check_manifest
from tastebud.settings import Settings, SettingsError

# What serving reads from a version (the rest — ScaNN index, item vectors, users.npz — is for the embedded
# backend and offline evaluation; skipping it keeps the cold start short and /tmp small).
# Not text_vectors.npy (items x 384 float32): the endpoint's model holds that table (two_tower/serving.py).
SERVING_FILES = ("manifest.json", "catalog.npz", "ranker.onnx", "stock_snapshot.json", "preference_terms.json",
                 "two_tower_vocab.npz", "two_tower_vocab.json")


@dataclass
class AwsClients:
    """Ready clients; any left as None is built from the settings (boto3 default credential chain)."""

    s3: Any = None
    dynamodb: Any = None
    sagemaker_runtime: Any = None
    secretsmanager: Any = None
    opensearch: Any = None
    redis: Any = None


# What refuses a new version and keeps the old one serving: the AWS calls' errors, broken or mismatched artifacts.
REFUSABLE = (TastebudError, BotoCoreError, ClientError, OpenSearchException, OSError, ValueError, RuntimeError)

# Back-off between the request path's attempts (``dependency_retries``): full jitter, at most this long.
REQUEST_RETRY_BASE_S = 0.005
REQUEST_RETRY_CAP_S = 0.02


def request_retry(knobs: Any) -> RetryPolicy:
    """The retries of the request path's remote calls (SageMaker, OpenSearch): ``1 + dependency_retries`` attempts."""
    return RetryPolicy(attempts=1 + knobs.dependency_retries, base_delay=REQUEST_RETRY_BASE_S,
                       max_delay=REQUEST_RETRY_CAP_S)


def boto_config(*, connect_timeout: float, read_timeout: float, max_attempts: int = 1) -> Any:
    from botocore.config import Config

    return Config(connect_timeout=connect_timeout, read_timeout=read_timeout, tcp_keepalive=True,
                  retries={"total_max_attempts": max_attempts, "mode": "standard"})


def opensearch_client(endpoint: str, region: str, credentials: Any, *, timeout: float) -> Any:
    """HTTPS + SigV4 (service ``es``) client for an OpenSearch Service domain; no transport-level retries.

    ``endpoint``: the domain's host name, with or without ``https://``; a ``:port`` is kept (443 otherwise).
    ``http://host:port`` (a local stand-in, docs/DEPLOY.md "Run the functions locally") drops TLS; port 80 otherwise.
    """
    from urllib.parse import urlsplit

    from opensearchpy import OpenSearch, Urllib3AWSV4SignerAuth, Urllib3HttpConnection

    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    if not parts.hostname:
        raise SettingsError(f"TASTEBUD_OPENSEARCH_ENDPOINT has no host name: {endpoint!r}")
    tls = parts.scheme != "http"
    return OpenSearch(hosts=[{"host": parts.hostname, "port": parts.port or (443 if tls else 80)}],
                      http_auth=Urllib3AWSV4SignerAuth(credentials, region, "es"),
                      use_ssl=tls, verify_certs=tls, ssl_show_warn=False, connection_class=Urllib3HttpConnection,
                      timeout=timeout, max_retries=0, retry_on_timeout=False, pool_maxsize=4)


def build_clients(settings: Settings, given: AwsClients | None = None) -> AwsClients:
    given = given or AwsClients()
    knobs = settings.knobs
    if all(value is not None for value in vars(given).values()):
        return given
    import boto3

    session = boto3.session.Session(region_name=settings.aws_region)
    features_s = knobs.features_timeout_ms / 1000  # DynamoDB on the request path: each read's deadline
    fast = boto_config(connect_timeout=features_s, read_timeout=features_s)
    # A connect (TCP + TLS handshake) gets the call's budget too: after a read timeout the retry opens a new
    # connection, and a hung endpoint (it accepts, never handshakes) cost a fixed 200 ms there, 3x the budget.
    encoder_s = knobs.encoder_timeout_ms / 1000
    encoder = boto_config(connect_timeout=encoder_s, read_timeout=encoder_s)
    bulk = boto_config(connect_timeout=2, read_timeout=20, max_attempts=3)  # start-up downloads only
    clients = AwsClients(
        s3=given.s3 or session.client("s3", config=bulk),
        dynamodb=given.dynamodb or session.client("dynamodb", config=fast),
        sagemaker_runtime=given.sagemaker_runtime or session.client("sagemaker-runtime", config=encoder),
        secretsmanager=given.secretsmanager or session.client("secretsmanager", config=bulk),
        opensearch=given.opensearch,
        redis=given.redis,
    )
    if clients.opensearch is None:
        assert settings.opensearch_endpoint and session.region_name
        clients.opensearch = opensearch_client(settings.opensearch_endpoint, session.region_name,
                                               session.get_credentials(), timeout=knobs.index_timeout_ms / 1000)
    if clients.redis is None:
        assert settings.redis_url and settings.redis_auth_secret
        token = auth_token_from_secret(settings.redis_auth_secret, client=clients.secretsmanager)
        # The stock stage's budget bounds every call, connects (TLS handshake) included: with a fixed 50 ms read
        # and 500 ms connect, a hung node cost the first requests 57 / 510 / 511 ms against a 10 ms budget.
        deadline_s = knobs.redis_timeout_ms / 1000
        clients.redis = elasticache_client(settings.redis_url, token, socket_timeout=deadline_s,
                                           connect_timeout=deadline_s, allow_plaintext=local_endpoints_in_use())
    return clients


def build_aws_service(settings: Settings, *, clients: AwsClients | None = None, clock: Callable[[], float] = time.time,
                      pointer: LivePointer | Literal["read"] | None = "read") -> RecommendationService:
    """Fetch the current artifact version from S3 and wire the AWS adapters (see the module docstring).

    ``pointer``: the LIVE.json the caller read (the version follower's), None for none; by default it is read here.
    """
    assert settings.backend == "aws" and settings.opensearch_index_alias
    assert settings.profiles_table and settings.history_table
    clients = build_clients(settings, clients)
    knobs = settings.knobs
    served = fetch_version(settings, clients, pointer)
    directory, manifest = served.directory, served.manifest
    catalog = Catalog.load(directory / "catalog.npz")
    terms_path = directory / "preference_terms.json"
    terms = json.loads(terms_path.read_text()) if terms_path.is_file() else []

    retry = request_retry(knobs)
    breakers = aws_breakers(knobs)
    no_text = np.zeros((catalog.size, 0), dtype=np.float32)  # the endpoint's model holds the text table
    payload = (two_tower_payload(TwoTowerVocab.load(directory, no_text))
               if manifest.retrieval.get("kind") == "two_tower" else history_payload(catalog))
    encoder = SageMakerUserEncoder(served.endpoint, payload, dimension=served.dimension,
                                   client=clients.sagemaker_runtime, retry=retry, breaker=breakers["sagemaker"])
    index = OpenSearchIndex(clients.opensearch, served.index_name, catalog, manifest.index_version,
                            require_in_stock=knobs.index_filter_in_stock, timeout=knobs.index_timeout_ms / 1000,
                            retry=retry, breaker=breakers["opensearch"])
    features = DynamoFeatureStore(settings.profiles_table, settings.history_table, catalog,
                                  preference_terms=terms, client=clients.dynamodb, breaker=breakers["dynamodb"])
    ranker = with_prior(OnnxRanker(directory / "ranker.onnx", manifest.model_version, n_features=len(FEATURE_NAMES)),
                        manifest.ranker)

    redis_store = RedisStockStore(clients.redis, breakers["redis"])
    snapshot = json.loads((directory / "stock_snapshot.json").read_text())
    seed_stock_snapshot(clients.redis, manifest.data.get("fingerprint", manifest.version), snapshot)
    stock: StockStore = redis_store
    if knobs.index_filter_in_stock:
        stock = IndexSyncedStockStore(redis_store, OpenSearchIndexAdmin(
            clients.opensearch, settings.opensearch_index_alias, breaker=breakers["opensearch"]))
    return RecommendationService.wire(
        catalog=catalog, features=features, encoder=encoder, index=index, ranker=ranker, stock=stock, knobs=knobs,
        versions=Versions(manifest.model_version, manifest.index_version, manifest.feature_version), clock=clock,
        fallback_out_of_stock=frozenset(snapshot["out_of_stock"]), breakers=breakers)


@dataclass(frozen=True)
class ServedVersion:
    """What one version serves from: its files here, its manifest, and the endpoint and index it names."""

    directory: Path
    manifest: Manifest
    endpoint: str
    index_name: str
    dimension: int


def fetch_version(settings: Settings, clients: AwsClients,
                  pointer: LivePointer | Literal["read"] | None) -> ServedVersion:
    """Download what the function serves from (``SERVING_FILES``) of the version LIVE.json names, and check that
    the manifest describes the model and index the pointer names (they switch together or not at all)."""
    assert settings.opensearch_index_alias
    bucket, prefix = settings.artifacts_bucket_and_prefix
    store = S3ArtifactStore(bucket, prefix, client=clients.s3)
    if pointer == "read":
        pointer = read_live(clients.s3, bucket, prefix)
    if pointer is None:
        # No hot swap has run yet: only an explicitly configured endpoint + CURRENT may serve (tests, dev).
        if not settings.sagemaker_endpoint:
            raise ArtifactsMissingError(
                f"no LIVE.json under {store.uri}: run the index hot-swap state machine for the bootstrap version "
                "(docs/DEPLOY.md, first deploy)")
        version, endpoint, index_name = store.current_version(), settings.sagemaker_endpoint, \
            settings.opensearch_index_alias
    else:
        version, endpoint, index_name = pointer.version, pointer.endpoint, pointer.index
    directory = store.fetch(version, settings.artifacts, include=SERVING_FILES)
    manifest = Manifest.read(directory)
    check_manifest(manifest)
    if pointer is not None:
        pointer.check(manifest.model_version, manifest.index_version)  # model and index in lock-step
    dimension = manifest.retrieval.get("dimension")
    if not isinstance(dimension, int):
        raise ArtifactMismatchError(f"manifest {manifest.version}: retrieval.dimension missing")
    return ServedVersion(directory, manifest, endpoint, index_name, dimension)


def aws_breakers(knobs: Any) -> dict[str, Any]:
    """One circuit breaker per remote dependency of a serving process (``tastebud.circuit``).

    The OpenSearch breaker is shared by the k-NN search and the stock updates mirrored into the documents: both
    talk to the same domain. ElastiCache gets the Redis knobs (its per-call deadline is the stock stage's budget).
    """
    aws = {name: circuit_breaker(name, fail_max=knobs.aws_breaker_fail_max, reset_timeout_s=knobs.aws_breaker_reset_s,
                                 throw_new_error_on_trip=False)
           for name in ("sagemaker", "opensearch", "dynamodb")}
    return {**aws, "redis": redis_breaker("redis", fail_max=knobs.redis_breaker_fail_max,
                                          reset_timeout_s=knobs.redis_breaker_reset_s)}
