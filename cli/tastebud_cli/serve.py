"""`tastebud serve` and `tastebud recommend`: the local HTTP server, and one page printed from the artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tastebud_cli.console import err, fail, out, print_json


def serve(
    artifacts: Annotated[Path, typer.Option("--artifacts", help="Artifacts directory built by `tastebud train`")],
    port: Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port (printed)")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    redis_url: Annotated[str | None, typer.Option(help="Use this Redis instead of the embedded one")] = None,
    data: Annotated[Path | None, typer.Option(
        "--data", help="Append accepted events and item upserts here (default: the data the version was trained on)")]
    = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes; one per core for throughput")] = 1,
    preload: Annotated[bool, typer.Option(help="Import ScaNN/TensorFlow once in the master, shared by workers")]
    = True,
    access_log: Annotated[bool, typer.Option(help="One JSON access line per request on stdout")] = True,
    graceful_timeout: Annotated[int, typer.Option(min=1, help="Seconds in-flight requests get on SIGTERM")] = 30,
) -> None:
    """Serve the HTTP API locally with the same handler as the Lambda function (gunicorn + uvicorn workers).

    Every worker follows the artifacts' CURRENT pointer and the live state in the shared embedded Redis."""
    from tastebud.errors import TastebudError
    from tastebud.http_server.local import serve_artifacts
    from tastebud.http_server.prefork import ServerOptions
    from tastebud.settings import ServingKnobs, Settings

    def on_ready(url: str) -> None:
        err.print(f"[green]tastebud serve[/]: {artifacts} with {workers} worker(s), listening on {url}  "
                  "(Ctrl-C stops)", highlight=False, soft_wrap=True)

    options = ServerOptions(host=host, port=port, workers=workers, access_log=access_log,
                            graceful_timeout_s=graceful_timeout)
    try:
        settings = Settings(artifacts=artifacts, redis_url=redis_url, data_dir=data, knobs=ServingKnobs.from_env())
        serve_artifacts(settings, options, preload=preload, on_ready=on_ready)
    except TastebudError as exc:
        fail(str(exc))


def recommend(
    user_id: str,
    artifacts: Annotated[Path, typer.Option("--artifacts", help="Artifacts directory")],
    k: Annotated[int, typer.Option(min=1, max=100)] = 20,
    domain: Annotated[str, typer.Option(help="all | restaurant | grocery")] = "all",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recommend items for one user, in process."""
    from dataclasses import asdict

    from tastebud.catalog import DOMAINS
    from tastebud.composition.local import build_runtime
    from tastebud.errors import TastebudError
    from tastebud.pipeline.explain import explain_request
    from tastebud.recommendation import StageTrace
    from tastebud.settings import Settings

    if domain not in ("all", *DOMAINS):
        fail(f"--domain must be all, restaurant or grocery, not {domain!r}")
    try:
        service = build_runtime(Settings(artifacts=artifacts), watch=False)
    except TastebudError as exc:
        fail(str(exc))
    trace = StageTrace()
    try:
        result = service.recommend(user_id, k=k, domain=domain, trace=trace)
        shown, explained = explain_request(result, trace)
    finally:
        close = getattr(service, "close", None)
        if close is not None:
            close()  # an embedded Redis this command started stops with it
    if as_json:
        payload = asdict(result)
        for item, extra in zip(payload["items"], shown, strict=True):
            item.update(extra)
        print_json({**payload, "explain": explained})
        return
    table = Table(title=f"{user_id}: {len(result.items)} items  (stage ms {explained['stage_ms']})")
    for column in ("rank", "item", "merchant", "category", "price", "km", "score", "why"):
        table.add_column(column, justify="right" if column in ("price", "km", "score") else "left")
    for item, extra in zip(result.items, shown, strict=True):
        price, distance = extra.get("price"), extra.get("distance_km")
        table.add_row(str(item.rank), f"{extra.get('title') or item.item_id}\n[dim]{item.item_id}[/]",
                      extra.get("merchant_name") or item.merchant_id, f"{extra.get('category', '')} ({item.domain})",
                      "-" if price is None else f"{price:.2f}", "-" if distance is None else f"{distance:.1f}",
                      f"{item.score:.3f}", "; ".join(item.reasons))
    out.print(table)
