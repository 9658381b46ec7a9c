"""ScaNN recall@200 and search time against the number of leaves searched, on the synthetic catalog of
`tastebud bench --items N`, for two query sets: the mean of a user's history vectors (in-distribution, what the
bench's recall reports) and the bench's production user tower (random weights: queries the index was not built for).

    .venv/bin/tastebud experiment ann_recall_grid 1000000 100,80,60,50,40 1000,600

Prints one line per (leaves, re-ordered candidates): recall and median search time (300 neighbours, as the retriever
asks for 200 with its 1.5x over-fetch) for each query set. Exact neighbours come from brute force over all items.
"""

from __future__ import annotations

import time

import numpy as np

from tastebud.pipeline.service import RecommendationService
from tastebud_bench import in_process as bench
from tastebud_bench.in_process import RECALL_K, _context

FETCH = 300


def run(n_items: int, leaves: list[int], reorders: list[int]) -> None:
    system = bench.synthetic(n_items, progress=False)
    service = system.service
    assert isinstance(service, RecommendationService)
    searcher = system.index._searcher  # type: ignore[attr-defined]  # the ScaNN searcher: per-query leaves
    users = np.random.default_rng(5).choice(np.asarray(system.user_ids, dtype=object), 300, replace=False)
    context = _context()
    query_sets: dict[str, list[np.ndarray]] = {"history-mean": [], "user-tower": []}
    for user_id in users:
        profile = system.features.user(str(user_id))
        query = system.encoder.encode(profile, context)
        if query is not None:
            query_sets["history-mean"].append(query.astype(np.float32))
        tower = service.retriever.encoder.encode(profile, context)
        if tower is not None:
            query_sets["user-tower"].append(tower.astype(np.float32))
    exact = {name: [system.exact.search(q, RECALL_K)[0] for q in queries] for name, queries in query_sets.items()}
    for n_leaves in leaves:
        for reorder in reorders:
            line = [f"leaves {n_leaves:4d} reorder {reorder:5d}:"]
            for name, queries in query_sets.items():
                recalls, seconds = [], []
                for query, truth in zip(queries, exact[name], strict=True):
                    started = time.perf_counter()
                    rows, _ = searcher.search(query, final_num_neighbors=FETCH, pre_reorder_num_neighbors=reorder,
                                              leaves_to_search=n_leaves)
                    seconds.append(time.perf_counter() - started)
                    recalls.append(np.intersect1d(rows[:RECALL_K], truth).size / RECALL_K)
                line.append(f"{name} recall {np.mean(recalls):.4f} in {np.median(seconds) * 1e3:.3f} ms")
            print("  ".join(line), flush=True)


def main(argv: list[str]) -> None:
    """Command-line entry: `tastebud experiment ann_recall_grid ARGS...`."""
    if len(argv) != 3:
        raise ValueError("usage: tastebud experiment ann_recall_grid ITEMS LEAVES,... REORDERS,... "
                         "(e.g. 1000000 100,80,60 1000,600)")
    run(int(argv[0]), [int(x) for x in argv[1].split(",")], [int(x) for x in argv[2].split(",")])
