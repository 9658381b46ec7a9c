"""The `tastebud` command line (DESIGN.md §3). Heavy imports happen inside commands so `--help` is instant."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from tastebud_bench.machine_load import MachineLoad, busy_warning
from tastebud_cli.aws import aws_app
from tastebud_cli.chaos import chaos
from tastebud_cli.experiment import experiment
from tastebud_cli.live import catalog_app, events_app, versions_app
from tastebud_cli.sam_local import sam_local_app

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Tastebud: recommendations for a food-delivery marketplace.")
data_app = typer.Typer(no_args_is_help=True, help="Generate, import and validate data directories.")
import_app = typer.Typer(no_args_is_help=True, help="Import public data sets into the data contract.")
app.add_typer(data_app, name="data")
data_app.add_typer(import_app, name="import")
app.add_typer(events_app, name="events")
app.add_typer(catalog_app, name="catalog")
app.add_typer(versions_app, name="versions")
app.add_typer(aws_app, name="aws")
app.add_typer(sam_local_app, name="sam-local")
app.command("chaos")(chaos)
app.command("experiment", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(experiment)

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


# train and evaluate: which user tower to serve (and to evaluate).
UserTowerOption = Annotated[str, typer.Option(
    help="Two-tower user tower precision: int8 (default; served when it finds >= 95% of float32's top-100 "
    "neighbours, else float32) or fp32")]


def _user_tower_int8(precision: str) -> bool:
    """``--user-tower``: int8 or fp32."""
    if precision not in ("int8", "fp32"):
        fail(f"--user-tower must be int8 or fp32, not {precision!r}")
    return precision == "int8"


def load_data(path: Path) -> Any:
    from tastebud_training.data import DataValidationError, load_dataset

    try:
        return load_dataset(path)
    except (DataValidationError, FileNotFoundError, NotADirectoryError) as exc:
        fail(str(exc))


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


@data_app.command("generate")
def data_generate(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write (replaced atomically)")],
    users: Annotated[int, typer.Option(min=10, help="Number of users")] = 3000,
    items: Annotated[int, typer.Option(min=50, help="Number of items")] = 12000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files)")] = 7,
    days: Annotated[int, typer.Option(min=7, help="Days of logs")] = 60,
    purchase_only: Annotated[bool, typer.Option(
        "--purchase-only", help="Only what a real order log has: purchases, no text, images, impressions, stock, "
        "locations or profiles")] = False,
    single_merchant: Annotated[bool, typer.Option(
        "--single-merchant", help="With --purchase-only: one grocery store's log (grocery products only)")] = False,
    cadence: Annotated[bool, typer.Option(
        "--cadence", help="Shoppers re-buy each item on their own cycle and restock what is due (timing matters)")]
    = False,
    images: Annotated[bool, typer.Option(
        "--images/--no-images", help="Write a photo per item (about 10% get none)")] = True,
) -> None:
    """Simulate a marketplace: merchants, items, users with hidden tastes, logged impressions and orders."""
    from tastebud_training.simulator import marketplace

    try:
        summary = marketplace.generate(out_dir, users=users, items=items, seed=seed, days=days, progress=True,
                                       purchase_only=purchase_only, single_merchant=single_merchant, cadence=cadence,
                                       images=images)
    except (FileExistsError, ValueError) as exc:
        fail(str(exc))
    err.print(f"[green]wrote[/] {out_dir}")
    print_json(summary.as_dict())


@import_app.command("movielens-100k")
def import_movielens(out_dir: Annotated[Path, typer.Option("--out", help="Directory to write")]) -> None:
    """MovieLens-100K from the copy shipped inside a PyPI package (no download)."""
    from tastebud_training.importers import movielens

    try:
        summary = movielens.import_movielens_100k(out_dir)
    except (FileNotFoundError, ModuleNotFoundError, FileExistsError) as exc:
        fail(str(exc))
    print_json(summary.as_dict() if hasattr(summary, "as_dict") else summary)


@import_app.command("instacart")
def import_instacart(
    source: Annotated[Path, typer.Argument(help="Folder with orders.csv and order_products__*.csv (Kaggle layout)")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write")],
) -> None:
    """Instacart Online Grocery Shopping 2017 files; products/aisles/departments.csv name items when present.
    Timeline: every user's last order on one day, earlier orders days_since_prior_order before the next."""
    from tastebud_training.importers import instacart

    _import_grocery_log(instacart.import_instacart, source, out_dir)


@import_app.command("dunnhumby")
def import_dunnhumby(
    source: Annotated[Path, typer.Argument(help="Folder with transaction_data.csv (+ product.csv, "
                                                 "hh_demographic.csv): dunnhumby The Complete Journey")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write")],
) -> None:
    """dunnhumby "The Complete Journey" files. Timeline: DAY 1 is a fixed date, TRANS_TIME the time of day."""
    from tastebud_training.importers import dunnhumby

    _import_grocery_log(dunnhumby.import_dunnhumby, source, out_dir)


def _import_grocery_log(importer: Callable[[Path, Path], Any], source: Path, out_dir: Path) -> None:
    """Run a file importer; a bad file or a foreign --out is a clear error (file, line, column), not a traceback."""
    from tastebud_training.data import DataValidationError

    try:
        summary = importer(source, out_dir)
    except (DataValidationError, FileExistsError) as exc:
        fail(str(exc))
    print_json(summary.as_dict())


@data_app.command("validate")
def data_validate(directory: Path, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check a data directory against the contract; errors name file, row and column."""
    from tastebud_training.data import DataValidationError, validate_dir

    try:
        summary = validate_dir(directory)
    except (DataValidationError, FileNotFoundError, NotADirectoryError) as exc:
        fail(str(exc))
    if as_json:
        print_json(summary.as_dict())
        return
    info = summary.as_dict()
    table = Table(title=f"{directory} is valid")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in info["rows"].items():
        table.add_row(name, f"{rows:,}")
    out.print(table)
    out.print(f"events: {info['event_counts']}  positives: {info['n_positives']:,}  time: {info['time_range']}")
    for warning in info["warnings"]:
        out.print(f"[yellow]warning:[/] {warning}")


@app.command()
def train(
    data: Annotated[Path, typer.Option("--data", help="Data directory (see `tastebud data validate`)")],
    out_dir: Annotated[Path, typer.Option("--out", help="Artifacts directory; a new version is published")],
    seed: Annotated[int, typer.Option(help="Random seed")] = 7,
    retrieval: Annotated[str, typer.Option(help="two_tower (default) or content (the MiniLM baseline)")]
    = "two_tower",
    epochs: Annotated[int, typer.Option(min=1, help="Two-tower training epochs")] = 8,
    user_tower: UserTowerOption = "int8",
    image_weights: Annotated[str | None, typer.Option(
        help="EfficientNetB0 weights file (or 'imagenet' where reachable); default: random init")] = None,
    no_images: Annotated[bool, typer.Option("--no-images", help="Ignore item images")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output")] = False,
) -> None:
    """Train every model and build the index; publish one versioned artifact set."""
    from dataclasses import replace

    from tastebud_training.train import TrainConfig
    from tastebud_training.train import train as run_train

    int8 = _user_tower_int8(user_tower)  # before the data is read: a typo fails at once
    dataset = load_data(data)
    try:
        base = TrainConfig(seed=seed, progress=not quiet, retrieval=retrieval, images=not no_images,
                           image_weights=image_weights)
        config = replace(base, two_tower=replace(base.two_tower, epochs=epochs, seed=seed, user_tower_int8=int8))
        manifest = run_train(dataset, out_dir, config)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    print_json({"version": manifest.version, "model_version": manifest.model_version,
                "index_version": manifest.index_version, "ranker": {k: v for k, v in manifest.ranker.items()
                                                                   if k not in ("features", "importance")}})


@app.command()
def evaluate(
    data: Annotated[Path | None, typer.Option("--data", help="Data directory")] = None,
    artifacts: Annotated[Path | None, typer.Option(
        "--artifacts", help="Artifacts directory (evaluation models cached here)")] = None,
    exclude_seen: Annotated[bool, typer.Option("--exclude-seen", help="Drop items the user had before the cutoff")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    max_users: Annotated[int, typer.Option(help="Evaluate at most this many test users (sampled by seed)")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed")] = 7,
    retrieval: Annotated[str, typer.Option(help="two_tower (default) or content")] = "two_tower",
    epochs: Annotated[int, typer.Option(min=1, help="Two-tower training epochs")] = 8,
    user_tower: UserTowerOption = "int8",
    ablations: Annotated[bool, typer.Option("--ablations", help="Also train two-tower variants without logQ, "
                                            "without hard negatives and without feature dropout")] = False,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="Also write the table as markdown here")]
    = None,
    cold_start: Annotated[bool, typer.Option("--cold-start", help="Also run the leave-items-out cold-start study: "
                                             "held-out items added as new items through the fresh-items path; "
                                             "today's two-tower and the item-id dropout/scale variants")] = False,
    ease_l2: Annotated[float | None, typer.Option(
        "--ease-l2", min=1e-6, help="EASE baseline's L2 regularisation λ (default 500: baselines.EASE_DEFAULT_L2)")]
    = None,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Save this run under DIR/results/<label>.json and redraw DIR/README.md + one PNG bar chart "
        "per metric from every run saved there (without --data: only redraw)")] = None,
    label: Annotated[str | None, typer.Option(help="--report: this run's name (default: the data directory's name)")]
    = None,
    add_results: Annotated[list[Path] | None, typer.Option(
        "--add-results", help="--report: also store this saved `evaluate --json` output (repeatable)")] = None,
    exposure_floor: Annotated[float | None, typer.Option(
        "--exposure-floor", min=0.0, max=1.0, help="Fairness audit: share of the top 20 owed to emerging merchants "
        "(default: the serving floor, else 0.2); also evaluates the pipeline with it enforced")] = None,
    cross_domain: Annotated[bool, typer.Option(
        "--cross-domain", help="Also train on each domain alone and compare with training on both, on each "
        "domain's test users")] = False,
    protocol: Annotated[str, typer.Option(
        help="window: the truth is every positive after the cutoff; next-basket: the user's first basket (session) "
        "after it, requested at its start")] = "window",
    ranker_seeds: Annotated[int, typer.Option(
        "--ranker-seeds", min=1, help="Fit the ranker with this many seeds on the same examples and report the full "
        "pipeline's mean, spread and the mean's interval (`tastebud[seed S]` rows; `tastebud` is the first seed)")]
    = 1,
) -> None:
    """Recall@K and NDCG@K of Tastebud and baselines on the default temporal split; --report draws charts."""
    from tastebud_training import evaluation_report

    if (data is None) != (artifacts is None):
        fail("give both --data and --artifacts (or neither, with --report, to redraw a report)")
    if data is None and report is None:
        fail("give --data DIR and --artifacts DIR to evaluate, or --report DIR to redraw a report")
    if add_results and report is None:
        fail("--add-results needs --report DIR")
    if markdown is not None and data is None:
        fail("--markdown writes the tables of an evaluation: give --data and --artifacts")
    command = "tastebud evaluate " + " ".join(sys.argv[2:])
    result: dict[str, Any] | None = None
    if data is not None and artifacts is not None:
        result = _run_evaluation(data, artifacts, exclude_seen=exclude_seen, progress=not as_json,
                                 max_users=max_users, seed=seed, retrieval=retrieval, epochs=epochs,
                                 user_tower_int8=_user_tower_int8(user_tower), ablations=ablations,
                                 cold_start=cold_start, ease_l2=ease_l2, exposure_floor=exposure_floor,
                                 cross_domain=cross_domain, protocol=protocol, ranker_seeds=ranker_seeds)
        if markdown is not None:
            markdown.write_text(evaluation_report.render_markdown(result, command))
    if report is not None:
        try:
            for path in add_results or []:
                evaluation_report.save_results(report, evaluation_report.read_results_file(path))
            if result is not None and data is not None:
                run = evaluation_report.EvaluatedDataSet(label or Path(data).resolve().name, command, result)
                evaluation_report.save_results(report, run)
            page = evaluation_report.write_report(report, evaluation_report.load_results(report))
        except (ValueError, OSError) as exc:
            fail(str(exc))
        err.print(f"[green]report[/] {page}", highlight=False)
    if result is None:
        return
    if as_json:
        print_json(result)
        return
    out.print(result["split"])
    table = Table(title="Recall@K / NDCG@K")
    table.add_column("model")
    metrics = [f"{m}@{k}" for k in (10, 20, 50, 100, 200) for m in ("recall", "ndcg")] + ["cold_recall@100"]
    for metric in metrics:
        table.add_column(metric, justify="right")
    for name, scores in result["models"].items():
        table.add_row(name, *(f"{scores[m]:.4f}" if m in scores else "-" for m in metrics))
    out.print(table)
    out.print(evaluation_report.render_intervals(result), markup=False, highlight=False, soft_wrap=True)
    if result.get("cold_start"):
        out.print(evaluation_report.render_cold_start(result["cold_start"]), markup=False, highlight=False)


def _run_evaluation(data: Path, artifacts: Path, *, exclude_seen: bool, progress: bool, max_users: int, seed: int,
                    retrieval: str, epochs: int, user_tower_int8: bool, ablations: bool, cold_start: bool,
                    ease_l2: float | None, exposure_floor: float | None, cross_domain: bool,
                    protocol: str, ranker_seeds: int = 1) -> dict[str, Any]:
    from dataclasses import replace

    from tastebud_training.baselines import EASE_DEFAULT_L2
    from tastebud_training.evaluate import evaluate as run_evaluate
    from tastebud_training.train import TrainConfig

    dataset = load_data(data)
    try:
        base = TrainConfig(seed=seed, progress=progress, retrieval=retrieval, ranker_seeds=ranker_seeds)
        config = replace(base, two_tower=replace(base.two_tower, epochs=epochs, seed=seed,
                                                 user_tower_int8=user_tower_int8))
        names = ("no_logq", "no_hard_negatives", "no_feature_dropout") if ablations else ()
        result = run_evaluate(dataset, artifacts, exclude_seen=exclude_seen, max_users=max_users, config=config,
                              ablations=names, cold_start=cold_start,
                              ease_l2=EASE_DEFAULT_L2 if ease_l2 is None else ease_l2, exposure_floor=exposure_floor,
                              protocol=protocol)
        if cross_domain:
            from tastebud_training.cross_domain import cross_domain_study

            result["cross_domain"] = cross_domain_study(dataset, artifacts, config, max_users=max_users)
        return result
    except ValueError as exc:
        fail(str(exc))


@app.command()
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


@app.command()
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
    from tastebud.composition import build_runtime
    from tastebud.errors import TastebudError
    from tastebud.explain import explain_request
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


@app.command()
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
    from tastebud.errors import TastebudError
    from tastebud_bench import in_process as bench_module

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
        from tastebud_bench.freshness import run_freshness

        try:
            report = run_freshness(artifacts, trials=min(requests, 200), seconds=seconds, rate=rate,
                                   progress=not as_json)
        except TastebudError as exc:
            fail(str(exc))
        print_json(report)
        return
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
        out.print(table)
    out.print(f"goals: {report['goals']}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
