"""The `tastebud` CLI: clear errors with exit code 2, and the data commands end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tastebud_cli.app import app

runner = CliRunner()


def test_validate_names_file_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "merchants.csv").write_text("merchant_id,name,domain,category\nm1,A,restaurant,pizza\n")
    (tmp_path / "items.csv").write_text("item_id,merchant_id,title,category\ni1,m1,Pizza,pizza\ni2,m9,Pasta,pasta\n")
    (tmp_path / "users.csv").write_text("user_id\nu1\n")
    (tmp_path / "interactions.csv").write_text("user_id,item_id,event_type,timestamp\nu1,i1,purchase,1700000000\n")
    result = runner.invoke(app, ["data", "validate", str(tmp_path)])
    assert result.exit_code == 2
    assert "items.csv" in result.stderr and "line 3" in result.stderr and "merchant_id" in result.stderr


def test_generate_then_validate_as_json(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    generated = runner.invoke(app, ["data", "generate", "--out", str(out), "--users", "40", "--items", "200"])
    assert generated.exit_code == 0, generated.stderr
    result = runner.invoke(app, ["data", "validate", str(out), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["rows"]["items"] == 200


def test_generate_a_cadence_log_without_photos(tmp_path: Path) -> None:
    out = tmp_path / "cadence"
    generated = runner.invoke(app, ["data", "generate", "--out", str(out), "--users", "40", "--items", "200",
                                    "--cadence", "--no-images"])
    assert generated.exit_code == 0, generated.stderr
    summary = json.loads(generated.stdout)
    assert summary["cadence"] is True and summary["images"] == 0 and not (out / "images").exists()


def test_missing_artifacts_say_how_to_build_them(tmp_path: Path) -> None:
    result = runner.invoke(app, ["recommend", "u1", "--artifacts", str(tmp_path / "none")])
    assert result.exit_code == 2 and "tastebud train" in result.stderr


def test_missing_data_directory_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "a")])
    assert result.exit_code == 2 and "tastebud data generate" in result.stderr


def test_an_unknown_user_tower_precision_fails_before_reading_the_data(tmp_path: Path) -> None:
    for command in (["train", "--out", str(tmp_path / "a")], ["evaluate", "--artifacts", str(tmp_path / "a")]):
        result = runner.invoke(app, [*command, "--data", str(tmp_path / "nope"), "--user-tower", "fp16"])
        assert result.exit_code == 2 and "--user-tower must be int8 or fp32, not 'fp16'" in result.stderr, command
    assert not (tmp_path / "a").exists()


def test_bench_needs_exactly_one_source() -> None:
    result = runner.invoke(app, ["bench"])
    assert result.exit_code == 2 and "--artifacts" in result.stderr


def test_bench_reports_whether_the_machine_was_quiet() -> None:
    """Issue 24: every figure carries the machine's state during the run, so a busy run cannot pass as evidence."""
    result = runner.invoke(app, ["bench", "--items", "300", "--requests", "10", "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    machine = report["machine"]
    assert set(machine) >= {"load_average_at_start", "others_cpu_cores", "steal_share", "quiet"}
    assert report["stage_ms"]["total"]["p50"] > 0
    assert machine["quiet"] or "not evidence" in result.stderr  # a busy run says so


def test_bench_startup_serves_without_tensorflow(tiny_artifacts: Path) -> None:
    """Issue 24: `tastebud serve` is ready without importing TensorFlow (ScaNN's package imported it), and the bench
    says how long a start takes and what it holds."""
    result = runner.invoke(app, ["bench", "--startup", "--artifacts", str(tiny_artifacts), "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["workers"] == 1 and report["runs"] == len(report["each"]) == 3
    assert report["tensorflow_loaded"] is False
    for run in report["each"]:
        assert run["ready_s"] > 0 and len(run["worker_pss_mb"]) == 1 and run["redis_pss_mb"] > 0
        assert run["server_pss_mb"] == pytest.approx(run["master_pss_mb"] + sum(run["worker_pss_mb"]), abs=0.2)
    assert "machine" in report


def test_bench_startup_needs_artifacts_alone() -> None:
    result = runner.invoke(app, ["bench", "--startup", "--items", "300"])
    assert result.exit_code == 2 and "--startup" in result.stderr
