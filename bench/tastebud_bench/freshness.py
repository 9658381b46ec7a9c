"""`tastebud bench --artifacts DIR --freshness`: how fresh the running system is, measured through the handler.

* event → reflected: POST /v1/events (one purchase) until the next recommendation's history has the item;
* item upsert → retrievable: PUT /v1/items/{id} (embedded in process) until retrieval returns the item;
* a load run at a steady request rate during which two version hot swaps, a burst of events and a burst of
  item upserts happen: failed requests (non-200 or short pages), and p99 around the swaps vs steady state.
Every call goes through the Lambda handler with API Gateway events, on a private copy of the artifacts with
its own embedded Redis and data directory, so the measured system is never changed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tastebud.api.http import create_handler
from tastebud.artifacts import LocalArtifactStore
from tastebud.composition.local import build_runtime
from tastebud.live.runtime import ServingRuntime
from tastebud.local_server import LocalLambdaContext, http_api_event
from tastebud.settings import Settings
from tastebud_training.progress import track

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def _call(handler: Handler, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    request_id = uuid.uuid4().hex
    data = b"" if body is None else json.dumps(body).encode()
    event = http_api_event(method, path, {"content-type": "application/json"}, data, request_id)
    response = handler(event, LocalLambdaContext(aws_request_id=request_id))
    return int(response["statusCode"]), json.loads(response.get("body") or "null")


def _pct(samples: list[float]) -> dict[str, float]:
    values = np.asarray(samples) if samples else np.asarray([np.nan])
    return {"p50": round(float(np.percentile(values, 50)), 3), "p99": round(float(np.percentile(values, 99)), 3),
            "max": round(float(values.max()), 3), "n": len(samples)}


def _private_copy(artifacts: Path) -> tuple[Path, Path, Path]:
    work = Path(tempfile.mkdtemp(prefix="tastebud-freshness-"))
    copy = work / "artifacts"
    store = LocalArtifactStore(artifacts)
    current = store.current_version()
    (copy / "versions").mkdir(parents=True)
    shutil.copytree(store.fetch(current, artifacts), copy / "versions" / current)
    (copy / "CURRENT").write_text(current + "\n")
    return work, copy, work / "data"


def _publish_copy(artifacts: Path, name: str) -> None:
    """A new version: the live one under a new name (exercises load, warm-up, smoke test and swap)."""
    store = LocalArtifactStore(artifacts)
    staging = store.staging_dir(name)
    shutil.copytree(store.current_dir(), staging, dirs_exist_ok=True)
    manifest = json.loads((staging / "manifest.json").read_text())
    manifest.update(version=name, model_version=f"{manifest['model_version']}-{name}", created_at=time.time())
    (staging / "manifest.json").write_text(json.dumps(manifest))
    store.publish(staging, name)


def event_freshness(runtime: ServingRuntime, handler: Handler, n: int, progress: bool) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    catalog = runtime.view.catalog
    users = runtime.view.version.users.user_ids
    samples, reflected = [], 0
    for trial in track(range(n), "event -> next answer", enabled=progress):
        user = str(users[rng.integers(users.size)])
        item = str(catalog.item_ids[rng.integers(catalog.size)])
        started = time.perf_counter()
        _call(handler, "POST", "/v1/events", {"events": [{"event_id": f"fresh-{trial}-{uuid.uuid4().hex}",
                                                          "user_id": user, "item_id": item, "event_type": "purchase",
                                                          "timestamp": time.time()}]})
        status, _ = _call(handler, "POST", "/v1/recommendations", {"user_id": user, "k": 20})
        samples.append((time.perf_counter() - started) * 1000)
        events, _ = runtime._live_reads.read_user(user)
        profile = runtime.view.profile(user, events)
        reflected += status == 200 and str(catalog.item_ids[profile.history_rows[0]]) == item
    return {"post_to_next_answer_ms": _pct(samples), "reflected_in_next_answer": f"{reflected}/{n}"}


def item_freshness(runtime: ServingRuntime, handler: Handler, n: int, progress: bool) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    catalog = runtime.view.catalog
    samples, retrievable, refused = [], 0, 0
    for trial in track(range(n), "item upsert -> retrievable", enabled=progress):
        template = int(rng.integers(catalog.size))
        merchant = str(catalog.merchant_ids[catalog.item_merchant[template]])
        item_id = f"bench-fresh-{trial}-{uuid.uuid4().hex[:6]}"
        body = {"merchant_id": merchant, "title": f"Bench special no. {trial} with smoked paprika",
                "category": str(catalog.categories[catalog.item_category[template]]),
                "description": "a dish added while serving", "price": 9.5}
        started = time.perf_counter()
        status, _ = _call(handler, "PUT", f"/v1/items/{item_id}", body)
        view = runtime.view
        row = view.catalog.row_of(item_id)
        found = False
        if status == 200 and row is not None and len(view.fresh):
            # Retrievable = the retrieval stage returns it for a query pointing at it (the fresh side index).
            query = view.fresh.vectors[int(np.flatnonzero(view.fresh.rows == row)[0])]
            rows, _ = view.fresh.search(query, 10)
            found = row in rows.tolist()
        samples.append((time.perf_counter() - started) * 1000)
        retrievable += found
        refused += status != 200
    return {"put_to_retrievable_ms": _pct(samples), "retrievable": f"{retrievable}/{n}", "non_200": refused}


def load_run(runtime: ServingRuntime, handler: Handler, artifacts: Path, *, seconds: float, rate: float,
             progress: bool) -> dict[str, Any]:
    """Steady request rate; two hot swaps, an event burst and an item burst during the run."""
    users = runtime.view.version.users.user_ids
    latencies: list[tuple[float, float, bool]] = []  # (start offset s, ms, ok)
    lock = threading.Lock()
    started = time.perf_counter()
    swaps: list[tuple[float, float]] = []
    stop = threading.Event()

    def client(worker: int, workers: int) -> None:
        rng = np.random.default_rng(worker)
        period = workers / rate
        next_at = started + worker * period / workers
        while not stop.is_set():
            now = time.perf_counter()
            if now < next_at:
                time.sleep(next_at - now)
            at = time.perf_counter()
            status, body = _call(handler, "POST", "/v1/recommendations",
                                 {"user_id": str(users[rng.integers(users.size)]), "k": 20})
            ok = status == 200 and len(body["items"]) == 20
            with lock:
                latencies.append((at - started, (time.perf_counter() - at) * 1000, ok))
            next_at += period

    def chaos() -> None:
        plan = [(seconds * 0.25, "swap"), (seconds * 0.45, "events"), (seconds * 0.55, "items"),
                (seconds * 0.7, "swap")]
        for at, action in plan:
            if stop.wait(max(0.0, started + at - time.perf_counter())):
                return
            t0 = time.perf_counter() - started
            if action == "swap":
                _publish_copy(artifacts, f"swap-{int(t0)}-{uuid.uuid4().hex[:4]}")
                runtime.check_current()
                swaps.append((t0, time.perf_counter() - started))
            elif action == "events":
                _event_burst(runtime, handler, users)
            else:
                _item_burst(runtime, handler)

    workers = 4
    threads = [threading.Thread(target=client, args=(w, workers)) for w in range(workers)]
    threads.append(threading.Thread(target=chaos))
    for thread in threads:
        thread.start()
    for _ in track(range(int(seconds)), "load run (s)", enabled=progress):
        time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join()
    return {"seconds": seconds, "target_rate_rps": rate, **_load_summary(latencies, swaps),
            "final_version": runtime.version_name}


def _event_burst(runtime: ServingRuntime, handler: Handler, users: np.ndarray) -> None:
    """Four POSTs of 500 clicks each, by random ``users`` on random items."""
    catalog = runtime.view.catalog
    rng = np.random.default_rng(7)
    for batch in range(4):
        _call(handler, "POST", "/v1/events", {"events": [
            {"event_id": f"burst-{batch}-{i}-{uuid.uuid4().hex}",
             "user_id": str(users[rng.integers(users.size)]),
             "item_id": str(catalog.item_ids[rng.integers(catalog.size)]), "event_type": "click",
             "timestamp": time.time()} for i in range(500)]})


def _item_burst(runtime: ServingRuntime, handler: Handler) -> None:
    """Twenty new items PUT one after the other."""
    catalog = runtime.view.catalog
    for i in range(20):
        _call(handler, "PUT", f"/v1/items/burst-{i}-{uuid.uuid4().hex[:6]}", {
            "merchant_id": str(catalog.merchant_ids[i % catalog.merchant_ids.size]),
            "title": f"Burst item {i}", "category": str(catalog.categories[i % catalog.categories.size])})


def _load_summary(latencies: list[tuple[float, float, bool]], swaps: list[tuple[float, float]]) -> dict[str, Any]:
    """Failures and latency of the load run's requests, those started within 1 s of a swap apart from the rest."""

    def around_swap(t: float) -> bool:
        return any(start - 1.0 <= t <= end + 1.0 for start, end in swaps)

    steady = [ms for t, ms, _ in latencies if not around_swap(t)]
    during = [ms for t, ms, _ in latencies if around_swap(t)]
    return {"requests": len(latencies), "failed": sum(not ok for _, _, ok in latencies), "swaps": len(swaps),
            "swap_s": [round(end - start, 2) for start, end in swaps],
            "latency_ms_steady": _pct(steady), "latency_ms_during_swaps": _pct(during)}


def dead_redis(runtime: ServingRuntime, handler: Handler, n: int, progress: bool) -> dict[str, Any]:
    """What a dead Redis adds to a request: the same requests with the embedded server alive, then SIGKILLed.

    The supervisor is not running here (no watcher), so the server stays dead for the second half: the first
    failures open the circuit, after which the stock stage and the live-state read are skipped, not waited for.
    """
    import os
    import signal

    users = runtime.view.version.users.user_ids[:n].tolist()

    def measure(label: str) -> tuple[list[float], list[float], set[str]]:
        total, stock, degraded = [], [], set()
        for user in track(users, label, enabled=progress):
            started = time.perf_counter()
            status, body = _call(handler, "POST", "/v1/recommendations", {"user_id": str(user), "k": 20})
            total.append((time.perf_counter() - started) * 1000)
            if status == 200:
                stock.append(body["stage_ms"]["stock"])
                degraded |= set(body["degraded"])
        return total, stock, degraded

    alive_total, alive_stock, _ = measure("redis alive")
    pid = runtime._supervisor.server_pid() if runtime._supervisor is not None else None
    if not pid:
        return {"skipped": "not an embedded Redis"}
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    dead_total, dead_stock, degraded = measure("redis dead")
    # A fault's transition is judged by its slowest request: the first few lie above any p99 of n (issue 21).
    return {"requests": n, "slowest_of_first_10_after_the_kill_ms": round(max(dead_total[:10]), 3),
            "alive_total_ms": _pct(alive_total), "dead_total_ms": _pct(dead_total),
            "alive_stock_ms": _pct(alive_stock), "dead_stock_ms": _pct(dead_stock),
            "degraded_while_dead": sorted(degraded), "circuit": str(runtime._breaker.current_state
                                                                    if runtime._breaker is not None else "none")}


def run_freshness(artifacts: Path, *, trials: int = 200, seconds: float = 60.0, rate: float = 100.0,
                  progress: bool = True) -> dict[str, Any]:
    from tastebud.api.http import logger as api_logger

    api_logger.setLevel("ERROR")  # a line per request (or per outage request) would bury the report, break --json
    work, copy, data = _private_copy(artifacts)
    runtime = build_runtime(Settings(artifacts=copy, redis_db_path=work / "redis" / "live.rdb", data_dir=data),
                            watch=False)
    assert isinstance(runtime, ServingRuntime)
    handler = create_handler(lambda: runtime)
    try:
        for user in runtime.view.version.users.user_ids[:50].tolist():  # warm-up
            _call(handler, "POST", "/v1/recommendations", {"user_id": str(user), "k": 20})
        report = {"artifacts": str(artifacts), "items": runtime.view.catalog.size,
                  "item_embedder": runtime.view.version.embedder is not None,
                  "events": event_freshness(runtime, handler, trials, progress),
                  "items_upsert": item_freshness(runtime, handler, max(trials // 4, 10), progress),
                  "load": load_run(runtime, handler, copy, seconds=seconds, rate=rate, progress=progress)}
        report["fresh_source_candidates"] = len(runtime.view.fresh)
        report["dead_redis"] = dead_redis(runtime, handler, 500, progress)  # last: it kills the server
        return report
    finally:
        runtime.close()
        shutil.rmtree(work, ignore_errors=True)

