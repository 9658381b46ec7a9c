"""Per-request timeline of one server worker (issue 24): where a request's time goes on the server path.

Off unless the server is started with a timeline directory (``ServerOptions.timeline_dir``; `tastebud bench --http
--timeline`). For every request the worker keeps, in memory, one row of raw readings taken at five points:

* ``enter``: the ASGI app is called (uvicorn has read and parsed the request head on its event loop);
* ``body``: the body is read; ``handler_start`` / ``handler_end``: around the Lambda handler (the service);
* ``sent``: the response is handed to the transport.

and, at ``enter`` and ``sent``, the worker thread's cumulative readings: time spent runnable but waiting for a CPU
(``/proc/thread-self/schedstat``, field 2: the scheduler's run-queue delay), garbage-collection pauses
(``gc.callbacks``), time waiting on Redis inside a request budget (``guarded_redis.redis_wait_s``), involuntary
context switches, page faults and the thread's CPU time (``getrusage(RUSAGE_THREAD)``). The differences are derived
later, by whoever joins the rows with the client's send and receive times (all times are CLOCK_MONOTONIC, which
``time.perf_counter`` reads on Linux and which is shared by every process of the machine).
The rows are written as JSON lines to ``<dir>/worker-<pid>.jsonl`` when the worker shuts down: no I/O per request.
Cost when on: two small /proc reads and two getrusage calls per request (~10 µs).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tastebud.adapters.guarded_redis import redis_wait_s

FIELDS = ("request_id", "path", "status", "enter", "body", "handler_start", "handler_end", "sent",
          "runq_enter", "runq_sent", "gc_enter", "gc_sent", "redis_enter", "redis_sent", "nivcsw_enter",
          "nivcsw_sent", "cpu_enter", "cpu_sent", "minflt_enter", "minflt_sent")


@dataclass
class Readings:
    """The thread's cumulative counters at one instant."""

    runq_s: float
    gc_s: float
    redis_s: float
    nivcsw: int
    cpu_s: float
    minflt: int  # page faults served without I/O (a huge page may need the kernel to compact memory first)


class WorkerTimeline:
    """Collects one row per request in this worker; ``write`` dumps them (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.rows: list[tuple[Any, ...]] = []
        self._gc_total_s = 0.0
        self._gc_started = 0.0
        self._schedstat: int | None = None
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            self._gc_total_s += time.perf_counter() - self._gc_started
            self._gc_started = 0.0

    def _run_queue_s(self) -> float:
        if self._schedstat is None:  # opened in the worker (after the fork): this thread's own counters
            self._schedstat = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        return int(os.pread(self._schedstat, 96, 0).split()[1]) / 1e9

    def readings(self) -> Readings:
        usage = resource.getrusage(resource.RUSAGE_THREAD)
        return Readings(self._run_queue_s(), self._gc_total_s, redis_wait_s(), usage.ru_nivcsw,
                        usage.ru_utime + usage.ru_stime, usage.ru_minflt)

    def record(self, request_id: str, path: str, status: int, marks: tuple[float, float, float, float, float],
               at_enter: Readings, at_sent: Readings, payload: bytes = b"") -> None:
        """One request. ``payload``: the response body, kept (bytes: not tracked by the GC) and parsed only at
        ``write`` for a recommendation's own stage times (``stage_ms``)."""
        self.rows.append((request_id, path, status, *marks, at_enter.runq_s, at_sent.runq_s, at_enter.gc_s,
                          at_sent.gc_s, at_enter.redis_s, at_sent.redis_s, at_enter.nivcsw, at_sent.nivcsw,
                          at_enter.cpu_s, at_sent.cpu_s, at_enter.minflt, at_sent.minflt, payload))

    def write(self) -> Path:
        """Write the rows (JSON lines, one object per request) and close; returns the file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"worker-{os.getpid()}.jsonl"
        partial = target.with_suffix(".partial")
        with partial.open("w") as handle:
            for *row, payload in self.rows:
                line = {"pid": os.getpid(), **dict(zip(FIELDS, row, strict=True)), "stage_ms": _stage_ms(payload)}
                handle.write(json.dumps(line) + "\n")
        partial.replace(target)  # whole or absent: a reader never sees half a file
        if self._schedstat is not None:
            os.close(self._schedstat)
            self._schedstat = None
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        return target


def _stage_ms(payload: bytes) -> dict[str, float]:
    if not payload.startswith(b"{"):
        return {}
    try:
        stages = json.loads(payload).get("stage_ms")
    except ValueError:
        return {}
    return stages if isinstance(stages, dict) else {}
