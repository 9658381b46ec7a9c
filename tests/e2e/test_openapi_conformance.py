"""schemathesis against `tastebud serve --workers 2`: every operation of docs/openapi.json, all checks (no 5xx,
documented status codes, content types and headers, response bodies matching the documented 200/4xx models,
invalid input rejected, valid input accepted, undeclared methods answered 405 with Allow), a fixed seed and a
bounded number of examples. A conformance test, not a timing test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from servers import ServerProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SEED = 42
MAX_EXAMPLES = 50


def test_the_server_conforms_to_its_openapi_spec(served: ServerProcess, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "schemathesis.cli", "run", str(ROOT / "docs" / "openapi.json"),
               "--url", served.url, "--checks", "all", "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES),
               "--generation-database", "none", "--workers", "1", "--no-color", "--request-timeout", "30"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    spec = json.loads((ROOT / "docs" / "openapi.json").read_text())
    operations = sum(len(methods) for methods in spec["paths"].values())
    assert "No issues found" in run.stdout, run.stdout[-3000:]
    assert f"{operations} selected / {operations} total" in run.stdout, run.stdout[-3000:]
