"""Training report next to the artifacts: curves (PNG) and a short markdown summary people can read."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_report(out: Path, history: dict[str, list[float]], ranker: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = out / "report"
    report.mkdir(exist_ok=True)
    lines = ["# Training report", ""]
    if history.get("loss"):
        epochs = range(1, len(history["loss"]) + 1)
        fig, (ax_loss, ax_recall) = plt.subplots(1, 2, figsize=(10, 3.6))
        ax_loss.plot(epochs, history["loss"], marker="o")
        ax_loss.set(title="two-tower training loss", xlabel="epoch", ylabel="softmax cross-entropy")
        ax_recall.plot(epochs, history["valid_recall@100"], marker="o", color="tab:green")
        ax_recall.set(title="validation recall@100 (last 5% of examples)", xlabel="epoch", ylabel="recall@100")
        fig.tight_layout()
        fig.savefig(report / "two_tower_curves.png", dpi=110)
        plt.close(fig)
        lines += ["## Two-tower retrieval", "", "![curves](two_tower_curves.png)", "",
                  "| epoch | loss | valid recall@100 | temperature |", "|---:|---:|---:|---:|"]
        lines += [f"| {i + 1} | {loss:.4f} | {recall:.3f} | {temp:.4f} |" for i, (loss, recall, temp) in
                  enumerate(zip(history["loss"], history["valid_recall@100"], history["temperature"], strict=True))]
        lines += ["", f"Published weights: epoch {history.get('best_epoch', ['?'])[0]} (best validation recall).", ""]
    importance = ranker.get("importance") or {}
    if importance:
        names = sorted(importance, key=importance.get, reverse=True)  # type: ignore[arg-type]
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(names) + 1))
        ax.barh(names[::-1], [importance[n] for n in names[::-1]])
        ax.set(title="re-ranker feature importance (gain)")
        fig.tight_layout()
        fig.savefig(report / "ranker_importance.png", dpi=110)
        plt.close(fig)
        lines += ["## Re-ranker (XGBoost LambdaMART → ONNX)", "",
                  f"Groups {ranker.get('groups')}, best iteration {ranker.get('best_iteration')}, validation "
                  f"NDCG@10 {ranker.get('valid_ndcg@10', 0):.4f}, ONNX parity {ranker.get('onnx_parity_max_abs')}.",
                  "", "![importance](ranker_importance.png)", ""]
    (report / "README.md").write_text("\n".join(lines))
