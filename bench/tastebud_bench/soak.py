"""The fault soak (`tastebud chaos`): mixed traffic against a real `tastebud serve` while faults are injected on a
schedule, then a check that nothing acknowledged was lost and that no read failed (issue 21).

Traffic: client threads, each with its own keep-alive connection and a steady pace (well below capacity, so that a
slow request shows a fault, not a queue): recommendations (full pages of 10 expected), event batches (unique ids),
stock updates and item upserts (each thread owns its items, so the last acknowledged state of each is known).
A connection the server drops (a killed worker's in-flight request) is retried once on a new connection, as a
client behind a load balancer would; the retry is counted. A write refused with 503 is not retried (its outcome
is "refused"); one whose connection dropped is "unknown" until a later write of the same thing is acknowledged.

Afterwards, once Redis is healthy again: every acknowledged event is a duplicate when replayed (it is in Redis)
and is in the data directory's log; every acknowledged stock state is in Redis; every acknowledged item is in the
live catalog and the log. The report gives each fault's slowest request (percentiles hide a fault transition).
One gap is reported, not failed: an event batch acknowledged only by the retry after a killed worker dropped the
connection may be missing from the log (the worker died between the Redis write and the log append; the retry is a
duplicate, and duplicates are not logged again). Redis has it; the next training does not.
"""

from __future__ import annotations

import contextlib
import csv
import http.client
import json
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tastebud.adapters.redis_live_state import PREFIX, RedisLiveState
from tastebud.adapters.redis_stock import OUT_OF_STOCK_KEY
from tastebud.processes import end_with_parent, process_alive, terminate
from tastebud_bench import faults as chaos_faults
from tastebud_bench.faults import EmbeddedRedis

PAGE = 10
READ_SHARE, EVENT_SHARE, STOCK_SHARE = 0.6, 0.2, 0.12  # the rest: item upserts
AFTER_FAULT = 10  # the requests after a fault's start that judge its transition
SLOW_REDIS_DELAY_S = 0.05
EVENT_KEY_PREFIX = PREFIX + "event:"  # the live state's de-duplication key of an applied event


@dataclass
class Sample:
    started: float  # seconds since the soak began
    ms: float
    op: str
    status: int  # 0: no answer (connection dropped twice)
    ok: bool
    retried: bool = False


@dataclass
class FaultWindow:
    name: str
    started: float
    ended: float = 0.0
    detail: str = ""


@dataclass
class Ledger:
    """What each thread's writes came to: acknowledged, refused (503) or unknown (connection dropped)."""

    events: set[str] = field(default_factory=set)
    # Acknowledged only by a retry after a dropped connection: the killed worker may have died between the Redis
    # write and the data-log append, and the retry is then a duplicate that is not logged again (a known gap).
    events_on_a_retry: set[str] = field(default_factory=set)
    stock: dict[str, bool | None] = field(default_factory=dict)  # item -> last acknowledged in_stock (None: unsure)
    items: set[str] = field(default_factory=set)
    refused: int = 0
    unknown: int = 0


class _Connection:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._connection = self._open()

    def _open(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._host, self._port, timeout=30)

    def request(self, method: str, path: str, body: Any) -> tuple[int, Any, bool]:
        """(status, JSON body, retried); status 0 when the connection dropped twice."""
        payload = json.dumps(body).encode() if body is not None else None
        for attempt in range(2):
            try:
                self._connection.request(method, path, body=payload, headers={"content-type": "application/json"})
                response = self._connection.getresponse()
                raw = response.read()
                return response.status, json.loads(raw) if raw else None, attempt > 0
            except (ConnectionError, http.client.HTTPException, TimeoutError):
                self._connection.close()
                self._connection = self._open()
        return 0, None, True

    def close(self) -> None:
        self._connection.close()


class Traffic:
    """The soak's clients (threads); ``samples`` and ``ledger`` fill while they run."""

    def __init__(self, url: str, users: list[str], items: list[str], merchant: str, *, clients: int, rate: float,
                 seed: int) -> None:
        self.url, self.users, self.merchant = url, users, merchant
        self.clients, self.rate = clients, rate
        self.samples: list[Sample] = []
        self.ledger = Ledger()
        self._items = items
        self._seed = seed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.t0 = time.monotonic()

    def start(self) -> None:
        self.t0 = time.monotonic()
        for index in range(self.clients):
            thread = threading.Thread(target=self._client, args=(index,), name=f"chaos-client-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _client(self, index: int) -> None:
        rng = random.Random(self._seed * 1000 + index)
        own_stock = self._items[index::self.clients][:20]  # this thread's items: their last state is known
        connection = _Connection(self.url)
        n = 0
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                next_at += rng.expovariate(self.rate / self.clients)
                time.sleep(max(0.0, next_at - time.monotonic()))
                n += 1
                draw = rng.random()
                if draw < READ_SHARE:
                    self._read(connection, rng.choice(self.users))
                elif draw < READ_SHARE + EVENT_SHARE:
                    self._events(connection, f"chaos-{self._seed}-{index}-{n}", rng)
                elif draw < READ_SHARE + EVENT_SHARE + STOCK_SHARE and own_stock:
                    self._stock(connection, rng.choice(own_stock), rng.random() < 0.5)
                else:
                    self._upsert(connection, f"chaos-{self._seed}-{index}-{n}")
        finally:
            connection.close()

    def _timed(self, connection: _Connection, op: str, method: str, path: str, body: Any,
               ok: Callable[[int, Any], bool]) -> tuple[int, Any, bool]:
        started = self.now()
        clock = time.perf_counter()
        status, document, retried = connection.request(method, path, body)
        sample = Sample(started, (time.perf_counter() - clock) * 1000, op, status, ok(status, document), retried)
        with self._lock:
            self.samples.append(sample)
        return status, document, retried

    def _read(self, connection: _Connection, user: str) -> None:
        self._timed(connection, "recommend", "POST", "/v1/recommendations", {"user_id": user, "k": PAGE},
                    lambda status, doc: status == 200 and len(doc.get("items", [])) == PAGE)

    def _record(self, status: int) -> bool:
        """True when acknowledged; counts refusals and unknown outcomes."""
        if status == 200:
            return True
        with self._lock:
            if status == 0:
                self.ledger.unknown += 1
            else:
                self.ledger.refused += 1
        return False

    def _events(self, connection: _Connection, prefix: str, rng: random.Random) -> None:
        user = rng.choice(self.users)
        events = [{"event_id": f"{prefix}-{i}", "user_id": user, "item_id": rng.choice(self._items),
                   "event_type": rng.choice(("click", "add_to_cart", "purchase")), "timestamp": time.time() - 1}
                  for i in range(2)]
        status, document, retried = self._timed(connection, "events", "POST", "/v1/events", {"events": events},
                                                lambda status, doc: status in (200, 503))
        if self._record(status) and document["accepted"] + document["duplicates"] == len(events):
            ids = {str(e["event_id"]) for e in events}
            with self._lock:
                self.ledger.events |= ids
                if retried:
                    self.ledger.events_on_a_retry |= ids

    def _stock(self, connection: _Connection, item: str, in_stock: bool) -> None:
        status, _, _ = self._timed(connection, "stock", "PUT", f"/v1/stock/{item}", {"in_stock": in_stock},
                                lambda status, doc: status in (200, 503))
        acknowledged = self._record(status)
        with self._lock:
            # A refused or dropped write may still have been applied: the item's state is unsure until the next ack.
            self.ledger.stock[item] = in_stock if acknowledged else None

    def _upsert(self, connection: _Connection, item: str) -> None:
        body = {"merchant_id": self.merchant, "title": f"Chaos soak dish {item}", "category": "soak",
                "description": "added while faults were injected", "price": 9.5}
        status, _, _ = self._timed(connection, "item", "PUT", f"/v1/items/{item}", body,
                                lambda status, doc: status in (200, 503))
        if self._record(status):
            with self._lock:
                self.ledger.items.add(item)


@dataclass
class SoakReport:
    duration_s: float
    requests: dict[str, dict[str, int]]
    faults: list[dict[str, Any]]
    acknowledged: dict[str, int]
    lost: dict[str, list[str]]
    bad_reads: int
    retried_after_a_dropped_connection: int
    events_not_logged_after_a_dropped_connection: int
    refused_writes: int
    unknown_writes: int
    orphans: list[int]
    passed: bool

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def schedule(duration_s: float) -> list[tuple[float, str]]:
    """When each fault starts, as a share of the soak (the first 10% and the last 15% stay quiet)."""
    plan = [(0.10, "redis_killed"), (0.22, "redis_paused"), (0.34, "redis_slowed"), (0.46, "worker_killed"),
            (0.56, "corrupt_version"), (0.70, "redis_aof_torn"), (0.80, "redis_killed")]
    return [(share * duration_s, name) for share, name in plan]


def inject(name: str, redis_db: EmbeddedRedis, master_pid: int, artifacts: Path,
           hold_s: float) -> Iterator[str]:
    """Run one fault; yields once while it holds (a description), recovers on resumption."""
    if name == "redis_killed":
        old = redis_db.kill()
        yield f"killed redis-server {old}"
        new = redis_db.wait_restarted(old)
        yield f"restarted as {new}"
    elif name == "redis_paused":
        with redis_db.paused() as pid:
            yield f"SIGSTOP redis-server {pid} for {hold_s:g} s"
            time.sleep(hold_s)
    elif name == "redis_slowed":
        with redis_db.slowed(SLOW_REDIS_DELAY_S) as proxy:
            yield f"every reply delayed {SLOW_REDIS_DELAY_S * 1000:.0f} ms for {hold_s:g} s"
            time.sleep(hold_s)
            yield f"{proxy.connections} connections went through the delay"
    elif name == "worker_killed":
        yield f"SIGKILL worker {chaos_faults.kill_a_worker(master_pid)}"
    elif name == "corrupt_version":
        with chaos_faults.corrupt_version(artifacts) as version:
            yield f"CURRENT -> {version} (ranker truncated) for {hold_s:g} s"
            time.sleep(hold_s)
    elif name == "redis_aof_torn":
        old = redis_db.tear_aof_tail()
        yield f"killed redis-server {old}, its AOF ends in a half-written command"
        yield f"restarted as {redis_db.wait_restarted(old)}"
    else:
        raise ValueError(f"unknown fault {name!r}")


def run_faults(traffic: Traffic, plan: list[tuple[float, str]], redis_db: EmbeddedRedis, master_pid: int,
               artifacts: Path, *, hold_s: float, on_fault: Callable[[FaultWindow], None]) -> list[FaultWindow]:
    windows = []
    for at, name in plan:
        time.sleep(max(0.0, at - traffic.now()))
        window = FaultWindow(name, traffic.now())
        details = list(inject(name, redis_db, master_pid, artifacts, hold_s))
        window.ended, window.detail = traffic.now(), "; ".join(details)
        windows.append(window)
        on_fault(window)
    return windows


def wait_healthy(url: str, timeout_s: float = 60.0) -> None:
    connection = _Connection(url)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            status, document, _ = connection.request("GET", "/health/ready", None)
            if status == 200 and document["dependencies"]["redis"] == "ok":
                return
            time.sleep(0.2)
    finally:
        connection.close()
    raise TimeoutError(f"{url} did not report redis ok within {timeout_s:g} s")


def verify(redis_db: EmbeddedRedis, data_dir: Path, ledger: Ledger) -> tuple[dict[str, list[str]], int]:
    """What was acknowledged and is missing now, in Redis (read directly) and in the data directory's log; and how
    many events acknowledged by a retry after a dropped connection are missing from the log (see Ledger)."""
    lost: dict[str, list[str]] = {}
    client = redis_db.client()
    try:
        stored_events = {key.decode()[len(EVENT_KEY_PREFIX):]
                         for key in client.scan_iter(match=f"{EVENT_KEY_PREFIX}*", count=1000)}
        lost["events_redis"] = sorted(ledger.events - stored_events)
        out = {m.decode() if isinstance(m, bytes) else str(m) for m in client.smembers(OUT_OF_STOCK_KEY)}
        lost["stock"] = sorted(item for item, in_stock in ledger.stock.items()
                               if in_stock is not None and (item in out) == in_stock)
        _, items, _ = RedisLiveState(client).catalog_state()
        lost["items_redis"] = sorted(item for item in ledger.items if item not in items)
    finally:
        client.close()
    logged = _log_column(data_dir / "interactions", "event_id")
    lost["events_log"] = sorted(ledger.events - ledger.events_on_a_retry - logged)
    lost["items_log"] = sorted(ledger.items - _log_column(data_dir / "items", "item_id"))
    return lost, len(ledger.events_on_a_retry - logged)


def _log_column(directory: Path, column: str) -> set[str]:
    values: set[str] = set()
    for part in sorted(directory.glob("*.csv")):
        with part.open(newline="") as handle:
            values.update(row[column] for row in csv.DictReader(handle))
    return values


def summarise(samples: list[Sample], windows: list[FaultWindow]) -> list[dict[str, Any]]:
    faults = []
    for window in windows:
        after = sorted((s for s in samples if s.started >= window.started), key=lambda s: s.started)[:AFTER_FAULT]
        during = [s for s in samples if window.started <= s.started <= window.ended + 1.0]
        reads = [s for s in during if s.op == "recommend"]
        faults.append({"fault": window.name, "at_s": round(window.started, 2),
                       "held_s": round(window.ended - window.started, 2), "detail": window.detail,
                       f"slowest_of_next_{AFTER_FAULT}_ms": round(max((s.ms for s in after), default=0.0), 1),
                       "slowest_read_during_ms": round(max((s.ms for s in reads), default=0.0), 1),
                       "slowest_request_during_ms": round(max((s.ms for s in during), default=0.0), 1),
                       "requests_during": len(during),
                       "writes_refused_during": sum(1 for s in during if s.op != "recommend" and s.status == 503)})
    return faults


@contextlib.contextmanager
def served(artifacts: Path, data_dir: Path, workers: int) -> Iterator[tuple[str, int]]:
    """`tastebud serve` on these artifacts in a child process: (url, master pid); SIGTERM on leaving."""
    import os
    import re
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "tastebud_cli.app", "serve", "--artifacts", str(artifacts),
                                "--port", "0", "--workers", str(workers), "--no-access-log", "--data", str(data_dir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "400"}, preexec_fn=end_with_parent)
    url: list[str] = []
    ready: list[int] = []
    log: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            if (match := re.search(r"listening on (http://\S+)", line)) and not url:
                url.append(match.group(1))
            if "Application startup complete" in line:
                ready.append(1)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 300
    while not (url and len(ready) >= workers):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("tastebud serve did not start:\n" + "".join(log[-40:]))
        time.sleep(0.05)
    try:
        yield url[0], process.pid
    finally:
        terminate(process, 90)


def soak(artifacts: Path, workdir: Path, *, duration_s: float = 75.0, clients: int = 4, rate: float = 40.0,
         workers: int = 2, seed: int = 0, hold_s: float = 2.0,
         on_fault: Callable[[FaultWindow], None] = lambda window: None,
         ) -> tuple[SoakReport, list[Sample], list[FaultWindow]]:
    """Copy ``artifacts`` into ``workdir``, serve the copy, run the traffic and the fault schedule, verify."""
    from tastebud.artifacts import LocalArtifactStore
    from tastebud.serving_version import load_version

    copy = workdir / "artifacts"
    shutil.copytree(artifacts, copy, ignore=shutil.ignore_patterns("cache", "stock.rdb*", "appendonly.aof"))
    data_dir = workdir / "data"
    store = LocalArtifactStore(copy)
    version = load_version(store.current_dir())
    users = [str(u) for u in version.users.user_ids[:200].tolist()]
    catalog = version.catalog
    items = [str(i) for i in catalog.item_ids[:400].tolist()]
    merchant = str(catalog.merchant_ids[0])
    del version
    redis_db = EmbeddedRedis(copy / "stock.rdb")
    with served(copy, data_dir, workers) as (url, master_pid):
        traffic = Traffic(url, users, items, merchant, clients=clients, rate=rate, seed=seed)
        traffic.start()
        try:
            windows = run_faults(traffic, schedule(duration_s), redis_db, master_pid, copy, hold_s=hold_s,
                                 on_fault=on_fault)
            time.sleep(max(0.0, duration_s - traffic.now()))
        finally:
            traffic.stop()
        wait_healthy(url)
        lost, log_gap = verify(redis_db, data_dir, traffic.ledger)
        server_pid = redis_db.pid()
    orphans = [server_pid] if _outlives(server_pid) else []
    samples = traffic.samples
    requests: dict[str, dict[str, int]] = {}
    for sample in samples:
        counts = requests.setdefault(sample.op, {})
        counts[str(sample.status)] = counts.get(str(sample.status), 0) + 1
    bad_reads = sum(1 for s in samples if s.op == "recommend" and not s.ok)
    ledger = traffic.ledger
    report = SoakReport(
        duration_s=round(traffic.now(), 1), requests=requests, faults=summarise(samples, windows),
        acknowledged={"events": len(ledger.events), "stock_items": sum(v is not None for v in ledger.stock.values()),
                      "items": len(ledger.items)},
        lost={k: v for k, v in lost.items() if v}, bad_reads=bad_reads,
        retried_after_a_dropped_connection=sum(1 for s in samples if s.retried),
        events_not_logged_after_a_dropped_connection=log_gap, refused_writes=ledger.refused,
        unknown_writes=ledger.unknown, orphans=orphans, passed=False)
    report.passed = not report.lost and bad_reads == 0 and not orphans
    return report, samples, windows


def write_samples(samples: list[Sample], path: Path) -> None:
    """Every request: when it started (s into the soak), how long it took, what it was and its answer."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["started_s", "ms", "op", "status", "ok", "retried"])
        for s in sorted(samples, key=lambda sample: sample.started):
            writer.writerow([f"{s.started:.4f}", f"{s.ms:.3f}", s.op, s.status, int(s.ok), int(s.retried)])


def plot(samples: list[Sample], windows: list[FaultWindow], path: Path) -> None:
    """Each request's latency over the soak (log scale), by kind, with the faults shaded: a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(12, 4.5))
    for op, marker in (("recommend", "."), ("events", "x"), ("stock", "+"), ("item", "1")):
        chosen = [s for s in samples if s.op == op]
        axes.scatter([s.started for s in chosen], [max(s.ms, 0.1) for s in chosen], s=8, marker=marker, label=op,
                     alpha=0.7)
    failed = [s for s in samples if not s.ok or s.status != 200]
    axes.scatter([s.started for s in failed], [max(s.ms, 0.1) for s in failed], s=30, facecolors="none",
                 edgecolors="red", label="not 200")
    for window in windows:
        axes.axvspan(window.started, max(window.ended, window.started + 0.3), color="orange", alpha=0.25)
        axes.annotate(window.name, (window.started, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                      va="top", ha="right", fontsize=8)
    axes.set_yscale("log")
    axes.set_xlabel("seconds into the soak")
    axes.set_ylabel("latency (ms)")
    axes.set_title("tastebud chaos: every request, faults shaded")
    axes.legend(loc="upper left", fontsize=8, ncols=5)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _outlives(pid: int, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while process_alive(pid):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)
    return False
