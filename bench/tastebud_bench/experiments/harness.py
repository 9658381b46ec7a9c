"""The set-up the in-process experiments share: the synthetic system of `tastebud bench --items N`, quiet logs,
a sample of its users, a warm-up, and the start-up heap frozen (as `tastebud serve` does after loading)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from tastebud.heap import freeze_startup_heap
from tastebud.pipeline.service import RecommendationService
from tastebud_bench.in_process import BenchSystem, synthetic


@dataclass(frozen=True)
class WarmService:
    system: BenchSystem
    service: RecommendationService
    users: list[str]  # the timed users (the warm-up ones are not in it)


def warm_service(n_items: int, users: int, *, warmup: int = 100, seed: int = 1) -> WarmService:
    """Build the synthetic system of ``n_items``, serve ``warmup`` random users, freeze the heap, and return the
    service with ``users`` more random users to time."""
    logging.getLogger("tastebud").setLevel(logging.WARNING)
    system = synthetic(n_items, progress=False)
    service = system.service
    assert isinstance(service, RecommendationService)  # synthetic systems serve without the live runtime
    rng = np.random.default_rng(seed)
    picked = [str(u) for u in rng.choice(np.asarray(system.user_ids, dtype=object), users + warmup)]
    for user in picked[:warmup]:
        service.recommend(user, k=20)
    freeze_startup_heap()
    return WarmService(system, service, picked[warmup:])
