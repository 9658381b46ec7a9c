"""Redis servers for the contract suites: Debian's redis-server in plain TCP, and as the stock cache runs on AWS.

``elasticache_redis`` is the client the AWS composition builds (``aws_composition.build_clients``) from the serving
functions' environment in template.yaml, the AUTH token read from a Secrets Manager secret shaped like the
template's, against a redis-server with TLS only, that token and ElastiCache's restricted commands. The server's
certificate comes from a throwaway CA that the client trusts through the default trust store (``SSL_CERT_FILE``):
production passes no CA either, it verifies ElastiCache's Amazon-issued certificate against Lambda's trust store.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis_servers import (
    ELASTICACHE_RESTRICTED_COMMANDS,
    RedisServer,
    StockCache,
    composed_redis_client,
    make_tls_files,
    run_redis_server,
    stock_cache_deployment,
    trust_only,
)

from helpers import load_template


@pytest.fixture(scope="session")
def plain_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with run_redis_server(tmp_path_factory.mktemp("redis-plain")) as server:
        yield server


@pytest.fixture
def plain_redis(plain_redis_server: RedisServer) -> Iterator[Any]:
    client = redis.Redis(port=plain_redis_server.port)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def stock_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StockCache]:
    deployment = stock_cache_deployment(load_template())
    directory = tmp_path_factory.mktemp("stock-cache")
    tls = make_tls_files(directory / "tls") if deployment.transit_encryption else None
    untrusted = make_tls_files(directory / "untrusted", ca_name="A CA the client does not trust")
    # 127.0.0.2 too: a name the certificate does not cover, for the hostname check.
    with run_redis_server(directory / "server", tls=tls, password=deployment.auth_token,
                          bind=("127.0.0.1", "127.0.0.2"), disabled_commands=ELASTICACHE_RESTRICTED_COMMANDS) as server:
        yield StockCache(server, deployment, untrusted.ca_cert)


@pytest.fixture(scope="session")
def elasticache_client(stock_cache: StockCache) -> Iterator[Any]:
    client = composed_redis_client(stock_cache)  # built once: moto and boto3 cost ~1 s per build
    yield client
    client.close()


@pytest.fixture
def elasticache_redis(stock_cache: StockCache, elasticache_client: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The AWS composition's client on the stock cache, trusting its CA, emptied first (FLUSHDB is allowed on
    ElastiCache). A test that drops connections makes new ones, each with a full TLS handshake and AUTH."""
    trust_only(monkeypatch, stock_cache.trusted_ca)
    elasticache_client.flushdb(asynchronous=True)  # freeing a large seed must not outlast the request deadline
    return elasticache_client
