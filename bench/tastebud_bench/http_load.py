"""`tastebud bench --http`: what the HTTP server adds to the Lambda handler, and how close it gets to the CPU bound.

1. In process: the Lambda handler called with API Gateway v2 events (built beforehand, exactly as the server builds
   them): wall-clock median/p99 and the CPU time per call. CPU bound = cores ÷ CPU time per call, the throughput
   this machine could reach if serving added nothing.
2. Through HTTP: the same service behind `tastebud serve`'s server (gunicorn master + ``workers`` uvicorn workers),
   forked from this process after the service is built (copy-on-write; each worker has its own Redis connection
   to one shared embedded Redis). Load comes from wrk when it is installed (C, ~1 core's worth of overhead less
   than a Python client), else from a Python keep-alive client:
   * keep-alive latency: one connection, one request at a time;
   * throughput with 8 and 32 keep-alive connections: requests/s, p50/p99, errors (socket errors and non-2xx).
     The best of these closed-loop runs is the measured CAPACITY.
3. Open loop (``rate_fractions``, e.g. 0.5): requests at a fixed rate of that fraction of the capacity, over keep-alive
   connections, each latency measured from its SCHEDULED send time (``tastebud_bench.open_loop``, the wrk2 way):
   p50/p90/p99/p99.9, achieved rate, errors. This is the tail a client population sees; closed-loop p99 hides it.

Logging is the same on both sides: Powertools' per-request INFO line and the access log are off (WARNING), so the
comparison is the request path itself. The load generator, the embedded Redis and the server share the cores.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tastebud.api.http import LambdaHandler, create_handler
from tastebud.heap import freeze_startup_heap
from tastebud.live.runtime import ServingRuntime
from tastebud.local_server import LocalLambdaContext, http_api_event
from tastebud.pipeline.service import RecommendationService
from tastebud_bench.closed_loop import K, LoadResult, python_load, request_body, wrk_load
from tastebud_bench.cpu_accounting import CpuSample, children_cpu_seconds, machine_cpu_seconds, process_cpu_seconds
from tastebud_bench.forked_server import ForkedServer
from tastebud_bench.open_loop import DEFAULT_CONNECTIONS, OpenLoopResult, open_loop_load, recommendation_bodies
from tastebud_bench.tail_timeline import explain, join, kernel_counters, read_timelines, write_csv
from tastebud_bench.tail_timeline import plot as plot_tail

CONNECTIONS = (8, 32)
KEEP_ALIVE_GOAL_MS = 1.0
THROUGHPUT_GOAL = 0.70
OPEN_LOOP_P99_GOAL_MS = 5.0  # DESIGN §5: at 1M items, HTTP p99 <= 5 ms at half of the measured capacity
# A route that calls nothing (no service, no dependency): its open-loop latency at a rate is what HTTP, the load
# generator and the machine cost at that rate, whatever the request does (scripts/latency_floor.py).
NO_WORK_PATH = "/health/live"

LoadGenerator = Callable[..., LoadResult]  # wrk_load or python_load
# One open-loop run: its report row, the run itself (send and answer times) and its request ids' prefix.
TracedRun = tuple[dict[str, Any], OpenLoopResult, str]


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


def fixed_rate_queue(service_ms: np.ndarray, *, rate: float, workers: int, requests: int = 20_000,
                     seed: int = 0) -> dict[str, float]:
    """Latency percentiles of an idealised server at a fixed request rate, from service times measured in process.

    ``workers`` workers, each serving one request at a time in arrival order; request n goes to worker
    n % workers (keep-alive connections spread evenly, requests sent round the connections, as the open loop
    does); each service time is drawn from ``service_ms``. Nothing else runs: no HTTP, no load generator, no other
    process. What the work itself and the waits behind the request ahead cost at that rate; the measured open-loop
    percentiles minus these are what serving and sharing the machine add.
    """
    service = np.random.default_rng(seed).choice(np.asarray(service_ms, dtype=np.float64), requests)
    arrival = np.arange(requests) / rate * 1e3
    free_at = [0.0] * workers
    latency = np.empty(requests)
    for n in range(requests):
        worker = n % workers
        done = max(arrival[n], free_at[worker]) + service[n]
        free_at[worker] = done
        latency[n] = done - arrival[n]
    p50, p99, p999 = np.percentile(latency, [50, 99, 99.9])
    # >= 1: the in-process times were measured on a slower machine than the rate assumes, and the queue only grows
    utilisation = rate * float(service.mean()) / 1e3 / workers
    return {"p50_ms": round(float(p50), 3), "p99_ms": round(float(p99), 3), "p999_ms": round(float(p999), 3),
            "utilisation": round(utilisation, 3)}


def in_process(handler: LambdaHandler, users: Sequence[str], *, requests: int, k: int = K) -> dict[str, Any]:
    """The handler called with API Gateway events: wall-clock percentiles and CPU time per call (``wall_ms``: every
    call's time, for :func:`fixed_rate_queue`; not part of the report)."""
    headers = {"content-type": "application/json", "host": "localhost"}
    events = [http_api_event("POST", "/v1/recommendations", headers, request_body(users[i % len(users)], k),
                             str(uuid.uuid4())) for i in range(requests)]
    context = LocalLambdaContext(aws_request_id="bench")
    for event in events[:50]:  # warm caches, code paths and the Redis connection
        handler(event, context)
    wall = np.empty(requests)
    cpu_started = time.process_time()
    for i, event in enumerate(events):
        started = time.perf_counter()
        result = handler(event, context)
        wall[i] = time.perf_counter() - started
        if result["statusCode"] != 200:
            raise RuntimeError(f"in-process call answered {result['statusCode']}: {result.get('body')}")
    cpu_per_call = (time.process_time() - cpu_started) / requests
    return {"requests": requests, "p50_ms": round(float(np.percentile(wall, 50)) * 1e3, 3),
            "p99_ms": round(float(np.percentile(wall, 99)) * 1e3, 3), "mean_ms": round(float(wall.mean()) * 1e3, 3),
            "cpu_ms_per_call": round(cpu_per_call * 1e3, 3), "wall_ms": wall * 1e3}


@dataclass(frozen=True)
class _Bench:
    """What the measured runs through HTTP share: the server, the users requested, where the cores go."""

    server: ForkedServer
    users: list[str]
    k: int
    cores: int
    redis_pids: list[int]
    progress: Callable[[str], None]

    def cpu_sample(self, generator_cpu_s: Callable[[], float]) -> CpuSample:
        return CpuSample.take(self.server.cpu_seconds, self.redis_pids, generator_cpu_s)


def run_http_bench(service: RecommendationService | ServingRuntime, users: Sequence[str],
                   description: dict[str, Any], *,
                   workers: int | None = None, requests: int = 2000, duration_s: float = 10.0,
                   connections: Sequence[int] = CONNECTIONS, k: int = K,
                   after_fork: Callable[[], None] | None = None, redis_pid: int | None = None,
                   rate_fractions: Sequence[float] = (), rate_duration_s: float = 30.0,
                   rate_connections: int = DEFAULT_CONNECTIONS, timeline: Path | None = None,
                   progress: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """In-process vs keep-alive HTTP latency, throughput against the CPU bound, and (``rate_fractions``) open-loop
    latency at fixed fractions of the measured capacity (see the module docstring). ``timeline`` (a directory):
    each open-loop run's slowest 1% explained from the workers' request timelines, with every request in
    ``requests-<fraction>.csv`` and a plot ``tail-<fraction>.png`` there (tail_timeline.py)."""
    logging.getLogger("tastebud").setLevel(logging.WARNING)  # Powertools' per-request line, here and in workers
    load_before = os.getloadavg()[0]
    cores = available_cores()
    workers = workers or cores
    rng = np.random.default_rng(0)
    sample = [str(u) for u in rng.choice(np.asarray(users, dtype=object), min(2000, len(users)), replace=False)]

    progress(f"in process: {requests} handler calls")
    local, handler_ms = _in_process_as_served(service, sample, requests=requests, k=k, cores=cores)
    cpu_bound = cores / (local["cpu_ms_per_call"] / 1e3)

    load: LoadGenerator = wrk_load if shutil.which("wrk") else python_load
    generator = "wrk -t1 (keep-alive)" if load is wrk_load else "python http.client threads (keep-alive)"
    timeline_dir = Path(tempfile.mkdtemp(prefix="tastebud-timeline-")) if timeline is not None else None
    with ForkedServer(service, workers, after_fork, timeline_dir) as server:
        progress(f"HTTP: {server.url}, {workers} workers, {generator}")
        bench = _Bench(server, sample, k, cores, [redis_pid] if redis_pid else [], progress)
        load(server.url, sample, connections=max(connections), duration_s=2.0, k=k)  # warm every worker
        keep_alive = load(server.url, sample, connections=1, duration_s=duration_s / 2, k=k)
        progress(f"keep-alive p50 {keep_alive.p50_ms} ms")
        throughput = [_closed_loop_run(bench, load, count, duration_s, local["cpu_ms_per_call"], cpu_bound)
                      for count in connections]
        capacity = max(row["requests_per_s"] for row in throughput)
        bodies = recommendation_bodies(sample, k)
        traced = [_open_loop_run(bench, bodies, fraction=fraction, capacity=capacity, duration_s=rate_duration_s,
                                 connections=rate_connections, traced=timeline is not None, handler_ms=handler_ms,
                                 workers=workers) for fraction in rate_fractions]
    open_loop = [row for row, _, _ in traced]
    if timeline is not None and timeline_dir is not None:  # the workers wrote their timelines when they stopped
        _explain_tails(traced, timeline_dir, timeline, workers)

    added_ms = round(keep_alive.p50_ms - local["p50_ms"], 3)
    return {
        "system": description,
        "cores": cores,
        "workers": workers,
        # 1-minute load average before and after: other processes on the machine take cores from the bound
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "load_generator": generator,
        "in_process": local,
        "cpu_bound_requests_per_s": round(cpu_bound, 1),
        "keep_alive": {**asdict(keep_alive), "added_ms": added_ms},
        "throughput": throughput,
        "capacity_requests_per_s": capacity,
        "open_loop": open_loop,
        "goals": _goals(added_ms, throughput, open_loop),
    }


def _in_process_as_served(service: RecommendationService | ServingRuntime, users: Sequence[str], *, requests: int,
                          k: int, cores: int) -> tuple[dict[str, Any], np.ndarray]:
    """:func:`in_process` under a server worker's conditions, with the share of the cores the hypervisor took
    meanwhile; and every call's wall-clock time (ms)."""
    handler = create_handler(lambda: service)
    freeze_startup_heap()  # as each server worker does after start-up (tastebud.heap): the same GC conditions
    _, total_before, stolen_before = machine_cpu_seconds()
    local = in_process(handler, users, requests=requests, k=k)
    _, total_after, stolen_after = machine_cpu_seconds()
    local["cores_stolen"] = round((stolen_after - stolen_before) / max((total_after - total_before) / cores, 1e-9), 3)
    return local, local.pop("wall_ms")


def _closed_loop_run(bench: _Bench, load: LoadGenerator, connections: int, duration_s: float, handler_cpu_ms: float,
                     cpu_bound: float) -> dict[str, Any]:
    """Throughput over ``connections`` keep-alive connections: the load result and where the CPU went."""
    before = bench.cpu_sample(children_cpu_seconds)  # wrk (0 for the Python client: threads)
    result = load(bench.server.url, bench.users, connections=connections, duration_s=duration_s, k=bench.k)
    after = bench.cpu_sample(children_cpu_seconds)
    server_cpu_ms = (after.server - before.server) / max(result.requests, 1) * 1e3
    bench.progress(f"{connections} connections: {result.requests_per_s} req/s, {result.errors} errors")
    return {**asdict(result), "share_of_cpu_bound": round(result.requests_per_s / cpu_bound, 3),
            "server_cpu_ms_per_request": round(server_cpu_ms, 3),
            # the handler's share of the server's CPU: 1.0 = serving HTTP costs nothing
            "handler_share_of_server_cpu": round(handler_cpu_ms / server_cpu_ms, 3),
            # where the cores went during the run: the server's processes, and everything
            # else (the load generator, the Redis server, other processes on the machine)
            **after.core_shares_since(before, bench.cores)}


def _open_loop_run(bench: _Bench, bodies: list[bytes], *, fraction: float, capacity: float, duration_s: float,
                   connections: int, traced: bool, handler_ms: np.ndarray, workers: int) -> TracedRun:
    """Requests at ``fraction`` of the capacity, latency from each one's scheduled send time; beside it, the same
    schedule on a route that does no work and on an idealised server, and where the cores went (per worker too)."""
    rate = fraction * capacity
    bench.progress(f"open loop: {rate:.0f} req/s ({fraction:.0%} of {capacity:.0f}) for {duration_s:.0f} s, "
                   f"{connections} connections")
    before = bench.cpu_sample(time.process_time)  # the open-loop client runs in this process
    worker_pids = bench.server.worker_pids()
    workers_before = [process_cpu_seconds([pid]) for pid in worker_pids]
    prefix = f"open-loop-{fraction:g}-"
    kernel_before = kernel_counters()
    run = open_loop_load(bench.server.url, bodies, rate=rate, duration_s=duration_s, connections=connections,
                         id_prefix=prefix if traced else None)
    kernel = {name: value - kernel_before[name] for name, value in kernel_counters().items()}
    after = bench.cpu_sample(time.process_time)
    worker_cpu_s = [process_cpu_seconds([pid]) - seconds for pid, seconds in zip(worker_pids, workers_before,
                                                                                  strict=True)]
    elapsed_s = after.elapsed_s(before, bench.cores)
    bench.progress(f"open loop {fraction:.0%}: p50 {run.p50_ms} p99 {run.p99_ms} p99.9 {run.p999_ms} ms, "
                   f"{run.achieved_rate} req/s, {run.errors} errors")
    row = {key: value for key, value in asdict(run).items()
           if key not in ("latencies_ms", "scheduled_s", "sent_s", "answered_s")}
    row["kernel_events"] = kernel  # machine-wide, during the run (/proc/vmstat)
    # The floor under the p99 above: the same schedule on a route that does no work.
    row["no_work_floor"] = _no_work_floor(bench, fraction, rate, duration_s, connections)
    # The same rate on an idealised server running the in-process handler times (see fixed_rate_queue).
    row["queue_model"] = fixed_rate_queue(handler_ms, rate=rate, workers=workers)
    # Each worker's share: keep-alive connections pin requests to workers, so an uneven split queues.
    row["cores_per_worker"] = [round(seconds / elapsed_s, 2) for seconds in worker_cpu_s]
    return ({"fraction_of_capacity": fraction, "capacity_requests_per_s": capacity, **row,
             **after.core_shares_since(before, bench.cores)}, run, prefix)


def _no_work_floor(bench: _Bench, fraction: float, rate: float, duration_s: float, connections: int) -> dict[str, Any]:
    """The same open-loop schedule on :data:`NO_WORK_PATH`: what HTTP, the generator and the machine cost at it."""
    floor = open_loop_load(bench.server.url, [None], rate=rate, duration_s=duration_s, connections=connections,
                           path=NO_WORK_PATH)
    bench.progress(f"open loop {fraction:.0%}, GET {NO_WORK_PATH} at the same rate: p50 {floor.p50_ms} p99 "
                   f"{floor.p99_ms} ms, {floor.errors} errors")
    return {"path": NO_WORK_PATH, **{key: getattr(floor, key) for key in (
        "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "errors", "send_lag_p99_ms")}}


def _explain_tails(traced: list[TracedRun], timeline_dir: Path, timeline: Path, workers: int) -> None:
    """Each open-loop run's slowest 1% explained (its row's ``timeline``) from the workers' request timelines in
    ``timeline_dir`` (then removed); every request (CSV) and a plot of the tail written to ``timeline``."""
    rows = read_timelines(timeline_dir)
    shutil.rmtree(timeline_dir, ignore_errors=True)
    timeline.mkdir(parents=True, exist_ok=True)
    for row, run, prefix in traced:
        joined = join(run.scheduled_s, run.sent_s, run.answered_s, rows, prefix)
        row["timeline"] = explain(joined)
        name = f"{row['fraction_of_capacity']:g}"
        write_csv(joined, timeline / f"requests-{name}.csv")
        plot_tail(joined, row["timeline"], timeline / f"tail-{name}.png",
                  f"open loop at {row['target_rate']:.0f} req/s ({row['fraction_of_capacity']:.0%} of capacity), "
                  f"{workers} workers: p99 {row['p99_ms']:.2f} ms")
        row["timeline"]["files"] = [str(timeline / f"requests-{name}.csv"), str(timeline / f"tail-{name}.png")]


def _goals(added_ms: float, throughput: list[dict[str, Any]], open_loop: list[dict[str, Any]]) -> dict[str, bool]:
    """The design's goals met or not (the open-loop one only with a run at half of the capacity)."""
    best = max(throughput, key=lambda row: row["requests_per_s"])
    return {
        "keep_alive_median_within_1ms": added_ms <= KEEP_ALIVE_GOAL_MS,
        "throughput_70pct_of_cpu_bound_0_errors": all(row["errors"] == 0 for row in throughput)
        and best["share_of_cpu_bound"] >= THROUGHPUT_GOAL,
        **({"open_loop_p99_5ms_at_half_capacity_0_errors": all(
            row["p99_ms"] <= OPEN_LOOP_P99_GOAL_MS and row["errors"] == 0
            for row in open_loop if row["fraction_of_capacity"] == 0.5)}
           if any(row["fraction_of_capacity"] == 0.5 for row in open_loop) else {}),
    }
