"""What the item-kNN over shoppers costs a request, on `bench --items N`'s catalog: the service with it (the table's
30 partners per item, its feature and its 20 explore candidates) against the same service without (an empty table,
no such candidates), interleaved per user (issue 22's cost goal: in-process p99 at 1M items up by at most 0.3 ms).

    .venv/bin/tastebud experiment ab_same_shoppers 1000000 3000
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from tastebud.pipeline.service import RecommendationService
from tastebud.settings import ServingKnobs
from tastebud_bench.experiments.harness import warm_service


def run(n_items: int, users_count: int) -> None:
    warm = warm_service(n_items, users_count)
    assert warm.system.rewire is not None
    catalog = warm.service.catalog
    without_table = catalog.with_changes(similar_offsets=np.zeros(catalog.size + 1, np.int64),
                                         similar_rows=np.zeros(0, np.int64), similar_scores=np.zeros(0, np.float32))
    knobs = ServingKnobs()  # what the synthetic service was wired with
    services: dict[str, RecommendationService] = {
        "with": warm.service,
        "without": warm.system.rewire(replace(knobs, similar_candidates=0), without_table),
    }
    for user in warm.users[:100]:  # the second service's first calls warm its own paths
        services["without"].recommend(user, k=20)
    wall: dict[str, list[float]] = {name: [] for name in services}
    cpu: dict[str, list[float]] = {name: [] for name in services}
    stages: dict[str, list[dict[str, float]]] = {name: [] for name in services}
    names = list(services)
    for i, user in enumerate(warm.users):
        for name in names if i % 2 else names[::-1]:
            started, started_cpu = time.perf_counter(), time.thread_time()
            result = services[name].recommend(user, k=20)
            stages[name].append(result.stage_ms)
            cpu[name].append((time.thread_time() - started_cpu) * 1e3)
            wall[name].append((time.perf_counter() - started) * 1e3)
    for name in names:
        ms = np.asarray(wall[name])
        p50, p99 = np.percentile(ms, [50, 99])
        print(f"{name:8s} request p50 {p50:.3f}  p99 {p99:.3f}  max {ms.max():.1f} ms; CPU median "
              f"{np.median(cpu[name]):.3f} ms")
        print("         stage means (ms): " + ", ".join(
            f"{stage} {np.mean([row[stage] for row in stages[name]]):.3f}"
            for stage in ("retrieve", "rerank", "fairness", "stock")))
    a, b = np.asarray(wall["without"]), np.asarray(wall["with"])
    diff = np.asarray(cpu["with"]) - np.asarray(cpu["without"])
    print(f"with - without: p50 {np.percentile(b, 50) - np.percentile(a, 50):+.3f} ms, "
          f"p99 {np.percentile(b, 99) - np.percentile(a, 99):+.3f} ms; paired CPU median {np.median(diff):+.3f} ms")


def main(argv: list[str]) -> None:
    """Command-line entry: `tastebud experiment ab_same_shoppers ITEMS USERS`."""
    if len(argv) != 2:
        raise ValueError("usage: tastebud experiment ab_same_shoppers ITEMS USERS (e.g. 1000000 3000)")
    run(int(argv[0]), int(argv[1]))
