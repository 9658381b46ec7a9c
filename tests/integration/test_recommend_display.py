"""People can judge what they get: `tastebud recommend` and `explain` show titles, merchants, prices, distances."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tastebud_cli.app import app

pytestmark = pytest.mark.slow


def test_cli_recommend_shows_display_fields(tiny_artifacts: Path, tiny_dataset,  # type: ignore[no-untyped-def]
                                           active_user: str) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["recommend", active_user, "--artifacts", str(tiny_artifacts), "--k", "5", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    titles = tiny_dataset.items.set_index("item_id")["title"]
    names = tiny_dataset.merchants.set_index("merchant_id")["name"]
    assert len(body["items"]) == 5
    for item in body["items"]:
        assert item["title"] == titles[item["item_id"]] and item["merchant_name"] == names[item["merchant_id"]]
        assert item["category"] and item["stage_scores"]["final_rank"] == item["rank"]
    assert body["explain"]["candidates"]["returned"] == 5 and "knn" in body["explain"]["stage_ms"]

    table = runner.invoke(app, ["recommend", active_user, "--artifacts", str(tiny_artifacts), "--k", "3"],
                          env={"COLUMNS": "240"})
    assert table.exit_code == 0 and body["items"][0]["title"][:10] in table.output
