"""`tastebud events replay`, `catalog upsert` and `versions list|rollback` against a real local server."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tastebud.api.http import create_handler
from tastebud.artifacts import LocalArtifactStore
from tastebud.composition.local import build_runtime
from tastebud.live.runtime import ServingRuntime
from tastebud.settings import Settings
from tastebud_cli.app import app

from helpers import private_artifacts
from servers import threaded_server

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture
def live(tiny_artifacts: Path, tmp_path: Path) -> Iterator[tuple[ServingRuntime, str, Path]]:
    artifacts = private_artifacts(tiny_artifacts, tmp_path / "artifacts")
    runtime = build_runtime(Settings(artifacts=artifacts, redis_db_path=tmp_path / "redis" / "r.rdb",
                                     data_dir=tmp_path / "data", watch_interval_s=0.1))
    assert isinstance(runtime, ServingRuntime)
    with threaded_server(lambda: create_handler(lambda: runtime)) as url:
        yield runtime, url, artifacts
    runtime.close()


def test_replaying_a_file_twice_applies_it_once(live, active_user: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runtime, url, _ = live
    items = runtime.view.catalog.item_ids[:3].tolist()
    file = tmp_path / "events.csv"
    file.write_text("user_id,item_id,event_type,timestamp\n" + "".join(
        f"{active_user},{item},purchase,{int(time.time()) - 60}\n" for item in items) + f"{active_user},nope,click,1\n")

    first = runner.invoke(app, ["events", "replay", str(file), "--url", url])
    second = runner.invoke(app, ["events", "replay", str(file), "--url", url])

    assert first.exit_code == 1 and "record 3" in first.stderr and "item_id" in first.stderr
    assert json.loads(first.stdout) == {"accepted": 3, "duplicates": 0, "failed": 1, "records": 4}
    assert json.loads(second.stdout)["accepted"] == 0 and json.loads(second.stdout)["duplicates"] == 3
    # The event-lag metric counts the 3 accepted events once: not the duplicates, not the refused record.
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        exposition = response.read().decode()
    assert "tastebud_event_lag_seconds_count 3.0" in exposition


def test_catalog_upsert_reports_bad_rows_and_applies_good_ones(live, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runtime, url, _ = live
    merchant = str(runtime.view.catalog.merchant_ids[0])
    file = tmp_path / "items.jsonl"
    file.write_text(json.dumps({"item_id": "cli-new-1", "merchant_id": merchant, "title": "Yuzu tofu bowl",
                                "category": "bowls", "price": 12.0}) + "\n"
                    + json.dumps({"item_id": "cli-new-2", "merchant_id": "nobody", "title": "x", "category": "y"})
                    + "\n")

    result = runner.invoke(app, ["catalog", "upsert", str(file), "--url", url])

    assert result.exit_code == 1 and "merchant_id" in result.stderr
    assert json.loads(result.stdout) == {"upserted": 1, "failed": 1}
    assert runtime.view.catalog.row_of("cli-new-1") is not None


def test_versions_list_and_rollback_are_followed_by_the_server(live) -> None:  # type: ignore[no-untyped-def]
    runtime, _, artifacts = live
    store = LocalArtifactStore(artifacts)
    first = store.current_version()
    staging = store.staging_dir("v-second")
    shutil.copytree(store.current_dir(), staging, dirs_exist_ok=True)
    manifest = json.loads((staging / "manifest.json").read_text())
    manifest.update(version="v-second", created_at=time.time())
    (staging / "manifest.json").write_text(json.dumps(manifest))
    store.publish(staging, "v-second")

    listed = runner.invoke(app, ["versions", "list", "--artifacts", str(artifacts), "--json"])
    assert [(r["version"], r["current"]) for r in json.loads(listed.stdout)] == [(first, False), ("v-second", True)]
    wait_for(lambda: runtime.version_name == "v-second")

    rolled = runner.invoke(app, ["versions", "rollback", "--artifacts", str(artifacts)])
    assert rolled.exit_code == 0 and json.loads(rolled.stdout) == {"previous": "v-second", "current": first}
    wait_for(lambda: runtime.version_name == first)


def wait_for(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the server did not follow CURRENT"
        time.sleep(0.05)
