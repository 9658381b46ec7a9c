"""Pieces of `tastebud bench --http`: the idealised fixed-rate server and where the cores went."""

from __future__ import annotations

import numpy as np
import pytest

from tastebud_bench.cpu_accounting import CpuSample, core_shares, machine_cpu_seconds
from tastebud_bench.http_load import fixed_rate_queue


def test_service_shorter_than_the_gap_never_waits() -> None:
    model = fixed_rate_queue(np.asarray([5.0]), rate=100.0, workers=1, requests=1000)  # one request every 10 ms
    assert model == {"p50_ms": 5.0, "p99_ms": 5.0, "p999_ms": 5.0, "utilisation": 0.5}


def test_service_longer_than_the_gap_queues_without_bound() -> None:
    model = fixed_rate_queue(np.asarray([15.0]), rate=100.0, workers=1, requests=1000)
    # request n waits 5 ms more than request n-1: latency 15 + 5 n
    assert model["p50_ms"] == pytest.approx(15 + 5 * np.percentile(np.arange(1000), 50))
    assert model["p99_ms"] > 4000 and model["utilisation"] == 1.5


def test_workers_take_turns() -> None:
    # Two workers: each sees a request every 20 ms, so 15 ms of work never waits.
    assert fixed_rate_queue(np.asarray([15.0]), rate=100.0, workers=2, requests=1000)["p99_ms"] == 15.0


def test_a_slow_request_delays_the_next_one_on_its_worker() -> None:
    # 10% of requests take 25 ms (gap 10 ms, one worker): the one after a slow request waits up to 15 ms.
    service = np.asarray([2.0] * 9 + [25.0])
    model = fixed_rate_queue(service, rate=100.0, workers=1, requests=20_000, seed=1)
    assert model["p50_ms"] == 2.0
    assert 25.0 <= model["p99_ms"] <= 25.0 + 15.0 + 5.0


def test_stolen_time_is_its_own_share_not_other_processes() -> None:
    shares = core_shares(10.0, 6.0, 1.0, 1.0, 10.0, stolen_s=2.0)
    assert shares["cores_other_processes"] == 0.2 and shares["cores_stolen"] == 0.2
    busy, total, stolen = machine_cpu_seconds()
    assert stolen >= 0 and 0 < busy < total


def test_a_runs_core_shares_are_those_of_the_differences_between_two_samples() -> None:
    before = CpuSample(server=1.0, busy=10.0, total=40.0, stolen=0.5, redis=0.25, generator=0.5)
    after = CpuSample(server=7.0, busy=20.0, total=60.0, stolen=2.5, redis=1.25, generator=1.5)
    assert after.elapsed_s(before, cores=2) == 10.0
    assert after.core_shares_since(before, cores=2) == core_shares(10.0, 6.0, 1.0, 1.0, 10.0, stolen_s=2.0)
