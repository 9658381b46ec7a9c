"""The evaluation report's charts: one PNG per metric, data sets side by side along the x axis, one bar per model in
each, the same colour for a model everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def chart_file(metric: str) -> str:
    return metric.replace("@", "_at_") + ".png"


def metric_title(metric: str) -> str:
    kind, k = metric.split("@")
    return {"recall": "Recall", "ndcg": "NDCG", "cold_recall": "Cold-item recall"}[kind] + f"@{k}"


def draw_chart(path: Path, metric: str, runs: list[tuple[str, Mapping[str, Any]]], models: list[str]) -> None:
    """``runs``: (label, report) per data set, in the order of the x axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    # Distinct hues for up to 10 models (the usual table); tab20's paired shades beyond that.
    colours = plt.get_cmap("tab10" if len(models) <= 10 else "tab20")
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 + 0.28 * len(models) * len(runs)), 4.2))
    for m, model in enumerate(models):
        values = [report["models"].get(model, {}).get(metric) for _, report in runs]
        # A model a data set was not evaluated with gets no bar (a gap), never a zero that reads as a result.
        positions = [d + (m - (len(models) - 1) / 2) * width for d, v in enumerate(values) if v is not None]
        heights = [float(v) for v in values if v is not None]
        if heights:
            ax.bar(positions, heights, width=width * 0.95, color=colours(m % 20), label=model)
    ax.set_xticks(np.arange(len(runs)), [label for label, _ in runs])
    ax.set_ylabel(metric)
    ax.set_title(f"{metric_title(metric)} by data set")
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
