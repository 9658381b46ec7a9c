"""The fault soak (`tastebud chaos`): mixed traffic against a real `tastebud serve` while faults are injected on a
schedule, then a check that nothing acknowledged was lost and that no read failed (issue 21).

The parts: the traffic and what its writes came to (``soak_traffic``), the fault schedule (``soak_schedule``), the
check for lost writes (``soak_verify``), the report and the requests' CSV (``soak_report``) and the plot
(``soak_plot``).
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tastebud.processes import end_with_parent, process_alive, terminate
from tastebud_bench.faults import EmbeddedRedis
from tastebud_bench.soak_plot import plot
from tastebud_bench.soak_report import SoakReport, summarise, write_samples
from tastebud_bench.soak_schedule import FaultWindow, run_faults, schedule
from tastebud_bench.soak_traffic import Sample, Traffic
from tastebud_bench.soak_verify import verify, wait_healthy

# What `tastebud chaos` runs and writes, importable from here.
__all__ = ["FaultWindow", "SoakReport", "plot", "soak", "write_samples"]


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


def _outlives(pid: int, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while process_alive(pid):
        if time.monotonic() > deadline:
            return True
        time.sleep(0.05)
    return False
