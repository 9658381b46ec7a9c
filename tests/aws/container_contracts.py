"""What the SageMaker containers do with a job request, modelled on their sources (not on what our code expects).

- The Spark processing image (aws/sagemaker-spark-container, ENTRYPOINT ``smspark-submit``): ``src/smspark/cli.py``
  parses ``smspark-submit [options] APP [APP_ARGS...]`` with click (``allow_interspersed_args=False``, app
  arguments UNPROCESSED), builds ``spark-submit --master yarn --deploy-mode client [options] APP APP_ARGS`` and
  ``src/smspark/job.py`` runs it with ``subprocess.run(cmd, shell=True)``. The string is the parts joined with
  spaces (images built before the fix) or with each part ``shlex.quote``d (newer images): both are modelled, and
  the string is run by a real ``/bin/sh``.
- The SageMaker training toolkit (aws/sagemaker-training-toolkit, in the TF DLC): ``environment.read_hyperparameters``
  JSON-decodes every value of hyperparameters.json (keeping the raw string when that fails), keys starting with
  ``sagemaker_`` are the framework's, the rest are the user's: ``SM_HPS`` (JSON, sorted keys, compact),
  ``SM_HP_<NAME>``, ``SM_CHANNEL_<NAME>`` = /opt/ml/input/data/<name>, ``SM_MODEL_DIR``; and
  ``process.ProcessRunner`` runs ``[python, <sagemaker_program>, *mapping.to_cmd_args(hps)]`` (sorted keys,
  ``--name value`` with ``str(value)``) in /opt/ml/code, without a shell.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import stat
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from tastebud_training.sagemaker_jobs import ROOT

SAGEMAKER_PYTHON = ROOT / ".venv-sagemaker" / "bin" / "python"
PYTHONPATH = os.pathsep.join(str(ROOT / p) for p in ("layers/core", "training"))
BUCKET = "tb-artifacts"
SPARK_SUBMIT_PREFIX = ["spark-submit", "--master", "yarn", "--deploy-mode", "client"]


@functools.cache
def rendered_jobs() -> tuple[dict[str, Any], Path]:
    """jobs.json as `make sagemaker-jobs` renders it (the SDK 2.x in .venv-sagemaker), and the folder that also
    holds sourcedir.tar.gz. Rendered once per test session."""
    if not SAGEMAKER_PYTHON.exists():
        raise FileNotFoundError("the SageMaker SDK lives in .venv-sagemaker: `make .venv-sagemaker/.installed` "
                                "(a prerequisite of `make test`)")
    out = Path(tempfile.mkdtemp(prefix="tastebud-jobs-"))
    result = subprocess.run(
        [str(SAGEMAKER_PYTHON), "-m", "tastebud_training.sagemaker_jobs", "--region", "eu-west-1", "--bucket", BUCKET,
         "--role", "arn:aws:iam::123456789012:role/tastebud-training", "--out", str(out / "jobs.json"),
         "--source-tar", str(out / "sourcedir.tar.gz")],
        env={**os.environ, "PYTHONPATH": PYTHONPATH, "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
             "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
        capture_output=True, text=True, timeout=600, check=False)
    if result.returncode:
        raise RuntimeError(f"rendering jobs.json failed:\n{result.stderr[-3000:]}")
    return json.loads((out / "jobs.json").read_text()), out


# --- the Spark processing image -------------------------------------------------------------------------------

def smspark_submit_command(argv: list[str], *, quote: bool) -> str:
    """The shell command smspark-submit runs for ``argv`` (its own arguments, after the program name)."""
    import click

    built: list[str] = []

    # The options smspark-submit declares (they are passed on to spark-submit); app arguments pass verbatim.
    @click.command(context_settings={"allow_interspersed_args": False})
    @click.option("--class", "class_")
    @click.option("--jars")
    @click.option("--py-files")
    @click.option("--files")
    @click.option("--spark-event-logs-s3-uri")
    @click.option("--local-spark-event-logs-dir")
    @click.option("-v", "--verbose", is_flag=True)
    @click.argument("app")
    @click.argument("app_arguments", nargs=-1, type=click.UNPROCESSED)
    def submit(class_: str | None, jars: str | None, py_files: str | None, files: str | None,
               spark_event_logs_s3_uri: str | None, local_spark_event_logs_dir: str | None, verbose: bool,
               app: str, app_arguments: tuple[str, ...]) -> None:
        options: list[str] = ["--verbose"] if verbose else []
        for name, value in (("class", class_), ("jars", jars), ("py-files", py_files), ("files", files)):
            if value:
                options += [f"--{name}", value]
        parts = [*SPARK_SUBMIT_PREFIX, *options, app, *app_arguments]
        built.append(" ".join(shlex.quote(part) for part in parts) if quote else " ".join(parts))

    submit.main(args=list(argv), prog_name="smspark-submit", standalone_mode=False)
    return built[0]


def argv_printer(folder: Path, name: str) -> Path:
    """An executable ``name`` in ``folder`` that prints the arguments it received as a JSON list."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def run_in_shell(command: str, fake_bin: Path) -> list[str]:
    """``subprocess.run(command, shell=True)`` as smspark's job.py runs it, with ``spark-submit`` printing its argv."""
    argv_printer(fake_bin, "spark-submit")
    path = f"{fake_bin}{os.pathsep}{os.environ['PATH']}"
    result = subprocess.run(command, shell=True, env={**os.environ, "PATH": path}, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    received: list[str] = json.loads(result.stdout)
    return received


def app_arguments(spark_submit_argv: list[str], app: str) -> list[str]:
    """What spark-submit hands the Python app: everything after the app file."""
    return spark_submit_argv[spark_submit_argv.index(app) + 1:]


# --- the SageMaker training toolkit ---------------------------------------------------------------------------

def _toolkit_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def training_invocation(hyperparameters: dict[str, str], channels: list[str], root: Path,
                        python: str = sys.executable) -> tuple[list[str], dict[str, str], Path]:
    """(argv, SM_* environment, working directory) of the user script, from the request's HyperParameters (every
    value a JSON-encoded string, as the SDK writes them); ``root`` stands for /opt/ml."""
    decoded: dict[str, Any] = {}
    for name, value in hyperparameters.items():
        try:
            decoded[name] = json.loads(value)
        except (ValueError, TypeError):
            decoded[name] = value
    user = {k: v for k, v in decoded.items() if not k.startswith("sagemaker_")}
    arguments: list[str] = []
    for name in sorted(user):
        value = user[name]
        arguments += [f"--{name}" if len(name) > 1 else f"-{name}",
                      ",".join(f"{k}={v}" for k, v in sorted(value.items())) if isinstance(value, dict)
                      else str(value)]
    env = {"SM_HPS": json.dumps(user, sort_keys=True, separators=(",", ":")),
           "SM_MODEL_DIR": str(root / "model"), "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
           "SM_INPUT_DIR": str(root / "input"), "SM_INPUT_CONFIG_DIR": str(root / "input" / "config"),
           "SM_CHANNELS": json.dumps(sorted(channels)), "SM_USER_ENTRY_POINT": str(decoded["sagemaker_program"]),
           "SM_USER_ARGS": json.dumps(arguments), "SM_MODULE_DIR": str(decoded.get("sagemaker_submit_directory", ""))}
    env.update({f"SM_CHANNEL_{c.upper()}": str(root / "input" / "data" / c) for c in channels})
    env.update({f"SM_HP_{k.upper()}": _toolkit_value(v) for k, v in user.items()})
    return [python, str(decoded["sagemaker_program"]), *arguments], env, root / "code"


def unpack_sourcedir(tarball: Path, code_dir: Path) -> None:
    """What the toolkit does with ``sagemaker_submit_directory`` (and the embeddings job's ``tar xzf``)."""
    code_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(code_dir, filter="data")


def dlc_without_scann(folder: Path) -> Path:
    """A path entry on which ``import scann`` fails, as in the DLC (ScaNN 1.4.2 is built for TF 2.20, not 2.19)."""
    package = folder / "scann"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("raise ImportError('scann is not installed in the TF 2.19 DLC')\n")
    return folder


def python_with_recorded_pip(folder: Path, log: Path) -> Path:
    """A ``python`` for PATH: ``python -m pip ...`` is recorded in ``log`` and succeeds without installing (the
    install itself is checked by test_job_requirements.py); anything else runs this interpreter."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "python"
    script.write_text(f"#!/bin/sh\nif [ \"$1\" = -m ] && [ \"$2\" = pip ]; then\n"
                      f"  echo \"$PWD $*\" >> {shlex.quote(str(log))}; exit 0\nfi\n"
                      f"exec {shlex.quote(sys.executable)} \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder
