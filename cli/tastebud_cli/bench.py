"""`tastebud bench`: latency in process and through the HTTP server, and start-up (docs/BENCHMARKS.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tastebud_bench.machine_load import MachineLoad, busy_warning
from tastebud_cli.console import err, fail, out, print_json


def bench(
    artifacts: Annotated[Path | None, typer.Option("--artifacts", help="Benchmark a trained system")] = None,
    items: Annotated[int | None, typer.Option("--items", min=100, help="Benchmark a synthetic catalog of N items")]
    = None,
    requests: Annotated[int, typer.Option(min=10, help="Measured requests")] = 2000,
    freshness: Annotated[bool, typer.Option("--freshness", help=(
        "With --artifacts: event -> next answer, item upsert -> retrievable, and a load run with hot swaps"))] = False,
    seconds: Annotated[float, typer.Option(min=5, help="--freshness: length of the load run")] = 60.0,
    rate: Annotated[float, typer.Option(min=1, help="--freshness: requests per second during the load run")] = 100.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    over_http: Annotated[bool, typer.Option("--http", help="In process vs through `tastebud serve`'s HTTP server")]
    = False,
    workers: Annotated[int | None, typer.Option(min=1, help="--http: server workers (default: one per core)")] = None,
    duration: Annotated[float, typer.Option(min=1, help="--http: seconds per throughput run")] = 10.0,
    rate_fraction: Annotated[list[float] | None, typer.Option(
        "--rate-fraction", min=0.01, max=2.0, help=(
            "--http: after the closed-loop throughput runs (the measured capacity), send requests open loop at this "
            "fraction of the capacity, latency from each request's scheduled send time (repeatable, e.g. 0.5)"))]
    = None,
    rate_seconds: Annotated[float, typer.Option(min=1, help="--http: seconds per open-loop run")] = 30.0,
    rate_connections: Annotated[int, typer.Option(min=1, help="--http: keep-alive connections of the open loop")]
    = 16,
    timeline: Annotated[Path | None, typer.Option("--timeline", help=(
        "--http --rate-fraction: every worker records each request's timeline; the slowest 1% explained, every "
        "request (CSV) and a plot written to this directory"))] = None,
    startup: Annotated[bool, typer.Option("--startup", help=(
        "With --artifacts: start `tastebud serve` 3 times (--workers, default 1); time to ready and PSS memory"))]
    = False,
) -> None:
    """Per-stage latency percentiles (p50/p95/p99, ms) and ANN recall@200 vs exact search; with --http the
    keep-alive latency and the throughput (8 and 32 connections) of the HTTP server against the CPU bound, and with
    --rate-fraction the open-loop (fixed-rate) latency percentiles at that share of the measured capacity."""
    if (artifacts is None) == (items is None):
        fail("give exactly one of --artifacts DIR or --items N")
    if rate_fraction and not over_http:
        fail("--rate-fraction needs --http")
    if timeline is not None and not rate_fraction:
        fail("--timeline explains the open-loop runs: give --http --rate-fraction F")
    if startup:
        if artifacts is None or over_http or freshness:
            fail("--startup measures `tastebud serve` on a trained system: give --artifacts DIR (alone)")
        _bench_startup(artifacts, workers or 1, as_json=as_json)
        return
    if over_http:
        _bench_http(artifacts, items, requests=requests, workers=workers, duration=duration, as_json=as_json,
                    rate_fractions=tuple(rate_fraction or ()), rate_seconds=rate_seconds,
                    rate_connections=rate_connections, timeline=timeline)
        return
    if freshness:
        if artifacts is None:
            fail("--freshness measures a trained system: give --artifacts DIR")
        _bench_freshness(artifacts, trials=min(requests, 200), seconds=seconds, rate=rate, as_json=as_json)
        return
    _bench_in_process(artifacts, items, requests=requests, as_json=as_json)


def _bench_freshness(artifacts: Path, *, trials: int, seconds: float, rate: float, as_json: bool) -> None:
    from tastebud.errors import TastebudError
    from tastebud_bench.freshness import run_freshness

    try:
        report = run_freshness(artifacts, trials=trials, seconds=seconds, rate=rate, progress=not as_json)
    except TastebudError as exc:
        fail(str(exc))
    print_json(report)


def _bench_in_process(artifacts: Path | None, items: int | None, *, requests: int, as_json: bool) -> None:
    from tastebud.errors import TastebudError
    from tastebud_bench import in_process as bench_module

    try:
        system = (bench_module.from_artifacts(artifacts) if artifacts is not None
                  else bench_module.synthetic(int(items or 0), progress=not as_json))
    except TastebudError as exc:
        fail(str(exc))
    machine = MachineLoad().start()
    try:
        report = bench_module.run_bench(system, requests=requests, progress=not as_json)
        report["machine"] = machine.report()
    finally:
        system.close()
    _warn_if_busy(report["machine"])
    if as_json:
        print_json(report)
        return
    out.print(report["system"])
    table = Table(title=f"latency over {report['requests']} requests (ms), k={report['k']}")
    for column in ("stage", "p50", "p95", "p99"):
        table.add_column(column, justify="right")
    for stage, values in report["stage_ms"].items():
        table.add_row(stage, *(f"{values[p]:.3f}" for p in ("p50", "p95", "p99")))
    out.print(table)
    out.print(f"ANN recall@200 vs exact: {report['ann_recall@200']:.4f}   short pages: {report['short_pages']}")


def _bench_startup(artifacts: Path, workers: int, *, as_json: bool) -> None:
    from tastebud.errors import TastebudError
    from tastebud_bench.startup import run_startup

    machine = MachineLoad().start()
    try:
        report = run_startup(artifacts, workers=workers)
    except (TastebudError, RuntimeError, TimeoutError) as exc:
        fail(str(exc))
    report["machine"] = machine.report()
    _warn_if_busy(report["machine"])
    if as_json:
        print_json(report)
        return
    table = Table(title=f"tastebud serve, {workers} worker(s), {report['runs']} starts")
    for column in ("run", "ready (s)", "master + workers PSS (MB)", "redis PSS (MB)", "TensorFlow loaded"):
        table.add_column(column, justify="right")
    for index, run in enumerate(report["each"], 1):
        table.add_row(str(index), f"{run['ready_s']:.2f}", f"{run['server_pss_mb']:.0f}",
                      f"{run['redis_pss_mb']:.0f}", "yes" if run["tensorflow_loaded"] else "no")
    median = report["median"]
    table.add_row("median", f"{median['ready_s']:.2f}", f"{median['server_pss_mb']:.0f}",
                  f"{median['redis_pss_mb']:.0f}", "")
    out.print(table)


def _warn_if_busy(machine: dict[str, Any]) -> None:
    """A figure from a busy machine is not evidence (docs/BENCHMARKS.md): say so on stderr, whatever the format."""
    warning = busy_warning(machine)
    if warning is not None:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)


def _bench_http(artifacts: Path | None, items: int | None, *, requests: int, workers: int | None, duration: float,
                as_json: bool, rate_fractions: tuple[float, ...] = (), rate_seconds: float = 30.0,
                rate_connections: int = 16, timeline: Path | None = None) -> None:
    import tempfile

    from tastebud.errors import TastebudError
    from tastebud.http_server.embedded_redis import SharedEmbeddedRedis
    from tastebud_bench import in_process as bench_module
    from tastebud_bench.http_load import run_http_bench

    redis = SharedEmbeddedRedis(Path(tempfile.mkdtemp(prefix="tastebud-bench-http-")) / "stock.rdb")
    try:
        system = (bench_module.from_artifacts(artifacts, redis_url=redis.url) if artifacts is not None
                  else bench_module.synthetic(int(items or 0), progress=not as_json, redis_url=redis.url))
    except TastebudError as exc:
        redis.stop()
        fail(str(exc))

    def progress(message: str) -> None:
        if not as_json:
            err.print(f"[dim]{message}[/]", highlight=False)

    machine = MachineLoad().start()
    try:
        report = run_http_bench(system.service, system.user_ids, system.description, workers=workers,
                                requests=requests, duration_s=duration, after_fork=redis.detach_in_worker,
                                redis_pid=redis.server_pid, rate_fractions=rate_fractions,
                                rate_duration_s=rate_seconds, rate_connections=rate_connections, timeline=timeline,
                                progress=progress)
        report["machine"] = machine.report()
    finally:
        redis.stop()
    _warn_if_busy(report["machine"])
    if as_json:
        print_json(report)
        return
    _print_http_report(report)


def _print_http_report(report: dict[str, Any]) -> None:
    """`bench --http` as tables: in process, keep-alive, throughput (closed loop) and, if run, the open loop."""
    local, keep_alive = report["in_process"], report["keep_alive"]
    out.print(report["system"])
    out.print(f"{report['cores']} cores, {report['workers']} workers, load: {report['load_generator']}")
    out.print(f"in process: p50 {local['p50_ms']} ms, p99 {local['p99_ms']} ms, CPU {local['cpu_ms_per_call']} ms/call "
              f"-> CPU bound {report['cpu_bound_requests_per_s']} req/s")
    out.print(f"keep-alive (1 connection): p50 {keep_alive['p50_ms']} ms (+{keep_alive['added_ms']} ms), "
              f"p99 {keep_alive['p99_ms']} ms")
    table = Table(title="throughput over keep-alive connections")
    for column in ("connections", "req/s", "share of CPU bound", "p50 ms", "p99 ms", "errors",
                   "cores srv/redis/wrk/other"):
        table.add_column(column, justify="right")
    for row in report["throughput"]:
        cores = "/".join(f"{row[name]:.2f}" for name in ("cores_server", "cores_redis", "cores_load_generator",
                                                           "cores_other_processes"))
        table.add_row(str(row["connections"]), f"{row['requests_per_s']:.0f}", f"{row['share_of_cpu_bound']:.0%}",
                      f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}", str(row["errors"]), cores)
    out.print(table)
    if report["open_loop"]:
        out.print(_open_loop_table(report))
    out.print(f"goals: {report['goals']}")


def _open_loop_table(report: dict[str, Any]) -> Table:
    """One row per open-loop run: its rate, latency percentiles, errors, the no-work floor and the cores' split."""
    table = Table(title=f"open loop (fixed rate, latency from the scheduled send time), capacity "
                        f"{report['capacity_requests_per_s']:.0f} req/s")
    for column in ("share", "target req/s", "achieved req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms",
                   "errors", "send lag p99 ms", "no-work p99 ms", "cores srv/redis/gen/other"):
        table.add_column(column, justify="right")
    for row in report["open_loop"]:
        cores = "/".join(f"{row[name]:.2f}" for name in ("cores_server", "cores_redis", "cores_load_generator",
                                                           "cores_other_processes"))
        table.add_row(f"{row['fraction_of_capacity']:.0%}", f"{row['target_rate']:.0f}",
                      f"{row['achieved_rate']:.0f}", *(f"{row[name]:.2f}" for name in (
                          "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")),
                      str(row["errors"]), f"{row['send_lag_p99_ms']:.2f}",
                      f"{row['no_work_floor']['p99_ms']:.2f}", cores)
    return table
