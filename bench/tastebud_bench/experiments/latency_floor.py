"""How low the open-loop p99 of `tastebud bench --http` can go here: the request's work against its fixed cost.

One synthetic build of N items (as `tastebud bench --items N`), then:

1. **Fewer candidates.** The service is wired with the design's candidate counts (ServingKnobs) and with 1/2, 1/4 and
   1/10 of them, and each is measured the `tastebud bench --http` way (handler in process; wrk closed loop at 8 and
   32 connections = capacity; open loop at half of it), with shorter runs: 1,000 in-process calls, 6 s closed loops,
   20 s open loop.
2. **No work.** Each open loop above is followed, as in every `tastebud bench --http` run, by the same schedule on
   ``GET /health/live`` (no service, no dependency: ``no_work_floor``). Here that route's own capacity is also
   measured (wrk), with open loops at 25% and 50% of it: what HTTP, the load generator and the machine cost at the
   rates a much faster service would be measured at.

    .venv/bin/tastebud experiment latency_floor 1000000 [--json FILE] [--plot PNG]
    .venv/bin/tastebud experiment latency_floor --from-json FILE --plot PNG

Needs wrk (`make wrk`). Takes ~14 min at 1M items; run it alone on the machine (`flock /work/cpu.lock ...`).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from dataclasses import asdict, replace
from typing import Any

from tastebud.recommendation import StageTrace
from tastebud.settings import ServingKnobs
from tastebud_bench import in_process as bench
from tastebud_bench.http_load import NO_WORK_PATH, OPEN_LOOP_P99_GOAL_MS, ForkedServer, run_http_bench
from tastebud_bench.open_loop import open_loop_load

OPEN_LOOP_S = 20.0


def candidate_settings() -> dict[str, ServingKnobs]:
    design = ServingKnobs()

    def scaled(divisor: int) -> ServingKnobs:
        return replace(design, retrieve_k=design.retrieve_k // divisor,
                       history_candidates=design.history_candidates // divisor,
                       related_candidates=design.related_candidates // divisor,
                       similar_candidates=design.similar_candidates // divisor,
                       popular_candidates=design.popular_candidates // divisor)

    return {"design": design, "1/2": scaled(2), "1/4": scaled(4), "1/10": scaled(10)}


def wrk_capacity(url: str) -> float:
    """The best of wrk's req/s at 8 and 32 keep-alive connections (10 s each) on ``GET url``."""
    best = 0.0
    for connections in (8, 32):
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", "-d10s", url], capture_output=True, text=True,
                             check=True).stdout
        if "Non-2xx" in out or "Socket errors" in out:
            raise RuntimeError(f"wrk saw errors on {url}:\n{out}")
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if match is None:
            raise RuntimeError(f"no Requests/sec in wrk's output:\n{out}")
        best = max(best, float(match.group(1)))
    return best


def run(n_items: int, json_path: str | None) -> dict[str, Any]:
    system = bench.synthetic(n_items, progress=False)
    assert system.rewire is not None
    report: dict[str, Any] = {"items": n_items, "requests": {}, "no_work": {}}
    for name, knobs in candidate_settings().items():
        service = system.rewire(knobs)
        rows = []
        for user in system.user_ids[:300]:
            trace = StageTrace()
            service.recommend(user, k=20, trace=trace)
            assert trace.retrieved is not None
            rows.append(trace.retrieved.rows.size)
        result = run_http_bench(service, system.user_ids, {"candidates": name}, workers=2, requests=1000,
                                duration_s=6.0, rate_fractions=(0.5,), rate_duration_s=OPEN_LOOP_S)
        local, loop = result["in_process"], result["open_loop"][0]
        rows_mean = sum(rows) / len(rows)
        report["requests"][name] = {"rows_ranked_mean": round(rows_mean, 1), "in_process": local,
                                    "capacity_requests_per_s": result["capacity_requests_per_s"],
                                    "open_loop": {k: v for k, v in loop.items() if k != "queue_model"}}
        floor = loop["no_work_floor"]
        print(f"{name:>6}: {rows_mean:5.0f} rows ranked | in process p50 {local['p50_ms']} p99 "
              f"{local['p99_ms']} ms, CPU {local['cpu_ms_per_call']} ms | capacity "
              f"{result['capacity_requests_per_s']} req/s | open loop at {loop['target_rate']} req/s: p50 "
              f"{loop['p50_ms']} p90 {loop['p90_ms']} p99 {loop['p99_ms']} p99.9 {loop['p999_ms']} ms, "
              f"{loop['errors']} errors, cores per worker {loop['cores_per_worker']}, stolen {loop['cores_stolen']} "
              f"| GET {NO_WORK_PATH} at that rate: p50 {floor['p50_ms']} p99 {floor['p99_ms']} ms", flush=True)

    with ForkedServer(system.service, 2) as server:
        url = server.url + NO_WORK_PATH
        capacity = wrk_capacity(url)
        report["no_work"]["capacity_requests_per_s"] = capacity
        print(f"GET {NO_WORK_PATH}: capacity {capacity:.0f} req/s (wrk)", flush=True)
        rates = {"25% of its own capacity": 0.25 * capacity, "50% of its own capacity": 0.5 * capacity}
        for label, rate in rates.items():
            run = open_loop_load(server.url, [None], rate=rate, duration_s=OPEN_LOOP_S, path=NO_WORK_PATH)
            row = {key: value for key, value in asdict(run).items() if key != "latencies_ms"}
            report["no_work"][label] = row
            print(f"GET {NO_WORK_PATH} at {rate:.0f} req/s ({label}): p50 {run.p50_ms} p90 {run.p90_ms} p99 "
                  f"{run.p99_ms} p99.9 {run.p999_ms} ms, send lag p99 {run.send_lag_p99_ms} ms, {run.errors} "
                  f"errors {run.error_detail or ''}", flush=True)
    if json_path:
        with open(json_path, "w") as out:
            json.dump(report, out, indent=1)
    return report


def plot(report: dict[str, Any], path: str) -> None:
    """Open-loop p99 and p50 per candidate setting, the no-work route's p99 at the same rates, and the goal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(report["requests"].values())
    rows = [row["rows_ranked_mean"] for row in settings]
    figure, axis = plt.subplots(figsize=(7, 4.2))
    axis.plot(rows, [row["open_loop"]["p99_ms"] for row in settings], "o-", label="recommendation p99 (open loop)")
    axis.plot(rows, [row["open_loop"]["p50_ms"] for row in settings], "o--", label="recommendation p50")
    axis.plot(rows, [row["in_process"]["p50_ms"] for row in settings], "s:", label="in process p50 (handler)")
    axis.plot(rows, [row["open_loop"]["no_work_floor"]["p99_ms"] for row in settings], "^-",
              color="tab:purple", label=f"GET {NO_WORK_PATH} p99 at the same rate (no work)")
    axis.axhline(OPEN_LOOP_P99_GOAL_MS, color="red", linewidth=1, label="goal: p99 5 ms")
    for name, x, row in zip(report["requests"], rows, settings, strict=True):
        axis.annotate(f"{name}\n{row['open_loop']['target_rate']:.0f} req/s", (x, row["open_loop"]["p99_ms"]),
                      textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    axis.set_yscale("log")
    axis.set_ylim(top=3 * max(row["open_loop"]["p99_ms"] for row in settings))
    axis.set_xlabel("candidates ranked per request (mean)")
    axis.set_ylabel("ms (log scale)")
    axis.set_title(f"HTTP at half capacity, {report['items']:,} items, 2 workers on 2 vCPUs")
    axis.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str]) -> None:
    """Command-line entry: `tastebud experiment latency_floor ARGS...`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("items", type=int, nargs="?", help="catalog size of the synthetic build")
    parser.add_argument("--json", dest="json_path", help="also write the whole report to this file")
    parser.add_argument("--plot", help="draw the report to this PNG")
    parser.add_argument("--from-json", help="draw a report written earlier by --json (measures nothing)")
    args = parser.parse_args(argv)
    if args.from_json:
        with open(args.from_json) as saved:
            measured = json.load(saved)
    elif args.items:
        measured = run(args.items, args.json_path)
    else:
        parser.error("give a catalog size, or --from-json FILE")
    if args.plot:
        plot(measured, args.plot)
