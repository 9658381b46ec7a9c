"""Two numbers of ScaNN leaves searched, inside the whole request, interleaved per user, on `bench --items N`'s catalog.

The index is built once (with ``LEAVES_TO_SEARCH``); each user is served twice, once per leaf count given at query
time, in alternating order, so machine noise hits both alike. Prints the service's thread CPU time per call for each
and the paired difference (docs/BENCHMARKS.md, session 6). Recall per leaf count: tastebud experiment ann_recall_grid.

    .venv/bin/tastebud experiment ab_ann_leaves 1000000 100 60
"""

from __future__ import annotations

import time

import numpy as np

from tastebud_bench.experiments.harness import warm_service


def run(n_items: int, before: int, after: int, users_count: int = 4000) -> None:
    warm = warm_service(n_items, users_count)
    service = warm.service
    index = service.retriever.index
    searcher = index._searcher  # type: ignore[attr-defined]  # the ScaNN searcher: per-query leaves
    leaves = {"now": before}

    def search(query: np.ndarray, k: int, *, domain: str = "all") -> tuple[np.ndarray, np.ndarray]:
        rows, scores = searcher.search(query.astype(np.float32), final_num_neighbors=k, leaves_to_search=leaves["now"])
        return rows.astype(np.int64), scores.astype(np.float32)

    index.search = search  # type: ignore[method-assign]
    cpu: dict[int, list[float]] = {before: [], after: []}
    for i, user in enumerate(warm.users):
        for count in (before, after) if i % 2 else (after, before):
            leaves["now"] = count
            started = time.thread_time()
            service.recommend(user, k=20)
            cpu[count].append((time.thread_time() - started) * 1e3)
    a, b = np.asarray(cpu[before]), np.asarray(cpu[after])
    for count, values in ((before, a), (after, b)):
        print(f"{count} leaves: service CPU per call median {np.median(values):.3f} ms, mean {values.mean():.3f} ms")
    print(f"{after} - {before}, paired: median {np.median(b - a):+.3f} ms, mean {np.mean(b - a):+.3f} ms")


def main(argv: list[str]) -> None:
    """Command-line entry: `tastebud experiment ab_ann_leaves ARGS...`."""
    if len(argv) != 3:
        raise ValueError("usage: tastebud experiment ab_ann_leaves ITEMS LEAVES_BEFORE LEAVES_AFTER "
                         "(e.g. 1000000 100 60)")
    run(int(argv[0]), int(argv[1]), int(argv[2]))
