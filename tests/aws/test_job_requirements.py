"""The SageMaker jobs' requirements install NEXT TO the Deep Learning Container's TensorFlow.

The training toolkit (and the embeddings job's `python -m pip install -r requirements.txt`) installs
requirements/sagemaker-job.txt into tensorflow-training:<TF_VERSION>-cpu-py312, whose TensorFlow is already there.
pip's own resolver decides whether that works: this test resolves the file TOGETHER with tensorflow-cpu of the
DLC's version, for the DLC's Python (3.12) and platform (manylinux x86_64, glibc 2.35: Ubuntu 22.04), wheels only,
from PyPI, ignoring this machine's pip configuration (local wheel folders, constraints). A pin that needs a
protobuf TensorFlow cannot use (onnx 1.23: protobuf >= 6.31.1; TF 2.19: < 6) fails here, not in the nightly job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from tastebud_training.sagemaker_jobs import ROOT, TF_VERSION

JOB_REQUIREMENTS = ROOT / "requirements" / "sagemaker-job.txt"
DLC_PYTHON = "3.12"
DLC_GLIBC_MINOR = 35  # Ubuntu 22.04; pip does not expand --platform manylinux_2_35 to older tags by itself
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(DLC_GLIBC_MINOR, 16, -1)] + ["manylinux2014_x86_64"]
PYPI = "https://pypi.org/simple"


def resolve(requirements: list[str], report: Path) -> subprocess.CompletedProcess:
    """pip's resolver, as `pip install` in the DLC would run it, without installing anything."""
    # Only transport settings of this machine are kept (CA bundle, timeout); its wheel folders, extra indexes
    # and constraints would change the answer.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in ("PIP_CERT", "PIP_DEFAULT_TIMEOUT")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--report", str(report), "--index-url", os.environ.get("PIP_INDEX_URL", PYPI),
               "--python-version", DLC_PYTHON, "--only-binary=:all:",
               *[f"--platform={platform}" for platform in PLATFORMS], *requirements]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)


def test_the_job_requirements_resolve_with_the_dlc_tensorflow(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = resolve(["-r", str(JOB_REQUIREMENTS), f"tensorflow-cpu=={TF_VERSION}.*"], report)
    assert result.returncode == 0, f"{JOB_REQUIREMENTS.name} cannot install beside TF {TF_VERSION}:\n" \
                                   f"{result.stderr[-3000:]}"
    chosen = {str(canonicalize_name(item["metadata"]["name"])): Version(item["metadata"]["version"])
              for item in json.loads(report.read_text())["install"]}
    assert f"{chosen['tensorflow-cpu'].major}.{chosen['tensorflow-cpu'].minor}" == TF_VERSION
    assert chosen["protobuf"] < Version("6")  # what TF 2.19 accepts
    assert {"onnx", "tf2onnx", "onnxmltools", "onnxruntime", "xgboost-cpu", "sentence-transformers"} <= set(chosen)
    assert "scann" not in chosen  # built for TF 2.20: the job never installs or imports it
