"""ScaNN's re-ordering copy of the vectors as float32, bfloat16 or int8, on `bench --items N`'s catalog: recall@200
against exact search, and the whole request's time with each index, interleaved per user (issue 24: at 1M items the
search of the 512 MB float32 copy stalls for ~100 ms every ~2 s; does a 4x smaller copy stall less?).

Every index is built over the same vectors with the same tree and hashing; each user is served once per index, in
rotating order, so machine noise hits all alike. Wall time per call: p50 / p99 / p99.9 / max and calls over 20 ms.

    .venv/bin/tastebud experiment ab_ann_reorder 1000000 3000
"""

from __future__ import annotations

import time

import numpy as np

from tastebud.adapters.embedded.scann_index import REORDER_TYPES, ScannIndex
from tastebud_bench.experiments.harness import warm_service

RECALL_QUERIES = 500
STALL_MS = 20.0


def run(n_items: int, users_count: int) -> None:
    warm = warm_service(n_items, users_count)
    index = warm.system.index
    assert isinstance(index, ScannIndex)
    vectors = warm.system.exact._vectors
    indexes = {"float32": index}
    for kind in REORDER_TYPES[1:]:
        started = time.perf_counter()
        indexes[kind] = ScannIndex.build(vectors, f"reorder-{kind}", reorder_as=kind)
        print(f"built {kind}: {time.perf_counter() - started:.1f} s", flush=True)

    rng = np.random.default_rng(3)
    queries = vectors[rng.integers(0, len(vectors), RECALL_QUERIES)] + 0.3 * rng.normal(
        size=(RECALL_QUERIES, vectors.shape[1])).astype(np.float32)
    truth = [set(warm.system.exact.search(q, 200)[0].tolist()) for q in queries]
    for kind, candidate in indexes.items():
        found = [len(t & set(candidate.search(q, 200)[0].tolist())) / 200 for q, t in zip(queries, truth, strict=True)]
        print(f"{kind:9s} recall@200 {np.mean(found):.4f}")

    searches = {kind: candidate.search for kind, candidate in indexes.items()}
    current = {"kind": "float32"}
    real_search = index.search

    def search(query: np.ndarray, k: int, *, domain: str = "all") -> tuple[np.ndarray, np.ndarray]:
        return searches[current["kind"]](query, k, domain=domain)

    index.search = search  # type: ignore[method-assign]
    wall: dict[str, list[float]] = {kind: [] for kind in indexes}
    kinds = list(indexes)
    try:
        for i, user in enumerate(warm.users):
            for kind in kinds[i % len(kinds):] + kinds[:i % len(kinds)]:
                current["kind"] = kind
                started = time.perf_counter()
                warm.service.recommend(user, k=20)
                wall[kind].append((time.perf_counter() - started) * 1e3)
    finally:
        index.search = real_search  # type: ignore[method-assign]
    for kind, values in wall.items():
        ms = np.asarray(values)
        p50, p99, p999 = np.percentile(ms, [50, 99, 99.9])
        print(f"{kind:9s} request p50 {p50:.3f}  p99 {p99:.3f}  p99.9 {p999:.3f}  max {ms.max():.1f} ms; "
              f"over {STALL_MS:g} ms: {int((ms > STALL_MS).sum())} of {ms.size}")


def main(argv: list[str]) -> None:
    """Command-line entry: `tastebud experiment ab_ann_reorder ITEMS USERS`."""
    if len(argv) != 2:
        raise ValueError("usage: tastebud experiment ab_ann_reorder ITEMS USERS (e.g. 1000000 3000)")
    run(int(argv[0]), int(argv[1]))
