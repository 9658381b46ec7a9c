"""The fault soak (issue 21) in `make test`: `tastebud serve --workers 2` on the tiny artifacts under mixed traffic
(recommendations, events, stock, item upserts) while Redis is killed, paused, slowed and restarted from a torn
append-only file, a worker is killed and a corrupt version is published. `tastebud chaos` runs the same soak,
longer, on any artifacts.

Afterwards: no read answered anything but a full 200 page, every acknowledged write is in Redis and in the data
directory's log, and no redis-server outlived the server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tastebud_bench.soak import plot, soak
from tastebud_bench.soak_report import AFTER_FAULT

pytestmark = [pytest.mark.slow, pytest.mark.soak]
DURATION_S = 60.0
# The slowest of the 10 requests after a fault's start. Each may pay the Redis calls' deadlines (10 ms per read,
# 250 ms per write) until the circuit opens; this bound also leaves room for a shared 2-core machine's scheduling.
TRANSITION_BOUND_MS = 1000.0


def test_a_fault_soak_loses_no_acknowledged_write_and_fails_no_read(tiny_artifacts: Path, tmp_path: Path) -> None:
    report, samples, windows = soak(tiny_artifacts, tmp_path, duration_s=DURATION_S, clients=4, rate=40.0,
                                    workers=2, seed=1, hold_s=2.0)
    print(report.as_json())  # -s shows the numbers the closing note quotes
    assert [w.name for w in windows] == ["redis_killed", "redis_paused", "redis_slowed", "worker_killed",
                                         "corrupt_version", "redis_aof_torn", "redis_killed"]
    assert report.bad_reads == 0
    assert report.lost == {}, report.lost
    assert report.orphans == []
    assert report.acknowledged["events"] > 100 and report.acknowledged["items"] > 10  # the soak did write
    assert report.refused_writes > 0  # and the faults did refuse some: each was felt
    for fault in report.faults:
        assert fault[f"slowest_of_next_{AFTER_FAULT}_ms"] < TRANSITION_BOUND_MS, fault
    assert report.passed
    plot(samples, windows, tmp_path / "soak.png")  # what `tastebud chaos --out` draws
    assert (tmp_path / "soak.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
