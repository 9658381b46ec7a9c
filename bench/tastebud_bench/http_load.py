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

import http.client
import json
import logging
import multiprocessing
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from tastebud.api.http import LambdaHandler, create_handler
from tastebud.heap import freeze_startup_heap
from tastebud.live.runtime import ServingRuntime
from tastebud.local_server import LocalLambdaContext, http_api_event
from tastebud.service import RecommendationService
from tastebud_bench.open_loop import DEFAULT_CONNECTIONS, OpenLoopResult, open_loop_load, recommendation_bodies
from tastebud_bench.tail_timeline import explain, join, kernel_counters, read_timelines, write_csv
from tastebud_bench.tail_timeline import plot as plot_tail

K = 20
CONNECTIONS = (8, 32)
SERVER_START_TIMEOUT_S = 120.0
KEEP_ALIVE_GOAL_MS = 1.0
THROUGHPUT_GOAL = 0.70
OPEN_LOOP_P99_GOAL_MS = 5.0  # DESIGN §5: at 1M items, HTTP p99 <= 5 ms at half of the measured capacity
# A route that calls nothing (no service, no dependency): its open-loop latency at a rate is what HTTP, the load
# generator and the machine cost at that rate, whatever the request does (scripts/latency_floor.py).
NO_WORK_PATH = "/health/live"


@dataclass(frozen=True)
class LoadResult:
    connections: int
    requests: int
    duration_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_detail: dict[str, int]


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


def _request_body(user_id: str, k: int) -> bytes:
    return json.dumps({"user_id": user_id, "k": k}).encode()


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
    events = [http_api_event("POST", "/v1/recommendations", headers, _request_body(users[i % len(users)], k),
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


def process_cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of ``pids`` so far (Linux /proc; processes that are gone count 0)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU time of this process's finished children (the wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def core_shares(busy_s: float, server_s: float, redis_s: float, generator_s: float, elapsed_s: float,
                stolen_s: float = 0.0) -> dict:
    """Where the cores went during a run: the server, Redis, the load generator, everything else, and the time the
    hypervisor ran other guests instead of this machine (``stolen``: on a shared VM, a pause of every process)."""
    return {"cores_busy": round(busy_s / elapsed_s, 2), "cores_server": round(server_s / elapsed_s, 2),
            "cores_redis": round(redis_s / elapsed_s, 2), "cores_load_generator": round(generator_s / elapsed_s, 2),
            "cores_other_processes": round((busy_s - server_s - redis_s - generator_s) / elapsed_s, 2),
            "cores_stolen": round(stolen_s / elapsed_s, 3)}


def machine_cpu_seconds() -> tuple[float, float, float]:
    """(busy, total, stolen) CPU seconds of the whole machine since boot, summed over cores (Linux /proc/stat).

    busy = user + nice + system + irq + softirq; stolen = steal (a virtual machine's cores given to other guests)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    stolen = fields[7]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    ticks = os.sysconf("SC_CLK_TCK")
    return (total - idle - stolen) / ticks, total / ticks, stolen / ticks


def _serve_forked(service: RecommendationService | ServingRuntime, workers: int, url_pipe: Any,
                  after_fork: Callable[[], None] | None, timeline_dir: Path | None = None) -> None:
    """The child process: becomes the gunicorn master of ``workers`` workers around ``service``."""
    from tastebud.http_server.prefork import ServerOptions, serve

    if after_fork is not None:
        after_fork()  # before gunicorn forks again: its workers inherit the result
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nothing on the bench's stdout (it may be the --json report)
    serve(lambda: create_handler(lambda: service),
          ServerOptions(port=0, workers=workers, access_log=False, log_level="warning", timeline_dir=timeline_dir),
          on_ready=url_pipe.send)


class ForkedServer:
    """`tastebud serve`'s server around an already built service, in a child process (context manager)."""

    def __init__(self, service: RecommendationService | ServingRuntime, workers: int,
                 after_fork: Callable[[], None] | None = None, timeline_dir: Path | None = None) -> None:
        self._service = service
        self._workers = workers
        self._after_fork = after_fork
        self._timeline_dir = timeline_dir
        self._process: Any = None
        self.url = ""

    def __enter__(self) -> ForkedServer:
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(target=_serve_forked, daemon=False,
                                        args=(self._service, self._workers, sender, self._after_fork,
                                              self._timeline_dir))
        self._process.start()
        if not receiver.poll(SERVER_START_TIMEOUT_S):
            self._process.kill()
            raise RuntimeError("the HTTP server did not start")
        self.url = receiver.recv()
        _wait_healthy(self.url, self._workers)
        return self

    def cpu_seconds(self) -> float:
        """User + system CPU time of the master and its workers so far (Linux /proc)."""
        return process_cpu_seconds([self._process.pid, *self.worker_pids()])

    def worker_pids(self) -> list[int]:
        master = self._process.pid
        return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]

    def __exit__(self, *exc: object) -> None:
        os.kill(self._process.pid, signal.SIGTERM)
        self._process.join(timeout=60)
        if self._process.is_alive():
            self._process.kill()


def _wait_healthy(url: str, workers: int) -> None:
    """Every worker answers /health (new connections spread over the workers)."""
    parts = urlsplit(url)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    healthy = 0
    while healthy < 4 * workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} is not healthy")
        connection = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=5)
        try:
            connection.request("GET", "/health")
            healthy += connection.getresponse().status == 200
        except OSError:
            time.sleep(0.1)
        finally:
            connection.close()


_WRK_SCRIPT = """
local users = {%(users)s}
local counter = 0
local headers = {["content-type"] = "application/json"}
request = function()
  counter = counter + 1
  local body = '{"user_id": "' .. users[(counter %% #users) + 1] .. '", "k": %(k)d}'
  return wrk.format("POST", "/v1/recommendations", headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}\\n', summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(99), e.connect, e.read, e.write, e.status,
    e.timeout))
end
"""


def wrk_load(url: str, users: Sequence[str], *, connections: int, duration_s: float, k: int = K) -> LoadResult:
    """wrk with one thread and ``connections`` keep-alive connections, POSTing recommendations round-robin."""
    with tempfile.TemporaryDirectory(prefix="tastebud-wrk-") as workdir:
        script = Path(workdir) / "recommend.lua"
        ids = ", ".join(json.dumps(str(user)) for user in users)
        script.write_text(_WRK_SCRIPT % {"users": ids, "k": k})
        command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--timeout", "10s",
                   "-s", str(script), url]
        run = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration_s + 120)
    match = re.search(r"WRK_JSON (\{.*\})", run.stdout)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{run.stdout}\n{run.stderr}")
    stats = json.loads(match.group(1))
    errors = {name: int(stats[name]) for name in ("connect", "read", "write", "status", "timeout")}
    duration = stats["duration_us"] / 1e6
    return LoadResult(connections, stats["requests"], round(duration, 2), round(stats["requests"] / duration, 1),
                      round(stats["p50_us"] / 1e3, 3), round(stats["p99_us"] / 1e3, 3), sum(errors.values()), errors)


def python_load(url: str, users: Sequence[str], *, connections: int, duration_s: float, k: int = K) -> LoadResult:
    """Fallback without wrk: ``connections`` threads, each with one keep-alive http.client connection."""
    import threading

    parts = urlsplit(url)
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures = [0] * connections
    deadline = time.monotonic() + duration_s

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=10)
        n = index
        while time.monotonic() < deadline:
            body = _request_body(users[n % len(users)], k)
            n += connections
            started = time.perf_counter()
            try:
                connection.request("POST", "/v1/recommendations", body=body,
                                   headers={"content-type": "application/json"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
            if ok:
                latencies[index].append(time.perf_counter() - started)
            else:
                failures[index] += 1
        connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    samples = np.asarray([x for per_client in latencies for x in per_client])
    count = int(samples.size + sum(failures))
    return LoadResult(connections, count, round(elapsed, 2), round(count / elapsed, 1),
                      round(float(np.percentile(samples, 50)) * 1e3, 3) if samples.size else float("nan"),
                      round(float(np.percentile(samples, 99)) * 1e3, 3) if samples.size else float("nan"),
                      int(sum(failures)), {"failed": int(sum(failures))})


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
    handler = create_handler(lambda: service)
    freeze_startup_heap()  # as each server worker does after start-up (tastebud.heap): the same GC conditions
    _, total_before, stolen_before = machine_cpu_seconds()
    local = in_process(handler, sample, requests=requests, k=k)
    _, total_after, stolen_after = machine_cpu_seconds()
    local["cores_stolen"] = round((stolen_after - stolen_before) / max((total_after - total_before) / cores, 1e-9), 3)
    handler_ms = local.pop("wall_ms")
    cpu_bound = cores / (local["cpu_ms_per_call"] / 1e3)

    load = wrk_load if shutil.which("wrk") else python_load
    generator = "wrk -t1 (keep-alive)" if load is wrk_load else "python http.client threads (keep-alive)"
    timeline_dir = Path(tempfile.mkdtemp(prefix="tastebud-timeline-")) if timeline is not None else None
    traced: list[tuple[dict[str, Any], OpenLoopResult, str]] = []
    with ForkedServer(service, workers, after_fork, timeline_dir) as server:
        progress(f"HTTP: {server.url}, {workers} workers, {generator}")
        load(server.url, sample, connections=max(connections), duration_s=2.0, k=k)  # warm every worker
        keep_alive = load(server.url, sample, connections=1, duration_s=duration_s / 2, k=k)
        progress(f"keep-alive p50 {keep_alive.p50_ms} ms")
        throughput = []
        for count in connections:
            redis_pids = [redis_pid] if redis_pid else []
            cpu_before, (busy_before, total_before, stolen_before) = server.cpu_seconds(), machine_cpu_seconds()
            redis_before, children_before = process_cpu_seconds(redis_pids), children_cpu_seconds()
            result = load(server.url, sample, connections=count, duration_s=duration_s, k=k)
            server_cpu_s = server.cpu_seconds() - cpu_before
            busy_after, total_after, stolen_after = machine_cpu_seconds()
            redis_cpu_s = process_cpu_seconds(redis_pids) - redis_before
            generator_cpu_s = children_cpu_seconds() - children_before  # wrk (0 for the Python client: threads)
            elapsed_s = (total_after - total_before) / cores
            server_cpu_ms = server_cpu_s / max(result.requests, 1) * 1e3
            progress(f"{count} connections: {result.requests_per_s} req/s, {result.errors} errors")
            throughput.append({**asdict(result), "share_of_cpu_bound": round(result.requests_per_s / cpu_bound, 3),
                               "server_cpu_ms_per_request": round(server_cpu_ms, 3),
                               # the handler's share of the server's CPU: 1.0 = serving HTTP costs nothing
                               "handler_share_of_server_cpu": round(local["cpu_ms_per_call"] / server_cpu_ms, 3),
                               # where the cores went during the run: the server's processes, and everything
                               # else (the load generator, the Redis server, other processes on the machine)
                               **core_shares(busy_after - busy_before, server_cpu_s, redis_cpu_s, generator_cpu_s,
                                             elapsed_s, stolen_after - stolen_before)})
        capacity = max(row["requests_per_s"] for row in throughput)
        open_loop = []
        bodies = recommendation_bodies(sample, k)
        for fraction in rate_fractions:
            rate = fraction * capacity
            progress(f"open loop: {rate:.0f} req/s ({fraction:.0%} of {capacity:.0f}) for {rate_duration_s:.0f} s, "
                     f"{rate_connections} connections")
            redis_pids = [redis_pid] if redis_pid else []
            cpu_before, (busy_before, total_before, stolen_before) = server.cpu_seconds(), machine_cpu_seconds()
            redis_before, generator_before = process_cpu_seconds(redis_pids), time.process_time()
            worker_pids = server.worker_pids()
            workers_before = [process_cpu_seconds([pid]) for pid in worker_pids]
            prefix = f"open-loop-{fraction:g}-"
            kernel_before = kernel_counters()
            run = open_loop_load(server.url, bodies, rate=rate, duration_s=rate_duration_s,
                                 connections=rate_connections, id_prefix=prefix if timeline is not None else None)
            kernel = {name: value - kernel_before[name] for name, value in kernel_counters().items()}
            server_cpu_s = server.cpu_seconds() - cpu_before
            worker_cpu_s = [process_cpu_seconds([pid]) - before for pid, before in zip(worker_pids, workers_before,
                                                                                        strict=True)]
            busy_after, total_after, stolen_after = machine_cpu_seconds()
            redis_cpu_s = process_cpu_seconds(redis_pids) - redis_before
            generator_cpu_s = time.process_time() - generator_before  # the open-loop client runs in this process
            elapsed_s = (total_after - total_before) / cores
            progress(f"open loop {fraction:.0%}: p50 {run.p50_ms} p99 {run.p99_ms} p99.9 {run.p999_ms} ms, "
                     f"{run.achieved_rate} req/s, {run.errors} errors")
            row = {key: value for key, value in asdict(run).items()
                   if key not in ("latencies_ms", "scheduled_s", "sent_s", "answered_s")}
            row["kernel_events"] = kernel  # machine-wide, during the run (/proc/vmstat)
            floor = open_loop_load(server.url, [None], rate=rate, duration_s=rate_duration_s,
                                   connections=rate_connections, path=NO_WORK_PATH)
            progress(f"open loop {fraction:.0%}, GET {NO_WORK_PATH} at the same rate: p50 {floor.p50_ms} p99 "
                     f"{floor.p99_ms} ms, {floor.errors} errors")
            # The floor under the p99 above: the same schedule on a route that does no work.
            row["no_work_floor"] = {"path": NO_WORK_PATH, **{key: getattr(floor, key) for key in (
                "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "errors", "send_lag_p99_ms")}}
            # The same rate on an idealised server running the in-process handler times (see fixed_rate_queue).
            row["queue_model"] = fixed_rate_queue(handler_ms, rate=rate, workers=workers)
            # Each worker's share: keep-alive connections pin requests to workers, so an uneven split queues.
            row["cores_per_worker"] = [round(seconds / elapsed_s, 2) for seconds in worker_cpu_s]
            open_loop.append({"fraction_of_capacity": fraction, "capacity_requests_per_s": capacity, **row,
                              **core_shares(busy_after - busy_before, server_cpu_s, redis_cpu_s, generator_cpu_s,
                                            elapsed_s, stolen_after - stolen_before)})
            traced.append((open_loop[-1], run, prefix))
    if timeline is not None and timeline_dir is not None:  # the workers wrote their timelines when they stopped
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

    added_ms = round(keep_alive.p50_ms - local["p50_ms"], 3)
    best = max(throughput, key=lambda row: row["requests_per_s"])
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
        "goals": {
            "keep_alive_median_within_1ms": added_ms <= KEEP_ALIVE_GOAL_MS,
            "throughput_70pct_of_cpu_bound_0_errors": all(row["errors"] == 0 for row in throughput)
            and best["share_of_cpu_bound"] >= THROUGHPUT_GOAL,
            **({"open_loop_p99_5ms_at_half_capacity_0_errors": all(
                row["p99_ms"] <= OPEN_LOOP_P99_GOAL_MS and row["errors"] == 0
                for row in open_loop if row["fraction_of_capacity"] == 0.5)}
               if any(row["fraction_of_capacity"] == 0.5 for row in open_loop) else {}),
        },
    }
