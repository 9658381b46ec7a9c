"""`tastebud train` and `tastebud evaluate`: build an artifact version, and measure it against the baselines."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tastebud_cli.console import err, fail, load_data, out, print_json

# train and evaluate: which user tower to serve (and to evaluate).
UserTowerOption = Annotated[str, typer.Option(
    help="Two-tower user tower precision: int8 (default; served when it finds >= 95% of float32's top-100 "
    "neighbours, else float32) or fp32")]


def _user_tower_int8(precision: str) -> bool:
    """``--user-tower``: int8 or fp32."""
    if precision not in ("int8", "fp32"):
        fail(f"--user-tower must be int8 or fp32, not {precision!r}")
    return precision == "int8"


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

    _check_evaluate_options(data, artifacts, report=report, add_results=add_results, markdown=markdown)
    command = "tastebud evaluate " + " ".join(sys.argv[2:])
    result = None if data is None or artifacts is None else _run_evaluation(
        data, artifacts, exclude_seen=exclude_seen, progress=not as_json, max_users=max_users, seed=seed,
        retrieval=retrieval, epochs=epochs, user_tower_int8=_user_tower_int8(user_tower), ablations=ablations,
        cold_start=cold_start, ease_l2=ease_l2, exposure_floor=exposure_floor, cross_domain=cross_domain,
        protocol=protocol, ranker_seeds=ranker_seeds)
    if result is not None and markdown is not None:
        markdown.write_text(evaluation_report.render_markdown(result, command))
    if report is not None:
        _save_report(report, add_results or [], result, data=data, label=label, command=command)
    if result is not None:
        _print_evaluation(result, as_json=as_json)


def _check_evaluate_options(data: Path | None, artifacts: Path | None, *, report: Path | None,
                            add_results: list[Path] | None, markdown: Path | None) -> None:
    """Refuse the combinations of options that say nothing to do, or something that cannot be done."""
    if (data is None) != (artifacts is None):
        fail("give both --data and --artifacts (or neither, with --report, to redraw a report)")
    if data is None and report is None:
        fail("give --data DIR and --artifacts DIR to evaluate, or --report DIR to redraw a report")
    if add_results and report is None:
        fail("--add-results needs --report DIR")
    if markdown is not None and data is None:
        fail("--markdown writes the tables of an evaluation: give --data and --artifacts")


def _save_report(report: Path, add_results: list[Path], result: dict[str, Any] | None, *, data: Path | None,
                 label: str | None, command: str) -> None:
    """Store the saved outputs and this run (if any; its label defaults to the data directory's name) under
    ``report``, and redraw the report from every run stored there."""
    from tastebud_training import evaluation_report

    try:
        for path in add_results:
            evaluation_report.save_results(report, evaluation_report.read_results_file(path))
        if result is not None and data is not None:
            run = evaluation_report.EvaluatedDataSet(label or Path(data).resolve().name, command, result)
            evaluation_report.save_results(report, run)
        page = evaluation_report.write_report(report, evaluation_report.load_results(report))
    except (ValueError, OSError) as exc:
        fail(str(exc))
    err.print(f"[green]report[/] {page}", highlight=False)


def _print_evaluation(result: dict[str, Any], *, as_json: bool) -> None:
    """The evaluation as one JSON object, or as tables: the scores, their intervals and the cold-start study."""
    from tastebud_training import evaluation_report

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
