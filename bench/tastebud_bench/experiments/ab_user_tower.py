"""float32 against int8 user tower inside the whole request, interleaved per user, on `bench --items N`'s catalog.

The bench serves the int8 tower (what training publishes when it passes its agreement gate); this loads the float32
file beside it and alternates the two encoders in random order per user, so machine noise hits both alike. Prints the
service's thread CPU time per call for each and the paired difference (docs/BENCHMARKS.md, session 5).

    .venv/bin/tastebud experiment ab_user_tower 1000000
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tastebud.adapters.embedded.onnx_user_encoder import OnnxUserEncoder
from tastebud.artifacts import USER_TOWER, USER_TOWER_INT8
from tastebud_bench.experiments.harness import warm_service


def run(n_items: int, users_count: int = 3900) -> None:
    warm = warm_service(n_items, users_count)
    service = warm.service
    int8 = service.retriever.encoder
    assert isinstance(int8, OnnxUserEncoder) and int8.model_path.name == USER_TOWER_INT8
    fp32 = OnnxUserEncoder(Path(int8.model_path).with_name(USER_TOWER), int8._vocab)
    arms = {"float32": fp32, "int8": int8}
    rng = np.random.default_rng(2)
    cpu: dict[str, list[float]] = {name: [] for name in arms}
    for user in warm.users:
        for name in rng.permutation(list(arms)):
            service.retriever._encoder = arms[name]
            started = time.thread_time()
            service.recommend(user, k=20)
            cpu[name].append((time.thread_time() - started) * 1e3)
    service.retriever._encoder = int8
    for name, values in cpu.items():
        print(f"{name}: service CPU per call median {np.median(values):.3f} ms, mean {np.mean(values):.3f} ms")
    difference = np.asarray(cpu["int8"]) - np.asarray(cpu["float32"])
    print(f"int8 - float32, paired: median {np.median(difference):+.3f} ms, mean {difference.mean():+.3f} ms")


def main(argv: list[str]) -> None:
    """Command-line entry: `tastebud experiment ab_user_tower ARGS...`."""
    run(int(argv[0]) if len(argv) > 0 else 1_000_000)
