"""The import-linter contracts of pyproject.toml: the CLI above benchmarks and the sam-local stand-ins, above
training, above serving; the serving package's floors; and no import cycles in any of the five packages.

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
    source_roots = (ROOT / "layers" / "core", ROOT / "training", ROOT / "bench", ROOT / "sam_local", ROOT / "cli")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(root) for root in source_roots)}
    done = subprocess.run([sys.executable, "-c", LINT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    for contract in ("packages: cli > bench, sam_local > training > serving",
                     "tastebud: server > composition > live > api > pipeline > adapters > features",
                     "no import cycles in any of the five packages"):
        assert f"{contract} KEPT" in done.stdout
    assert "Contracts: 3 kept, 0 broken." in done.stdout
