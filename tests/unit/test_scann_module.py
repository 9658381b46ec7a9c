"""ScaNN without TensorFlow (issue 24): the serving process imports the real ScaNN package, not TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROGRAM = """
import sys
from pathlib import Path
import numpy as np
from tastebud.adapters.embedded.scann_index import ScannIndex

vectors = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
ScannIndex.build(vectors, "v1").save(Path(sys.argv[1]))
loaded = ScannIndex.load(Path(sys.argv[1]), "v1")
rows, _ = loaded.search(vectors[7], 5)
assert rows[0] == 7, rows
assert "tensorflow" not in sys.modules, "ScaNN imported TensorFlow"
assert not any(name.startswith("tensorflow") for name in sys.modules)
import scann
assert hasattr(scann, "scann_ops_pybind") and hasattr(scann, "ScannBuilder")  # the real package
print("ok")
"""


def test_the_scann_index_builds_saves_loads_and_searches_without_importing_tensorflow(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", _PROGRAM, str(tmp_path / "index")], capture_output=True, text=True,
                         timeout=120, env={"PYTHONPATH": str(ROOT / "layers" / "core"), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]


def test_tensorflow_still_imports_after_scann_was_loaded_without_it() -> None:
    program = ("import tastebud.adapters.embedded.scann_module, sys; assert 'tensorflow' not in sys.modules; "
               "import tensorflow as tf; print(tf.constant(2).numpy() * 3)")
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(ROOT / "layers" / "core"), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0 and run.stdout.strip().endswith("6"), run.stderr[-3000:]
