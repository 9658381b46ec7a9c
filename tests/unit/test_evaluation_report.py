"""`tastebud evaluate --report DIR`: charts and one markdown page from several evaluated data sets (fake results)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest
from typer.testing import CliRunner

from tastebud_cli.app import app
from tastebud_training.evaluation_charts import chart_file
from tastebud_training.evaluation_report import (
    EvaluatedDataSet,
    load_results,
    metric_names,
    render_cold_start,
    save_results,
    write_report,
)
from tastebud_training.metrics import KS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fake_report(scale: float, models: tuple[str, ...], *, cold: bool = False) -> dict:
    def scores(i: int) -> dict[str, float]:
        out = {f"{m}@{k}": round(scale * (i + 1) * k / 400, 4) for k in KS for m in ("recall", "ndcg")}
        if cold:
            out.update({f"cold_recall@{k}": 0.01 * (i + 1) for k in (50, 100, 200)})
        return out

    return {"split": {"kind": "global-temporal", "cutoff_quantile": 0.9, "cutoff": "2025-10-25T00:00:00+00:00",
                      "test_users": 12, "test_positives": 30, "cold_items": 2, "users_with_cold_test_items": 1,
                      "exclude_seen": False, "train_model_version": "twotower-xgb-abc", "retrieval": "two_tower"},
            "models": {name: scores(i) for i, name in enumerate(models)}}


def test_report_has_one_valid_png_per_metric_referenced_by_the_markdown(tmp_path: Path) -> None:
    runs = [EvaluatedDataSet("marketplace", "tastebud evaluate --data data/demo --artifacts a",
                             fake_report(1.0, ("tastebud", "popularity", "ease"), cold=True)),
            EvaluatedDataSet("grocery", "", fake_report(0.5, ("tastebud", "popularity", "ease", "ials")))]
    for run in runs:
        save_results(tmp_path, run)
    loaded = load_results(tmp_path)
    assert [run.label for run in loaded] == ["grocery", "marketplace"]

    page = write_report(tmp_path, loaded)

    markdown = page.read_text()
    metrics = metric_names(loaded)
    assert metrics[:2] == ["recall@10", "recall@20"] and "cold_recall@100" in metrics
    for metric in metrics:
        png = tmp_path / chart_file(metric)
        assert png.read_bytes()[:8] == PNG_SIGNATURE
        height, width, _ = matplotlib.image.imread(png).shape  # decodes the whole image
        assert width > height > 100
        assert f"]({chart_file(metric)})" in markdown
    assert "| ials | 0.0500 | – |" in markdown  # recall@10 of ials on grocery; never evaluated on marketplace
    assert "### marketplace" in markdown and "`tastebud evaluate --data data/demo --artifacts a`" in markdown


def test_no_results_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tastebud evaluate"):
        write_report(tmp_path, load_results(tmp_path))


def test_cli_redraws_a_report_from_saved_json_outputs(tmp_path: Path) -> None:
    # `tastebud evaluate --json > FILE` outputs, added to a report without evaluating anything again.
    first, second = tmp_path / "ml100k.json", tmp_path / "demo.json"
    first.write_text(json.dumps(fake_report(0.7, ("tastebud", "ease"))))
    second.write_text(json.dumps(fake_report(0.9, ("tastebud", "ease"))))
    report = tmp_path / "report"
    result = CliRunner().invoke(app, ["evaluate", "--report", str(report), "--add-results", str(first),
                                      "--add-results", str(second)])
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (report / "results").iterdir()) == ["demo.json", "ml100k.json"]
    assert "![recall@100](recall_at_100.png)" in (report / "README.md").read_text()
    assert (report / "ndcg_at_10.png").read_bytes()[:8] == PNG_SIGNATURE


def test_cli_needs_data_and_artifacts_together(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--data", str(tmp_path)])
    assert result.exit_code == 2 and "--artifacts" in result.stderr


def test_cold_start_table_has_a_row_per_variant_list_and_knob_set_and_reads_old_results() -> None:
    scores = {f"{kind}_recall@{k}": value for kind, value in (("cold", 0.2), ("warm", 0.4)) for k in (50, 100, 200)}
    study = {"held_out_items": 3, "test_users": 9, "knobs": {"fresh_candidates": 20},
             "variants": {"default": {"pipeline": scores, "candidates": {**scores, "cold_in_candidates": 0.5,
                                                                          "warm_in_candidates": 0.75},
                                      "whole_catalog": scores, "users_with_cold_items": 4,
                                      "knob_sets": {"fresh_candidates=40": {"pipeline": scores}}}},
             "fresh_chance": {"variant": "default", "pipeline": scores, "users_with_cold_items": 4}}
    page = render_cold_start(study)
    assert "quota 20); 9 test users" in page
    assert "| default | pipeline (ranked) | 0.2000 | 0.2000 | 0.2000 | 0.4000 | 0.4000 | 0.4000 | 50% | – | 4 |" in page
    assert "| default | candidates |" in page and "0.5000 / 0.7500" in page
    assert "| default | whole catalog, exact |" in page
    assert "| default, fresh_candidates=40 | pipeline (ranked) |" in page
    assert "| default, random fresh vectors | pipeline (ranked) |" in page
    legacy = {"held_out_items": 3, "test_users": 9, "with_feature_dropout": {**scores, "users_with_cold_items": 4}}
    assert "| with_feature_dropout | whole catalog, exact | 0.2000" in render_cold_start(legacy)
