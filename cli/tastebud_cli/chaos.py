"""`tastebud chaos`: the fault soak (tastebud_bench.soak) from the command line, with its report."""

from __future__ import annotations

import signal
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

err = Console(stderr=True)


def chaos(
    artifacts: Annotated[Path, typer.Option("--artifacts", help="Artifacts to serve (a copy is served and faulted)")],
    duration: Annotated[float, typer.Option(min=20, help="Seconds of traffic; faults at fixed shares of it")] = 75.0,
    clients: Annotated[int, typer.Option(min=1, max=64, help="Client threads (each a keep-alive connection)")] = 4,
    rate: Annotated[float, typer.Option(min=1, help="Requests per second, all clients together")] = 40.0,
    workers: Annotated[int, typer.Option(min=1, max=16, help="Server worker processes")] = 2,
    hold: Annotated[float, typer.Option(min=0.5, help="Seconds a pause, slowdown or bad version lasts")] = 2.0,
    seed: Annotated[int, typer.Option(help="Seeds the traffic mix")] = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Write report.json, requests.csv and soak.png here")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Serve a copy of ARTIFACTS, send mixed traffic and inject faults on a schedule (Redis killed, paused, slowed,
    restarted from a torn append-only file; a worker killed; a corrupt version published), then check that every
    acknowledged write is in Redis and the data log, that every read was a full 200 page, and that no process was
    left behind. Exits 1 when any check fails."""
    from tastebud_bench.soak import FaultWindow, plot, soak, write_samples

    # SIGTERM: unwind (the server is stopped, the work directory removed) instead of dying where we stand.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    def on_fault(window: FaultWindow) -> None:
        err.print(f"[yellow]{window.started:6.1f} s[/] {window.name}: {window.detail}", highlight=False)

    with tempfile.TemporaryDirectory(prefix="tastebud-chaos-") as work:
        err.print(f"serving a copy of {artifacts} with {workers} worker(s); {duration:g} s of traffic at {rate:g} "
                  f"req/s from {clients} clients")
        report, samples, windows = soak(artifacts, Path(work), duration_s=duration, clients=clients, rate=rate,
                                        workers=workers, seed=seed, hold_s=hold, on_fault=on_fault)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(report.as_json())
        write_samples(samples, out / "requests.csv")
        plot(samples, windows, out / "soak.png")
        err.print(f"wrote {out / 'report.json'}, {out / 'requests.csv'} and {out / 'soak.png'}")
    if as_json:
        print(report.as_json())
    else:
        table = Table(title=f"faults ({report.duration_s:g} s soak)")
        for column in ("fault", "at s", "slowest of next 10 ms", "slowest read during ms", "writes refused"):
            table.add_column(column)  # each fault's details were printed as it happened
        for fault in report.faults:
            table.add_row(fault["fault"], f"{fault['at_s']:.1f}", f"{fault['slowest_of_next_10_ms']:.1f}",
                          f"{fault['slowest_read_during_ms']:.1f}", str(fault["writes_refused_during"]))
        Console().print(table)
        Console().print(f"requests by status: {report.requests}\nacknowledged: {report.acknowledged}  lost: "
                        f"{report.lost or 0}  non-200 reads: {report.bad_reads}  retried after a dropped "
                        f"connection: {report.retried_after_a_dropped_connection}  refused writes: "
                        f"{report.refused_writes}  unknown: {report.unknown_writes}  orphans: {report.orphans or 0}")
    if not report.passed:
        err.print("[red]chaos soak FAILED[/]")
        raise typer.Exit(1)
    err.print("[green]chaos soak passed[/]")
