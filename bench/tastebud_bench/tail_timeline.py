"""Where the open-loop tail goes: the client's send/answer times joined with the workers' request timelines.

`tastebud bench --http --rate-fraction F --timeline` sends every open-loop request with ``X-Request-Id: <prefix><n>``;
each server worker records its timeline (``tastebud.http_server.timeline``). Both use CLOCK_MONOTONIC, so one
request's life splits into consecutive parts that add up to its latency:

``send_lag``   scheduled -> the client wrote it (the generator's own delay, or its connection still busy);
``to_app``     written -> the worker's ASGI app was called: the kernel, the worker finishing what it was doing
               (``busy_ahead``: the earlier requests it was still serving when this one was written), waking up and
               getting a core (``wake_runq``: run-queue delay between its previous request and this one), and a
               garbage collection meanwhile (``gc_before``);
``body`` / ``convert``   reading the body / building the API Gateway event;
``handler``    the Lambda handler (the service's own ``stage_ms`` total inside it, Redis waits ``redis``, a collection
               ``gc_during``, run-queue delay ``runq_during``, involuntary context switches ``preempted``);
``respond``    handing the response to the transport; ``to_client``: the kernel, the client's loop and parser.

``explain`` reports the mean of every part for the slowest 1% against all requests, and the share of the slowest
that each condition touches (a GC, queueing behind the own worker, the other worker busy at the same moment ...).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

PARTS = ("send_lag", "to_app", "body", "convert", "handler", "respond", "to_client")
DETAILS = ("busy_ahead", "wake_runq", "gc_before", "stage_total", "redis", "gc_during", "runq_during")
STAGES = ("retrieve", "rerank", "fairness", "stock")  # the service's own stage times (its response's stage_ms)


def read_timelines(directory: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(directory.glob("worker-*.jsonl")):
        with path.open() as handle:
            rows.extend(json.loads(line) for line in handle if line.strip())
    return rows


def join(scheduled: Sequence[float], sent: Sequence[float], answered: Sequence[float],
         rows: Sequence[dict[str, Any]], id_prefix: str) -> dict[str, np.ndarray]:
    """Per answered request that a worker recorded: every part and detail in ms, plus ``latency``, ``pid`` and
    ``other_busy`` (another worker was inside a request when this one was written)."""
    by_id = {row["request_id"]: row for row in rows}
    server_rows = _with_previous(rows)
    n_ids, picked = [], []
    for n, done in enumerate(answered):
        row = by_id.get(f"{id_prefix}{n}")
        if row is not None and np.isfinite(done) and np.isfinite(sent[n]):
            n_ids.append(n)
            picked.append(row)
    if not picked:
        raise ValueError("no open-loop request was found in the workers' timelines")
    idx = np.asarray(n_ids)
    sched, wrote, done = (np.asarray(a, dtype=float)[idx] for a in (scheduled, sent, answered))

    def col(name: str) -> np.ndarray:
        return np.asarray([row[name] for row in picked], dtype=float)

    enter, body, start, end, out = (col(k) for k in ("enter", "body", "handler_start", "handler_end", "sent"))
    prev = [server_rows[(row["pid"], row["request_id"])] for row in picked]
    prev_sent = np.asarray([p.get("sent", -np.inf) for p in prev], dtype=float)
    prev_runq = np.asarray([p.get("runq_sent", row["runq_enter"]) for p, row in zip(prev, picked, strict=True)])
    prev_gc = np.asarray([p.get("gc_sent", row["gc_enter"]) for p, row in zip(prev, picked, strict=True)])
    pid = col("pid")
    ms = 1e3
    joined = {
        "latency": (done - sched) * ms, "pid": pid, "scheduled": sched - float(np.asarray(scheduled)[0]),
        "send_lag": (wrote - sched) * ms, "to_app": (enter - wrote) * ms, "body": (body - enter) * ms,
        "convert": (start - body) * ms, "handler": (end - start) * ms, "respond": (out - end) * ms,
        "to_client": (done - out) * ms,
        "busy_ahead": np.maximum(prev_sent - wrote, 0.0) * ms,
        "wake_runq": (col("runq_enter") - prev_runq) * ms, "gc_before": (col("gc_enter") - prev_gc) * ms,
        "stage_total": np.asarray([row.get("stage_ms", {}).get("total", np.nan) for row in picked], dtype=float),
        "redis": (col("redis_sent") - col("redis_enter")) * ms, "gc_during": (col("gc_sent") - col("gc_enter")) * ms,
        "runq_during": (col("runq_sent") - col("runq_enter")) * ms,
        "preempted": col("nivcsw_sent") - col("nivcsw_enter"),
        "page_faults": col("minflt_sent") - col("minflt_enter"),
        "cpu": (col("cpu_sent") - col("cpu_enter")) * ms,
        "other_busy": _other_worker_busy(wrote, pid, rows),
        **{f"stage_{name}": np.asarray([row.get("stage_ms", {}).get(name, np.nan) for row in picked], dtype=float)
           for name in STAGES},
    }
    return joined


def _with_previous(rows: Sequence[dict[str, Any]]) -> dict[tuple[int, str], dict[str, Any]]:
    """(pid, request id) -> the same worker's previous request (by entry), or {} for its first."""
    previous: dict[tuple[int, str], dict[str, Any]] = {}
    for pid in {row["pid"] for row in rows}:
        ordered = sorted((row for row in rows if row["pid"] == pid), key=lambda row: row["enter"])
        before: dict[str, Any] = {}
        for row in ordered:
            previous[(pid, row["request_id"])] = before
            before = row
    return previous


def _other_worker_busy(wrote: np.ndarray, pid: np.ndarray, rows: Sequence[dict[str, Any]]) -> np.ndarray:
    busy = np.zeros(wrote.size, dtype=bool)
    for worker in {row["pid"] for row in rows}:
        spans = sorted((row["enter"], row["sent"]) for row in rows if row["pid"] == worker)
        starts = np.asarray([s for s, _ in spans])
        ends = np.asarray([e for _, e in spans])
        at = np.searchsorted(starts, wrote, side="right") - 1
        inside = (at >= 0) & (wrote <= ends[np.clip(at, 0, None)])
        busy |= inside & (pid != worker)
    return busy


def explain(joined: dict[str, np.ndarray], share: float = 0.01) -> dict[str, Any]:
    """The slowest ``share`` of requests against all: mean ms of each part, and what they have in common."""
    latency = joined["latency"]
    cut = float(np.quantile(latency, 1 - share))
    slow = latency >= cut

    def means(mask: np.ndarray) -> dict[str, float]:
        names = ("latency", *PARTS, *DETAILS, *(f"stage_{stage}" for stage in STAGES), "cpu", "page_faults")
        return {name: _mean_or_nan(joined[name][mask]) for name in names}

    def touched(mask: np.ndarray) -> dict[str, float]:
        conditions = {
            "gc_pause": (joined["gc_before"] + joined["gc_during"]) > 0,
            "queued_behind_own_worker": joined["busy_ahead"] > 0,
            "run_queue_over_0.5ms": (joined["wake_runq"] + joined["runq_during"]) > 0.5,
            "preempted": joined["preempted"] > 0,
            "other_worker_busy": joined["other_busy"],
            "redis_over_1ms": joined["redis"] > 1.0,
            "send_lag_over_1ms": joined["send_lag"] > 1.0,
        }
        return {name: round(float(np.mean(condition[mask])), 3) for name, condition in conditions.items()}

    pids, counts = np.unique(joined["pid"][slow], return_counts=True)
    return {
        "requests": int(latency.size), "slowest": int(slow.sum()), "latency_cut_ms": round(cut, 3),
        "mean_ms": {"slowest": means(slow), "all": means(np.ones_like(slow))},
        "share_touched": {"slowest": touched(slow), "all": touched(np.ones_like(slow))},
        "slowest_by_worker": {str(int(p)): int(c) for p, c in zip(pids, counts, strict=True)},
    }


def _mean_or_nan(values: np.ndarray) -> float:
    """The mean of the finite values, NaN (without numpy's empty-slice warning) when a stage never ran."""
    finite = values[np.isfinite(values)]
    return round(float(finite.mean()), 3) if finite.size else float("nan")


def write_csv(joined: dict[str, np.ndarray], path: Path) -> None:
    """Every joined request, one row: its scheduled time (s into the run) and every part and detail in ms."""
    columns = ("latency", *PARTS, *DETAILS, *(f"stage_{stage}" for stage in STAGES), "cpu", "page_faults", "preempted",
               "other_busy", "pid")
    with path.open("w") as handle:
        handle.write(",".join(("scheduled_s", *columns)) + "\n")
        for i in np.argsort(joined["scheduled"]):
            values = [f"{joined['scheduled'][i]:.4f}", *(f"{float(joined[c][i]):.3f}" for c in columns)]
            handle.write(",".join(values) + "\n")


def plot(joined: dict[str, np.ndarray], explained: dict[str, Any], path: Path, title: str) -> None:
    """Left: every request's latency over the run (log scale), by worker, GC-touched ones ringed. Right: the mean
    of each part for the slowest 1% against all requests (stacked bars). A PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (over_time, parts) = plt.subplots(1, 2, figsize=(14, 4.8), gridspec_kw={"width_ratios": [2.2, 1]})
    for pid in np.unique(joined["pid"]):
        mine = joined["pid"] == pid
        over_time.scatter(joined["scheduled"][mine], np.maximum(joined["latency"][mine], 0.05), s=4, alpha=0.6,
                          label=f"worker {int(pid)}")
    gc_hit = (joined["gc_before"] + joined["gc_during"]) > 0
    over_time.scatter(joined["scheduled"][gc_hit], joined["latency"][gc_hit], s=30, facecolors="none",
                      edgecolors="black", label="a GC pause")
    over_time.axhline(explained["latency_cut_ms"], color="red", linewidth=0.8, label="slowest 1% above")
    over_time.set_yscale("log")
    over_time.set_xlabel("seconds into the open-loop run")
    over_time.set_ylabel("latency from the scheduled send (ms)")
    over_time.legend(loc="upper left", fontsize=8, ncols=4)
    bottom = np.zeros(2)
    for part in PARTS:
        heights = np.asarray([explained["mean_ms"][group][part] for group in ("slowest", "all")])
        parts.bar(["slowest 1%", "all"], heights, bottom=bottom, label=part)
        bottom += heights
    parts.set_ylabel("mean ms")
    parts.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


KERNEL_COUNTERS = ("compact_stall", "thp_fault_alloc", "thp_fault_fallback", "pgmajfault", "allocstall_normal")


def kernel_counters() -> dict[str, int]:
    """Machine-wide memory events (/proc/vmstat): direct compaction stalls, huge-page faults, major faults."""
    values = dict(line.split() for line in Path("/proc/vmstat").read_text().splitlines())
    return {name: int(values.get(name, 0)) for name in KERNEL_COUNTERS}
