"""The import-linter contracts of pyproject.toml: the CLI above benchmarks above training above serving, and no
import cycles in any of the four packages.

A cycle (even through a lazy import inside a function) means two modules cannot be understood, tested or
moved apart; `make lint` runs the same check as `lint-imports`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# In its own process: import-linter writes through its own console, which must not share pytest's captured streams.
LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"


def test_no_import_cycles() -> None:
    # The graph is built from the checked-out sources, whatever else is installed in the venv.
    source_roots = (ROOT / "layers" / "core", ROOT / "training", ROOT / "bench", ROOT / "cli")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(root) for root in source_roots)}
    done = subprocess.run([sys.executable, "-c", LINT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cli above benchmarks above training above serving KEPT" in done.stdout
    assert "no import cycles in tastebud, tastebud_training, tastebud_bench or tastebud_cli KEPT" in done.stdout
