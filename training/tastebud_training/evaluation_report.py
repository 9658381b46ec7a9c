"""How `tastebud evaluate` results are shown: the markdown tables of one run (``--markdown``) and, with
``--report DIR``, one page of bar charts for several evaluated data sets, to look at.

Every `tastebud evaluate ... --report DIR` run saves its results as ``DIR/results/<label>.json`` (label: the
data directory's name, ``--label`` to choose) and then re-draws the whole report from every results file in
``DIR/results``: runs on different data sets (or with different options, under different labels) accumulate
in one report. ``tastebud evaluate --report DIR`` without --data only re-draws it; ``--add-results FILE``
copies in a `tastebud evaluate --json` output saved earlier.

The report is ``DIR/README.md`` and one PNG per metric (``recall_at_10.png``, ``ndcg_at_10.png``,
``cold_recall_at_100.png``, ...; tastebud_training.evaluation_charts): data sets side by side along the x axis, one
bar per model in each, the same colour for a model everywhere. The tables of `evaluate --markdown` follow the charts,
per data set.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tastebud_training.evaluation_charts import chart_file, draw_chart, metric_title
from tastebud_training.metrics import KS

RESULTS_DIR = "results"
REPORT_FILE = "README.md"
COLD_KS = (50, 100, 200)
_LABEL = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class EvaluatedDataSet:
    """One `tastebud evaluate` run: its label, the command that produced it and its report
    (``{"split": {...}, "models": {name: {metric: value}}, ...}``)."""

    label: str
    command: str
    report: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "command": self.command, "saved_at": time.time(), "report": self.report}


def safe_label(label: str) -> str:
    """A label usable as a file name (runs are stored as ``results/<label>.json``)."""
    cleaned = _LABEL.sub("-", label.strip()).strip("-.")
    if not cleaned:
        raise ValueError(f"label {label!r} has no usable characters (letters, digits, '.', '_', '-')")
    return cleaned


def save_results(report_dir: Path, run: EvaluatedDataSet) -> Path:
    """Store one run under ``report_dir/results`` (a run with the same label is replaced)."""
    results = report_dir / RESULTS_DIR
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{safe_label(run.label)}.json"
    path.write_text(json.dumps(run.as_dict(), indent=2, default=str) + "\n")
    return path


def read_results_file(path: Path) -> EvaluatedDataSet:
    """A stored run, or a bare `tastebud evaluate --json` output (labelled by its file name)."""
    try:
        payload = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from exc
    if isinstance(payload, dict) and isinstance(payload.get("report"), dict):
        return EvaluatedDataSet(str(payload.get("label") or path.stem), str(payload.get("command", "")),
                                payload["report"])
    if isinstance(payload, dict) and isinstance(payload.get("models"), dict) and "split" in payload:
        return EvaluatedDataSet(path.stem, "", payload)
    raise ValueError(f"{path}: neither a stored evaluation nor `tastebud evaluate --json` output")


def load_results(report_dir: Path) -> list[EvaluatedDataSet]:
    """Every run stored under ``report_dir/results``, in label order."""
    files = sorted((report_dir / RESULTS_DIR).glob("*.json"))
    return sorted((read_results_file(f) for f in files), key=lambda run: run.label)


def metric_names(runs: list[EvaluatedDataSet]) -> list[str]:
    """The metrics any run reports, in reading order: recall@K, NDCG@K, then cold-item recall@K."""
    wanted = ([f"recall@{k}" for k in KS] + [f"ndcg@{k}" for k in KS] + [f"cold_recall@{k}" for k in COLD_KS])
    present = {metric for run in runs for scores in run.report["models"].values() for metric in scores}
    return [metric for metric in wanted if metric in present]


def model_names(runs: list[EvaluatedDataSet]) -> list[str]:
    """Models in first-seen order over the runs (so colours and bar order are stable)."""
    names: list[str] = []
    for run in runs:
        names += [name for name in run.report["models"] if name not in names]
    return names


def render_markdown(report: dict[str, Any], command: str) -> str:
    """A page for docs/: the split, then one row per model (recall and NDCG at every K, cold-item recall)."""
    split = report["split"]
    ks = (10, 20, 50, 100, 200)
    header = ["model", *[f"R@{k}" for k in ks], *[f"N@{k}" for k in ks], "cold R@100", "exposure@20"]
    lines = [f"`{command}`", "",
             f"Split: {split['kind']} at the {split['cutoff_quantile']:.0%} quantile ({split['cutoff']}), "
             f"{split['test_users']} test users, {split['test_positives']} test positives, exclude_seen="
             f"{split['exclude_seen']}, {split.get('cold_items', 0)} cold items "
             f"({split.get('users_with_cold_test_items', 0)} users with one in their test set).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, scores in report["models"].items():
        cells = [f"{scores[f'recall@{k}']:.4f}" for k in ks] + [f"{scores[f'ndcg@{k}']:.4f}" for k in ks]
        cells.append(f"{scores['cold_recall@100']:.4f}" if "cold_recall@100" in scores else "–")
        cells.append(f"{scores['exposure@20']:.3f}" if "exposure@20" in scores else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    audit = report.get("fairness")
    if audit:
        lines += ["", f"Fairness audit: emerging merchants (new within {audit['new_merchant_days']:g} days, or below "
                  f"the {audit['emerging_popularity_pct']:.0%} merchant-popularity percentile) hold "
                  f"{audit['shares'][audit['enforced_by']]:.1%} of the top {audit['k']} with `{audit['enforced_by']}` "
                  f"against a floor of {audit['floor']:.0%} ({'met' if audit['floor_met'] else 'NOT met'}); "
                  f"{audit['shares']['tastebud_no_fairness']:.1%} without the fairness stage. NDCG@10 cost: "
                  f"{audit['ndcg@10_cost_of_fairness_stage']:+.1%} for the fairness stage, "
                  f"{audit['ndcg@10_cost_with_floor']:+.1%} with the floor enforced."]
    if report.get("intervals"):
        lines += ["", render_intervals(report)]
    cross = report.get("cross_domain")
    if cross:
        lines += ["", "Cross-domain: the pipeline trained on both domains vs on one, on each domain's test users "
                  "(their positives in that domain; pages asked for that domain).", "", render_cross_domain(cross)]
    study = report.get("cold_start")
    if study:
        lines += ["", render_cold_start(study)]
    return "\n".join(lines) + "\n"


def render_intervals(report: dict[str, Any]) -> str:
    """Every model against the stronger "buy again" baseline (paired-bootstrap 95% intervals), with the repeat and
    explore parts of the metrics and the history-length buckets (``evaluate.quality_breakdown``)."""
    if not report.get("intervals"):
        return ""
    intervals, breakdown = report["intervals"], report.get("breakdown", {})
    reference = intervals["reference"]
    split = report["split"]
    lines = [f"Against `{reference}` (protocol {split.get('protocol', 'window')}; time-decayed half-life "
             f"{split.get('decayed_half_life_days', float('nan')):g} days, chosen on the training period), "
             "paired bootstrap over users, 95% intervals:", "",
             "| model | NDCG@10 vs ref. [95% CI] | Recall@20 vs ref. [95% CI] | repeat N@10 | explore R@20 |",
             "|---|---|---|---|---|"]

    def cell(entry: dict[str, float]) -> str:
        return f"{entry['relative']:+.1%} [{entry['low']:+.1%}, {entry['high']:+.1%}]"

    for name, parts in breakdown.items():
        versus = intervals["models"].get(name)
        shown = (cell(versus["ndcg@10"]), cell(versus["recall@20"])) if versus else ("(reference)", "(reference)")
        lines.append(f"| {name} | {shown[0]} | {shown[1]} | {parts.get('repeat_ndcg@10', float('nan')):.4f} | "
                     f"{parts.get('explore_recall@20', float('nan')):.4f} |")
    buckets = report.get("history_buckets")
    if buckets:
        labels = list(buckets)
        lines += ["", "NDCG@10 by baskets before the cutoff (users): "
                  + ", ".join(f"{label}: {buckets[label]['users']}" for label in labels), "",
                  "| model | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
        for name in breakdown:
            lines.append(f"| {name} | " + " | ".join(f"{buckets[label]['models'][name]['ndcg@10']:.4f}"
                                                     for label in labels) + " |")
    seeds = report.get("ranker_seeds")
    if seeds:
        lines += ["", f"The full pipeline over {len(seeds['models'])} ranker seeds (mean ± sd; the mean's interval "
                  f"against `{seeds['reference']}`, each user's score averaged over the seeds):", ""]
        for metric in ("ndcg@10", "recall@20"):
            entry = seeds[metric]
            lines.append(f"* {metric}: {entry['mean']:.4f} ± {entry['sd']:.4f} "
                         f"({', '.join(f'{v:.4f}' for v in entry['per_seed'])}); {cell(entry['vs_reference'])}")
    return "\n".join(lines)


COLD_LISTS = {"pipeline": "pipeline (ranked)", "candidates": "candidates", "whole_catalog": "whole catalog, exact"}


def render_cold_start(study: dict[str, Any]) -> str:
    """The leave-items-out study (tastebud_training.cold_start): cold and warm recall per variant and list."""
    if "variants" not in study:  # results saved before the fresh-path protocol: two models, whole catalog only
        legacy = {name: {"whole_catalog": row} for name, row in study.items() if isinstance(row, dict)}
        study = {**study, "variants": legacy}
    knobs = study.get("knobs", {})
    lines = [f"Cold-start study (leave-items-out): {study['held_out_items']} items lose all interactions before the "
             f"cutoff and come back at it as items added through the API (fresh-items index, quota "
             f"{knobs.get('fresh_candidates', '?')}); {study['test_users']} test users. Lists: the pipeline's ranked "
             "list, stage 1's candidates in retrieval order, and two-tower retrieval alone by exact search over the "
             "whole catalog (no fresh quota).", "",
             "| variant | list | cold R@50 | cold R@100 | cold R@200 | warm R@50 | warm R@100 | warm R@200 | "
             "cold/warm R@100 | cold / warm in candidates | users (cold) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows: list[tuple[str, dict[str, Any]]] = []
    for name, row in study["variants"].items():
        rows.append((name, row))
        rows += [(f"{name}, {set_name}", {**knobbed, "users_with_cold_items": row.get("users_with_cold_items")})
                 for set_name, knobbed in row.get("knob_sets", {}).items()]
    chance = study.get("fresh_chance")
    if chance:
        rows.append((f"{chance['variant']}, random fresh vectors", chance))
        rows += [(f"{chance['variant']}, {set_name}, random fresh vectors",
                  {**knobbed, "users_with_cold_items": chance.get("users_with_cold_items")})
                 for set_name, knobbed in chance.get("knob_sets", {}).items()]
    for name, row in rows:
        for key, label in COLD_LISTS.items():
            scores = row.get(key)
            if not scores:
                continue
            cells = [f"{scores[f'{kind}_recall@{k}']:.4f}" if f"{kind}_recall@{k}" in scores else "–"
                     for kind in ("cold", "warm") for k in COLD_KS]
            cold, warm = scores.get("cold_recall@100"), scores.get("warm_recall@100")
            cells.append(f"{cold / warm:.0%}" if cold is not None and warm else "–")
            cells.append(f"{scores['cold_in_candidates']:.4f} / {scores['warm_in_candidates']:.4f}"
                         if "cold_in_candidates" in scores else "–")
            cells.append(str(row.get("users_with_cold_items", "–")))
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_cross_domain(report: dict[str, Any]) -> str:
    lines = ["| evaluated on | trained on | test users | N@10 | R@20 | R@100 |", "|---|---|---|---|---|---|"]
    for domain, result in report["domains"].items():
        for name, scores in result["models"].items():
            lines.append(f"| {domain} | {name.replace('_', ' ')} | {result['test_users']} | "
                         f"{scores['ndcg@10']:.4f} | {scores['recall@20']:.4f} | {scores['recall@100']:.4f} |")
    return "\n".join(lines) + "\n"


def _split_line(run: EvaluatedDataSet) -> str:
    split = run.report.get("split", {})
    return (f"* **{run.label}** — {split.get('test_users', '?')} test users, {split.get('test_positives', '?')} test "
            f"positives, cutoff {split.get('cutoff', '?')}, exclude_seen={split.get('exclude_seen', '?')}, "
            f"training model {split.get('train_model_version', '?')}"
            + (f"; `{run.command}`" if run.command else ""))


def write_report(report_dir: Path, runs: list[EvaluatedDataSet]) -> Path:
    """Draw one chart per metric and write ``README.md`` referencing them; returns the markdown file."""
    if not runs:
        raise ValueError(f"no evaluation results in {report_dir / RESULTS_DIR}: run `tastebud evaluate --data DIR "
                         f"--artifacts DIR --report {report_dir}` first")
    report_dir.mkdir(parents=True, exist_ok=True)
    models = model_names(runs)
    metrics = metric_names(runs)
    lines = ["# Offline evaluation", "",
             "Global temporal split (DESIGN.md §3; docs/QUALITY.md explains the models). One chart per metric: "
             "data sets side by side, one bar per model (a missing bar: that model was not evaluated there).", "",
             "Data sets:", "", *[_split_line(run) for run in runs], ""]
    for metric in metrics:
        draw_chart(report_dir / chart_file(metric), metric, [(run.label, run.report) for run in runs], models)
        lines += [f"## {metric_title(metric)}", "", f"![{metric}]({chart_file(metric)})", ""]
        lines += ["| model | " + " | ".join(run.label for run in runs) + " |", "|---" * (len(runs) + 1) + "|"]
        for model in models:
            cells = [run.report["models"].get(model, {}).get(metric) for run in runs]
            lines.append(f"| {model} | " + " | ".join("–" if c is None else f"{float(c):.4f}" for c in cells) + " |")
        lines.append("")
    lines += ["## All numbers per data set", ""]
    for run in runs:
        command = run.command or f"tastebud evaluate ({run.label})"
        lines += [f"### {run.label}", "", render_markdown(run.report, command)]
    path = report_dir / REPORT_FILE
    path.write_text("\n".join(lines))
    return path
