"""The fault soak's picture: every request's latency on a time line, the faults shaded."""

from __future__ import annotations

from pathlib import Path

from tastebud_bench.soak_schedule import FaultWindow
from tastebud_bench.soak_traffic import Sample


def plot(samples: list[Sample], windows: list[FaultWindow], path: Path) -> None:
    """Each request's latency over the soak (log scale), by kind, with the faults shaded: a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(12, 4.5))
    for op, marker in (("recommend", "."), ("events", "x"), ("stock", "+"), ("item", "1")):
        chosen = [s for s in samples if s.op == op]
        axes.scatter([s.started for s in chosen], [max(s.ms, 0.1) for s in chosen], s=8, marker=marker, label=op,
                     alpha=0.7)
    failed = [s for s in samples if not s.ok or s.status != 200]
    axes.scatter([s.started for s in failed], [max(s.ms, 0.1) for s in failed], s=30, facecolors="none",
                 edgecolors="red", label="not 200")
    for window in windows:
        axes.axvspan(window.started, max(window.ended, window.started + 0.3), color="orange", alpha=0.25)
        axes.annotate(window.name, (window.started, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                      va="top", ha="right", fontsize=8)
    axes.set_yscale("log")
    axes.set_xlabel("seconds into the soak")
    axes.set_ylabel("latency (ms)")
    axes.set_title("tastebud chaos: every request, faults shaded")
    axes.legend(loc="upper left", fontsize=8, ncols=5)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
