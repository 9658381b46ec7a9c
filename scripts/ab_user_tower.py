"""float32 against int8 user tower inside the whole request, interleaved per user, on `bench --items N`'s catalog.

The bench serves the int8 tower (what training publishes when it passes its agreement gate); this loads the float32
file beside it and alternates the two encoders in random order per user, so machine noise hits both alike. Prints the
service's thread CPU time per call for each and the paired difference (docs/BENCHMARKS.md, session 5).

    PYTHONPATH=layers/core:training .venv/bin/python scripts/ab_user_tower.py 1000000
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np

from tastebud.adapters.embedded.onnx_user_encoder import OnnxUserEncoder
from tastebud.artifacts import USER_TOWER, USER_TOWER_INT8
from tastebud.heap import freeze_startup_heap
from tastebud.service import RecommendationService
from tastebud_bench import in_process as bench


def main(n_items: int, users_count: int = 3900) -> None:
    logging.getLogger("tastebud").setLevel(logging.WARNING)
    system = bench.synthetic(n_items, progress=False)
    service = system.service
    assert isinstance(service, RecommendationService)  # synthetic systems serve without the live runtime
    int8 = service.retriever.encoder
    assert isinstance(int8, OnnxUserEncoder) and int8.model_path.name == USER_TOWER_INT8
    fp32 = OnnxUserEncoder(Path(int8.model_path).with_name(USER_TOWER), int8._vocab)
    arms = {"float32": fp32, "int8": int8}
    rng = np.random.default_rng(1)
    users = [str(u) for u in rng.choice(np.asarray(system.user_ids, dtype=object), users_count + 100)]
    for user in users[:100]:
        service.recommend(user, k=20)
    freeze_startup_heap()
    cpu: dict[str, list[float]] = {name: [] for name in arms}
    for user in users[100:]:
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


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
