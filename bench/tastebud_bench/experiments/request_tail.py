"""Where the in-process tail comes from: per-request stage and sub-stage times on the synthetic catalog of
`tastebud bench --items N`, and the mean of each for the slowest 2% of requests against all of them.

    .venv/bin/tastebud experiment request_tail 1000000
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tastebud.recommendation import StageTrace
from tastebud_bench import in_process as bench

COLUMNS = ("total", "retrieve", "user_tower", "knn", "rerank", "fairness", "stock", "ann_searches", "history",
           "candidates")


def run(n_items: int) -> None:
    system = bench.synthetic(n_items, progress=False)
    service = system.service
    index = service.retriever.index  # type: ignore[union-attr]
    searches: list[float] = []
    search = index.search

    def counted_search(query: np.ndarray, k: int, **options: Any) -> tuple[np.ndarray, np.ndarray]:
        searches.append(k)
        return search(query, k, **options)

    index.search = counted_search  # type: ignore[method-assign]
    rng = np.random.default_rng(1)
    users = [str(u) for u in rng.choice(np.asarray(system.user_ids, dtype=object), 2200)]
    for user in users[:200]:
        service.recommend(user, k=20)
    rows = []
    for user in users[200:]:
        searches.clear()
        trace = StageTrace()
        result = service.recommend(user, k=20, trace=trace)
        assert trace.retrieved is not None
        stage = result.stage_ms
        rows.append((stage["total"], stage["retrieve"], trace.timings.get("user_tower", np.nan),
                     trace.timings.get("knn", np.nan), stage["rerank"], stage["fairness"], stage["stock"],
                     len(searches), system.features.user(user).history_rows.size, len(trace.retrieved)))
    table = np.asarray(rows, dtype=np.float64)
    for i, name in enumerate(COLUMNS):
        p50, p90, p99 = np.nanpercentile(table[:, i], [50, 90, 99])
        print(f"{name:12s} p50 {p50:8.3f}  p90 {p90:8.3f}  p99 {p99:8.3f}  max {np.nanmax(table[:, i]):8.3f}")
    slow = table[table[:, 0] >= np.percentile(table[:, 0], 98)]
    print("slowest 2% of requests (mean) against all requests (mean):")
    for i, name in enumerate(COLUMNS):
        print(f"  {name:12s} {np.nanmean(slow[:, i]):8.3f}  {np.nanmean(table[:, i]):8.3f}")


def main(argv: list[str]) -> None:
    """Command-line entry: `tastebud experiment request_tail ARGS...`."""
    run(int(argv[0]) if len(argv) > 0 else 1_000_000)
