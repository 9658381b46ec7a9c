"""The fault soak's schedule: which fault starts when, and how each is injected and recovered from (the faults
themselves are in ``tastebud_bench.faults``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tastebud_bench import faults as chaos_faults
from tastebud_bench.faults import EmbeddedRedis
from tastebud_bench.soak_traffic import Traffic

SLOW_REDIS_DELAY_S = 0.05


@dataclass
class FaultWindow:
    name: str
    started: float
    ended: float = 0.0
    detail: str = ""


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
