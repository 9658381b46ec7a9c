"""What a request costs after the worker idled, against back-to-back, on the synthetic catalog of `bench --items N`.

At half capacity a worker idles ~6-12 ms between requests; in that time other processes and other guests of the VM
refill the caches. This runs the service in process, alternating back-to-back calls and calls after a 12 ms sleep,
and prints the thread CPU time per call and each stage's median for both (docs/BENCHMARKS.md, session 5).

    .venv/bin/tastebud experiment idle_penalty 1000000
"""

from __future__ import annotations

import time

import numpy as np

from tastebud.recommendation import StageTrace
from tastebud_bench.experiments.harness import warm_service

GAP_S = 0.012
KEYS = ("user_tower", "knn", "retrieve", "rerank", "fairness", "stock", "total")


def run(n_items: int, calls: int = 3000) -> None:
    warm = warm_service(n_items, calls)
    service = warm.service
    stages: dict[float, dict[str, list[float]]] = {gap: {key: [] for key in KEYS} for gap in (0.0, GAP_S)}
    cpu: dict[float, list[float]] = {0.0: [], GAP_S: []}
    for i, user in enumerate(warm.users):
        gap = GAP_S if i % 2 else 0.0
        if gap:
            time.sleep(gap)
        trace = StageTrace()
        started = time.thread_time()
        result = service.recommend(user, k=20, trace=trace)
        cpu[gap].append((time.thread_time() - started) * 1e3)
        timings = {**result.stage_ms, **trace.timings}
        for key in KEYS:
            if key in timings:
                stages[gap][key].append(timings[key])
    for gap in (0.0, GAP_S):
        label = "back-to-back" if gap == 0 else f"after {gap * 1e3:.0f} ms idle"
        print(f"{label}: CPU per call median {np.median(cpu[gap]):.3f} ms, mean {np.mean(cpu[gap]):.3f} ms")
        print("   " + "  ".join(f"{key} {np.median(values):.3f}" for key, values in stages[gap].items()))


def main(argv: list[str]) -> None:
    """Command-line entry: `tastebud experiment idle_penalty ARGS...`."""
    run(int(argv[0]) if len(argv) > 0 else 1_000_000)
