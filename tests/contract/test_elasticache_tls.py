"""The AWS composition's ElastiCache client against a redis-server run as template.yaml runs the stock cache.

The contract suites (test_stock_store.py, test_live_state.py) pass through this client; here: what it must refuse
and how fast. Each refusal is the domain error the stock stage maps (DependencyError "stock"), within a bound that
a request can afford: a wrong token or an untrusted certificate must not cost retries with back-off.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_servers import StockCache, composed_redis_client, trust_only

from tastebud.adapters.aws.stock import auth_token_from_secret, elasticache_client, seed_stock_snapshot
from tastebud.adapters.redis_stock import QUANTITY_KEY, RedisStockStore
from tastebud.errors import DependencyError
from tastebud.settings import ServingKnobs, SettingsError

NO_RETRY = Retry(NoBackoff(), 0)
# One connect + TLS handshake + AUTH on this machine takes ~5 ms; the composed client's connect and read
# deadlines are the stock stage's budget (redis_timeout_ms).
REFUSAL_BOUND_S = 1.0


def refused_within(store: RedisStockStore, match: str) -> float:
    started = time.perf_counter()
    with pytest.raises(DependencyError, match=match) as raised:
        store.out_of_stock(["a"])
    assert raised.value.stage == "stock"
    return time.perf_counter() - started


def test_the_client_is_tls_with_verification_and_auth(stock_cache: StockCache, elasticache_redis: Any) -> None:
    connection = elasticache_redis.connection_pool.get_connection()
    try:
        assert isinstance(connection, redis.SSLConnection)
        assert connection.cert_reqs == ssl.CERT_REQUIRED and connection.check_hostname
        assert connection.password == stock_cache.deployment.auth_token
        assert isinstance(connection._sock, ssl.SSLSocket)  # connected: the handshake happened
        assert connection._sock.getpeercert()["subjectAltName"] == (("DNS", "localhost"), ("IP Address", "127.0.0.1"))
    finally:
        elasticache_redis.connection_pool.release(connection)


def test_the_server_refuses_plaintext_and_clients_without_the_token(stock_cache: StockCache,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixture is as strict as ElastiCache: a client that dropped TLS or AUTH would fail the contract suites."""
    port = stock_cache.server.port
    plaintext = redis.Redis(port=port, password=stock_cache.deployment.auth_token, socket_timeout=0.5,
                            socket_connect_timeout=0.5, retry=NO_RETRY)
    with pytest.raises(redis.ConnectionError):
        plaintext.ping()
    trust_only(monkeypatch, stock_cache.trusted_ca)
    anonymous = redis.Redis(port=port, ssl=True, ssl_cert_reqs="required", host="localhost", socket_timeout=0.5,
                            socket_connect_timeout=0.5, retry=NO_RETRY)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    anonymous.close()


def test_a_wrong_token_is_a_stock_dependency_error_not_a_hang(stock_cache: StockCache,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    trust_only(monkeypatch, stock_cache.trusted_ca)
    client = composed_redis_client(stock_cache, secret_string=json.dumps({"token": "an-old-token-after-rotation"}))
    try:
        elapsed = refused_within(RedisStockStore(client), "invalid username-password|WRONGPASS|AUTH")
    finally:
        client.close()
    assert elapsed < REFUSAL_BOUND_S, f"a refused AUTH took {elapsed:.2f} s"


def test_a_certificate_from_an_untrusted_ca_fails_the_handshake(stock_cache: StockCache,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    trust_only(monkeypatch, stock_cache.untrusted_ca)
    client = composed_redis_client(stock_cache)
    try:
        elapsed = refused_within(RedisStockStore(client), "CERTIFICATE_VERIFY_FAILED")
    finally:
        client.close()
    assert elapsed < REFUSAL_BOUND_S, f"a failed handshake took {elapsed:.2f} s"


def test_a_name_the_certificate_does_not_cover_fails_the_handshake(stock_cache: StockCache,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """127.0.0.2 reaches the same server with a certificate for localhost/127.0.0.1: the hostname check is on."""
    trust_only(monkeypatch, stock_cache.trusted_ca)
    client = composed_redis_client(stock_cache, address="127.0.0.2")
    try:
        elapsed = refused_within(RedisStockStore(client), "CERTIFICATE_VERIFY_FAILED.*(IP address mismatch|hostname)")
    finally:
        client.close()
    assert elapsed < REFUSAL_BOUND_S, f"a failed handshake took {elapsed:.2f} s"


def test_a_server_that_accepts_but_never_completes_the_handshake_is_bounded(stock_cache: StockCache,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A TCP listener that never speaks TLS (a hung node, a security group that half-opens): connect succeeds,
    the handshake waits. The connect timeout bounds it, retries must not multiply it."""
    trust_only(monkeypatch, stock_cache.trusted_ca)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        deadline_s = ServingKnobs().redis_timeout_ms / 1000  # what the composition gives connect and read
        client = elasticache_client(f"rediss://localhost:{listener.getsockname()[1]}/0",
                                    stock_cache.deployment.auth_token, socket_timeout=deadline_s,
                                    connect_timeout=deadline_s)
        try:
            elapsed = refused_within(RedisStockStore(client), "stock")
        finally:
            client.close()
    # The handshake's deadline once (no retry), plus scheduling on a loaded machine.
    assert elapsed < deadline_s + 0.25, f"a handshake that never completes took {elapsed:.2f} s"


def test_the_first_start_seeds_a_catalog_scale_snapshot(elasticache_redis: Any) -> None:
    """1M items, the scale of docs/BENCHMARKS.md: every quantity in one MULTI (~20 MB over TLS). Through the
    request path's 50 ms deadline the seed timed out (already at 300k here), at every cold start, and the failure
    was swallowed: the snapshot's sold-out items were served."""
    ids = [f"i{n}" for n in range(1_000_000)]
    snapshot = {"out_of_stock": ids[::20], "quantities": dict.fromkeys(ids, 3)}
    assert seed_stock_snapshot(elasticache_redis, "v1", snapshot) is True
    assert seed_stock_snapshot(elasticache_redis, "v2", snapshot) is False  # seeded once, never wiped
    assert RedisStockStore(elasticache_redis).out_of_stock(["i0", "i1", "i20"]).tolist() == [True, False, True]
    assert elasticache_redis.hlen(QUANTITY_KEY) == len(ids)


def test_containers_that_start_together_seed_once(elasticache_redis: Any) -> None:
    """Once LIVE.json appears, every waiting container builds its service at the same moment and finds the cache
    empty. One of them seeds; the others neither block the shard with their own copy nor wipe a stock update made
    between two seeds."""
    ids = [f"i{n}" for n in range(200_000)]
    snapshot = {"out_of_stock": ids[::20], "quantities": dict.fromkeys(ids, 3)}
    start = threading.Barrier(4)

    def cold_start() -> bool:
        start.wait()
        return seed_stock_snapshot(elasticache_redis, "v1", snapshot)

    with ThreadPoolExecutor(4) as pool:
        seeded = list(pool.map(lambda _: cold_start(), range(4)))
    assert sorted(seeded) == [False, False, False, True]
    assert RedisStockStore(elasticache_redis).out_of_stock(["i0", "i1"]).tolist() == [True, False]


def test_elasticache_restricted_commands_do_not_exist(elasticache_redis: Any) -> None:
    """Like ElastiCache: nothing on the serving path may rely on CONFIG, SAVE, DEBUG, ..."""
    with pytest.raises(redis.ResponseError, match="unknown command"):
        elasticache_redis.config_get("maxmemory")


@pytest.mark.parametrize("stored", ["missing", "binary"])
def test_an_unreadable_token_secret_is_a_stock_dependency_error(stored: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        secrets = boto3.client("secretsmanager")
        secret_id = "stock-cache-auth"
        if stored == "binary":
            secret_id = secrets.create_secret(Name=secret_id, SecretBinary=b"\x00token")["ARN"]
        with pytest.raises(DependencyError, match=r"AUTH token secret: (ResourceNotFoundException|KeyError)"):
            auth_token_from_secret(secret_id, client=secrets)


def test_the_client_refuses_a_url_without_tls() -> None:
    with pytest.raises(SettingsError, match="rediss://"):
        elasticache_client("redis://localhost:6379/0", "token", socket_timeout=0.01, connect_timeout=0.01)
