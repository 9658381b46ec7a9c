"""Where the cores went during a load run (`tastebud bench --http`): CPU seconds of given processes, of this
process's finished children and of the whole machine (Linux /proc), and their shares of the run's wall-clock time."""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


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


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds so far of the server, of the whole machine (busy, total, stolen), of Redis and of the load
    generator: a run's CPU use is the difference of two samples, taken just before and just after it."""

    server: float
    busy: float
    total: float
    stolen: float
    redis: float
    generator: float

    @classmethod
    def take(cls, server_cpu_s: Callable[[], float], redis_pids: Sequence[int],
             generator_cpu_s: Callable[[], float]) -> CpuSample:
        server = server_cpu_s()
        busy, total, stolen = machine_cpu_seconds()
        return cls(server, busy, total, stolen, process_cpu_seconds(redis_pids), generator_cpu_s())

    def elapsed_s(self, before: CpuSample, cores: int) -> float:
        """Wall-clock seconds since ``before``, from the machine's CPU seconds (busy or not) over ``cores``."""
        return (self.total - before.total) / cores

    def core_shares_since(self, before: CpuSample, cores: int) -> dict:
        """:func:`core_shares` of the run between ``before`` and this sample."""
        return core_shares(self.busy - before.busy, self.server - before.server, self.redis - before.redis,
                           self.generator - before.generator, self.elapsed_s(before, cores),
                           self.stolen - before.stolen)
