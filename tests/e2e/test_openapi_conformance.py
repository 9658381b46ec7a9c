"""schemathesis against `tastebud serve --workers 2`: every operation of docs/openapi.json, all checks (no 5xx,
documented status codes, content types and headers, response bodies matching the documented 200/4xx models,
invalid input rejected, valid input accepted, undeclared methods answered 405 with Allow), a fixed seed and a
bounded number of examples. A conformance test, not a timing test: its server has Redis deadlines of seconds
(through the `TASTEBUD_*` knobs `tastebud serve` reads), because with the defaults (10 ms per read, 50 ms per
request) a valid write on this 2-core machine, saturated by schemathesis and two workers, was once refused with a
documented 503 + Retry-After (1 of 1,048 requests in a CI run). The default budgets are what
`tests/integration/test_faults.py` and the soak check."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import ServerProcess, start_tastebud_serve

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SEED = 42
MAX_EXAMPLES = 50
UNHURRIED_REDIS = {"TASTEBUD_REDIS_TIMEOUT_MS": "2000", "TASTEBUD_REDIS_WRITE_TIMEOUT_MS": "2000",
                   "TASTEBUD_REDIS_REQUEST_BUDGET_MS": "5000"}


@pytest.fixture
def unhurried(tiny_artifacts: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    artifacts = tmp_path / "served" / "artifacts"
    shutil.copytree(tiny_artifacts, artifacts)  # its own stock.rdb: stock changes stay in this server
    server = start_tastebud_serve(artifacts, workers=2, env=UNHURRIED_REDIS)
    try:
        yield server
    finally:
        exit_code = server.stop()
    assert exit_code == 0, "".join(server.log[-40:])


def test_the_server_conforms_to_its_openapi_spec(unhurried: ServerProcess, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "schemathesis.cli", "run", str(ROOT / "docs" / "openapi.json"),
               "--url", unhurried.url, "--checks", "all", "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES),
               "--generation-database", "none", "--workers", "1", "--no-color", "--request-timeout", "30"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    spec = json.loads((ROOT / "docs" / "openapi.json").read_text())
    operations = sum(len(methods) for methods in spec["paths"].values())
    assert "No issues found" in run.stdout, run.stdout[-3000:]
    assert f"{operations} selected / {operations} total" in run.stdout, run.stdout[-3000:]
