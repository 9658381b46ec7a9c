"""`tastebud experiment`: the measurements behind docs/BENCHMARKS.md as subcommands sharing one harness."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tastebud_bench import experiments
from tastebud_bench.experiments.harness import warm_service
from tastebud_cli.app import app

runner = CliRunner()


def test_list_names_every_experiment_with_its_purpose() -> None:
    result = runner.invoke(app, ["experiment", "list"])
    assert result.exit_code == 0
    assert {line.split()[0] for line in result.stdout.splitlines() if line.strip()} == set(experiments.names())
    assert "idle_penalty" in experiments.names() and "harness" not in experiments.names()


def test_an_unknown_experiment_names_the_known_ones() -> None:
    result = runner.invoke(app, ["experiment", "nope"])
    assert result.exit_code == 2 and "no experiment 'nope'" in result.stderr and "request_tail" in result.stderr


def test_missing_arguments_show_the_usage() -> None:
    result = runner.invoke(app, ["experiment", "ab_ann_leaves"])
    assert result.exit_code == 2 and "usage: tastebud experiment ab_ann_leaves ITEMS" in result.stderr


def test_an_experiment_runs_with_its_own_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    experiments.run("machine_speed_probe", ["1"])
    printed = capsys.readouterr().out
    assert "calls: p50" in printed and "per-second medians (ms):" in printed


@pytest.mark.slow
def test_the_harness_serves_a_warm_synthetic_catalog() -> None:
    warm = warm_service(3000, 20, warmup=10)
    try:
        assert len(warm.users) == 20 and set(warm.users) <= set(warm.system.user_ids)
        result = warm.service.recommend(warm.users[0], k=5)
        assert len(result.items) == 5
    finally:
        warm.system.close()
