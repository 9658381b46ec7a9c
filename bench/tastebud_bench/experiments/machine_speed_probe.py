"""Does this machine change speed by itself? Fixed work in a loop, single thread, per-second medians.

Each call does the same work (three 300x300 float32 matrix products and a 20,000-element list); on a steady machine
every second's median is the same. Run it alone (docs/BENCHMARKS.md, "The server path's timeline"):

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/tastebud experiment machine_speed_probe 30
"""

from __future__ import annotations

import time

import numpy as np


def work(matrix: np.ndarray) -> float:
    total = sum(float((matrix @ matrix).sum()) for _ in range(3))
    return total + len([i * i for i in range(20_000)])


def run(seconds: float) -> None:
    matrix = np.random.default_rng(0).standard_normal((300, 300)).astype(np.float32)
    starts, durations = [], []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        work(matrix)
        starts.append(started)
        durations.append((time.perf_counter() - started) * 1e3)
    ms = np.asarray(durations)
    second = ((np.asarray(starts) - starts[0]) // 1).astype(int)
    p50, p90, p99, top = np.percentile(ms, [50, 90, 99, 100])
    print(f"{ms.size} calls: p50 {p50:.3f} p90 {p90:.3f} p99 {p99:.3f} max {top:.3f} ms")
    print("per-second medians (ms):", " ".join(f"{np.median(ms[second == s]):.2f}" for s in range(second.max() + 1)))


def main(argv: list[str]) -> None:
    """Command-line entry: `tastebud experiment machine_speed_probe ARGS...`."""
    run(float(argv[0]) if len(argv) > 0 else 30.0)
