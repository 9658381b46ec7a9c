"""Two numbers of ScaNN leaves searched, inside the whole request, interleaved per user, on `bench --items N`'s catalog.

The index is built once (with ``LEAVES_TO_SEARCH``); each user is served twice, once per leaf count given at query
time, in alternating order, so machine noise hits both alike. Prints the service's thread CPU time per call for each
and the paired difference (docs/BENCHMARKS.md, session 6). Recall per leaf count: scripts/ann_recall_grid.py.

    PYTHONPATH=layers/core:training .venv/bin/python scripts/ab_ann_leaves.py 1000000 100 60
"""

from __future__ import annotations

import logging
import sys
import time

import numpy as np

from tastebud.heap import freeze_startup_heap
from tastebud.service import RecommendationService
from tastebud_bench import in_process as bench


def main(n_items: int, before: int, after: int, users_count: int = 4000) -> None:
    logging.getLogger("tastebud").setLevel(logging.WARNING)
    system = bench.synthetic(n_items, progress=False)
    service = system.service
    assert isinstance(service, RecommendationService)  # synthetic systems serve without the live runtime
    index = service.retriever.index
    searcher = index._searcher  # type: ignore[attr-defined]  # the ScaNN searcher: per-query leaves
    leaves = {"now": before}

    def search(query: np.ndarray, k: int, *, domain: str = "all") -> tuple[np.ndarray, np.ndarray]:
        rows, scores = searcher.search(query.astype(np.float32), final_num_neighbors=k, leaves_to_search=leaves["now"])
        return rows.astype(np.int64), scores.astype(np.float32)

    index.search = search  # type: ignore[method-assign]
    rng = np.random.default_rng(1)
    users = [str(u) for u in rng.choice(np.asarray(system.user_ids, dtype=object), users_count + 100)]
    for user in users[:100]:
        service.recommend(user, k=20)
    freeze_startup_heap()
    cpu: dict[int, list[float]] = {before: [], after: []}
    for i, user in enumerate(users[100:]):
        for count in (before, after) if i % 2 else (after, before):
            leaves["now"] = count
            started = time.thread_time()
            service.recommend(user, k=20)
            cpu[count].append((time.thread_time() - started) * 1e3)
    a, b = np.asarray(cpu[before]), np.asarray(cpu[after])
    for count, values in ((before, a), (after, b)):
        print(f"{count} leaves: service CPU per call median {np.median(values):.3f} ms, mean {values.mean():.3f} ms")
    print(f"{after} - {before}, paired: median {np.median(b - a):+.3f} ms, mean {np.mean(b - a):+.3f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
