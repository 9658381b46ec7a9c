"""The fault soak's report: requests by kind and answer, each fault's slowest request (percentiles hide a fault
transition), what was acknowledged and lost; and every request as a CSV."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tastebud_bench.soak_schedule import FaultWindow
from tastebud_bench.soak_traffic import Sample

AFTER_FAULT = 10  # the requests after a fault's start that judge its transition


@dataclass
class SoakReport:
    duration_s: float
    requests: dict[str, dict[str, int]]
    faults: list[dict[str, Any]]
    acknowledged: dict[str, int]
    lost: dict[str, list[str]]
    bad_reads: int
    retried_after_a_dropped_connection: int
    events_not_logged_after_a_dropped_connection: int
    refused_writes: int
    unknown_writes: int
    orphans: list[int]
    passed: bool

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def summarise(samples: list[Sample], windows: list[FaultWindow]) -> list[dict[str, Any]]:
    faults = []
    for window in windows:
        after = sorted((s for s in samples if s.started >= window.started), key=lambda s: s.started)[:AFTER_FAULT]
        during = [s for s in samples if window.started <= s.started <= window.ended + 1.0]
        reads = [s for s in during if s.op == "recommend"]
        faults.append({"fault": window.name, "at_s": round(window.started, 2),
                       "held_s": round(window.ended - window.started, 2), "detail": window.detail,
                       f"slowest_of_next_{AFTER_FAULT}_ms": round(max((s.ms for s in after), default=0.0), 1),
                       "slowest_read_during_ms": round(max((s.ms for s in reads), default=0.0), 1),
                       "slowest_request_during_ms": round(max((s.ms for s in during), default=0.0), 1),
                       "requests_during": len(during),
                       "writes_refused_during": sum(1 for s in during if s.op != "recommend" and s.status == 503)})
    return faults


def write_samples(samples: list[Sample], path: Path) -> None:
    """Every request: when it started (s into the soak), how long it took, what it was and its answer."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["started_s", "ms", "op", "status", "ok", "retried"])
        for s in sorted(samples, key=lambda sample: sample.started):
            writer.writerow([f"{s.started:.4f}", f"{s.ms:.3f}", s.op, s.status, int(s.ok), int(s.retried)])
