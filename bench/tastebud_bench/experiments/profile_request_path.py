"""Profile the in-process request path on the synthetic catalog of `tastebud bench --items N`.

Prints per-stage p50/p99 and CPU per call over 1,000 requests (with the number of garbage collections and their
total time, then again after ``gc.freeze()``), and a cProfile of 600 requests (by own time and cumulative).

    .venv/bin/tastebud experiment profile_request_path 1000000
"""

from __future__ import annotations

import cProfile
import gc
import pstats
import time
from typing import Any

import numpy as np

from tastebud_bench import in_process as bench


def run(n_items: int) -> None:
    system = bench.synthetic(n_items, progress=False)
    service = system.service
    rng = np.random.default_rng(1)
    users = [str(u) for u in rng.choice(np.asarray(system.user_ids, dtype=object), 1500)]
    for user in users[:100]:
        service.recommend(user, k=20)

    gc_seconds = [0.0, 0.0]  # total, start of the current collection

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_seconds[1] = time.perf_counter()
        else:
            gc_seconds[0] += time.perf_counter() - gc_seconds[1]

    gc.callbacks.append(on_gc)

    def measure(label: str) -> None:
        stages: dict[str, list[float]] = {s: [] for s in ("retrieve", "rerank", "fairness", "stock", "total")}
        gc_seconds[0] = 0.0
        before = [s["collections"] for s in gc.get_stats()]
        cpu = time.process_time()
        for user in users[100:1100]:
            result = service.recommend(user, k=20)
            for stage, values in stages.items():
                values.append(result.stage_ms[stage])
        cpu_ms = (time.process_time() - cpu) / 1000 * 1e3
        collections = [s["collections"] - b for s, b in zip(gc.get_stats(), before, strict=True)]
        print(f"{label}: CPU {cpu_ms:.3f} ms/call, GC {gc_seconds[0] * 1e3:.1f} ms in {collections} collections")
        for stage, values in stages.items():
            print(f"  {stage:9s} p50 {np.percentile(values, 50):.3f}  p99 {np.percentile(values, 99):.3f}  "
                  f"max {max(values):.2f} ms")

    measure("plain")
    gc.collect()
    gc.freeze()
    measure("after gc.freeze()")
    profile = cProfile.Profile()
    profile.enable()
    for user in users[100:700]:
        service.recommend(user, k=20)
    profile.disable()
    stats = pstats.Stats(profile)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)


def main(argv: list[str]) -> None:
    """Command-line entry: `tastebud experiment profile_request_path ARGS...`."""
    run(int(argv[0]) if len(argv) > 0 else 1_000_000)
