"""The purchase-only simulator variant through the CLI: generate, train, evaluate with a report (tiny data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tastebud_cli.app import app

pytestmark = pytest.mark.slow
runner = CliRunner()


def test_single_store_purchase_log_trains_evaluates_and_reports(tmp_path: Path) -> None:
    data, artifacts, report = tmp_path / "store", tmp_path / "artifacts", tmp_path / "report"
    generated = runner.invoke(app, ["data", "generate", "--out", str(data), "--users", "150", "--items", "400",
                                    "--seed", "3", "--purchase-only", "--single-merchant"])
    assert generated.exit_code == 0, generated.stderr
    assert json.loads(generated.stdout)["event_counts"]["impression"] == 0

    trained = runner.invoke(app, ["train", "--data", str(data), "--out", str(artifacts), "--epochs", "2", "--quiet"])
    assert trained.exit_code == 0, trained.stderr

    # Content retrieval for the evaluation's own training: the two-tower path on purchase-only data is trained just
    # above and evaluated in test_purchases_only; this is the CLI's evaluate-and-report plumbing (a third of the time).
    evaluated = runner.invoke(app, ["evaluate", "--data", str(data), "--artifacts", str(artifacts), "--retrieval",
                                    "content", "--max-users", "100", "--json", "--report", str(report),
                                    "--label", "store"])
    assert evaluated.exit_code == 0, evaluated.stderr
    models = json.loads(evaluated.stdout)["models"]
    assert {"tastebud", "popularity", "personal_history", "ials", "ease"} <= set(models)
    assert 0.0 <= models["ease"]["recall@100"] <= 1.0
    assert (report / "results" / "store.json").is_file()
    assert "![recall@100](recall_at_100.png)" in (report / "README.md").read_text()
    assert (report / "recall_at_100.png").stat().st_size > 1000
