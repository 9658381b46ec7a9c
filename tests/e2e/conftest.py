"""A real `tastebud serve --workers 2` (gunicorn master + 2 uvicorn workers) on the tiny artifacts, shared by the
end-to-end tests that need worker processes, signals or the OpenAPI conformance run."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from servers import ServerProcess, start_tastebud_serve


@pytest.fixture(scope="session")
def served(tiny_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    artifacts = tmp_path_factory.mktemp("served") / "artifacts"
    shutil.copytree(tiny_artifacts, artifacts)  # its own stock.rdb: stock changes stay in this server
    server = start_tastebud_serve(artifacts, workers=2)
    try:
        yield server
    finally:
        exit_code = server.stop()
    assert exit_code == 0, "".join(server.log[-40:])
