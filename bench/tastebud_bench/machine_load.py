"""Was the machine quiet while a benchmark ran? (issue 24: a figure from a busy machine is not evidence.)

Read from /proc around the measured run: the load average at its start, the CPU time every process on the machine
used (``/proc/stat``), the bench's own (this process, its children and live descendants such as the embedded
Redis or the HTTP server's workers), and the hypervisor's steal. What the others used is the difference. A run is
quiet when other processes used less than ``QUIET_OTHERS_CORES`` of a core on average and steal stayed under
``QUIET_STEAL_SHARE`` of the machine; otherwise the bench says so and its figures are not to be quoted.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUIET_OTHERS_CORES = 0.1  # other processes' CPU, in cores, averaged over the run
QUIET_STEAL_SHARE = 0.02  # CPU time the hypervisor gave to other guests, as a share of the machine
_STAT = Path("/proc/stat")


@dataclass(frozen=True)
class _Sample:
    wall: float
    busy_s: float  # every process on the machine: user + nice + system + irq + softirq
    steal_s: float
    own_s: float  # this process, its waited-for children, and its live descendants (a Redis server, workers)


def _sample() -> _Sample:
    ticks = float(os.sysconf("SC_CLK_TCK"))
    fields = _STAT.read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (float(v) for v in fields[:8])
    own = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    return _Sample(time.monotonic(), (user + nice + system + irq + softirq) / ticks, steal / ticks,
                   own + _descendants_cpu_s(os.getpid(), ticks))


def _descendants_cpu_s(root: int, ticks: float) -> float:
    """CPU seconds (utime + stime) of the live processes below ``root`` (not counting what they waited for)."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):  # it exited while we looked
            continue
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        cpu[pid] = (float(fields[11]) + float(fields[12])) / ticks
    total = 0.0
    for pid in cpu:
        ancestor = parent.get(pid, 0)
        while ancestor > 1 and ancestor != root:
            ancestor = parent.get(ancestor, 0)
        if ancestor == root:
            total += cpu[pid]
    return total


class MachineLoad:
    """``start()`` before the measured run, ``report()`` after it."""

    def __init__(self) -> None:
        self._start: _Sample | None = None
        self._load: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def start(self) -> MachineLoad:
        self._load = os.getloadavg()
        self._start = _sample()
        return self

    def report(self) -> dict[str, Any]:
        """Load average at the start, others' CPU (cores), steal share, and whether the run was quiet."""
        if self._start is None:
            raise RuntimeError("MachineLoad.report() before start()")
        end = _sample()
        wall = max(end.wall - self._start.wall, 1e-9)
        cores = os.cpu_count() or 1
        others = max(end.busy_s - self._start.busy_s - (end.own_s - self._start.own_s), 0.0) / wall
        steal = (end.steal_s - self._start.steal_s) / (wall * cores)
        quiet = others < QUIET_OTHERS_CORES and steal < QUIET_STEAL_SHARE
        return {"load_average_at_start": [round(v, 2) for v in self._load], "cores": cores,
                "others_cpu_cores": round(others, 3), "steal_share": round(steal, 4), "seconds": round(wall, 1),
                "quiet": quiet}


def busy_warning(machine: dict[str, Any]) -> str | None:
    """The line a bench prints instead of a verdict when the machine was not quiet (None when it was)."""
    if machine["quiet"]:
        return None
    return (f"the machine was busy during the run (other processes: {machine['others_cpu_cores']:.2f} cores, "
            f"steal {machine['steal_share']:.1%}, load average at start {machine['load_average_at_start'][0]}): "
            "these figures are not evidence; rerun with nothing else running")
