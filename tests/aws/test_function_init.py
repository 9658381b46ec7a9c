"""The API functions build their service in the Lambda INIT phase; a failure there is logged with its stack
(not swallowed) and the handler still loads, so requests answer 503 and retry the build."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["recommend", "stock"])
def test_an_init_failure_is_logged_with_its_stack(name: str, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("TASTEBUD_BACKEND", "aws")  # and nothing else: Settings.from_env refuses
    for var in ("TASTEBUD_ARTIFACTS_S3_URI", "TASTEBUD_OPENSEARCH_ENDPOINT", "TASTEBUD_PROFILES_TABLE"):
        monkeypatch.delenv(var, raising=False)
    spec = importlib.util.spec_from_file_location(f"app_{name}", ROOT / "functions" / name / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    with caplog.at_level(logging.ERROR, logger="tastebud.init"):
        spec.loader.exec_module(module)
    (record,) = [r for r in caplog.records if r.name == "tastebud.init"]
    assert record.exc_info is not None and record.exc_info[0] is not None  # the stack is in the log
    assert callable(module.handler)
