"""SageMaker: the entry point runs `tastebud train` + `evaluate` on tiny data in SageMaker's /opt/ml layout
(embeddings Processing job first, as the state machine does), and the SDK-built job definitions are valid
requests that the training state machine executes (moto's SageMaker backend + ASL interpreter)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tastebud_training.sagemaker_jobs import METRICS, ROOT, TF_VERSION

SAGEMAKER_PYTHON = ROOT / ".venv-sagemaker" / "bin" / "python"
PYTHONPATH = os.pathsep.join(str(ROOT / p) for p in ("layers/core", "training"))


def run_module(args: list[str], env: dict[str, str],
               python: Path | str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", *args], env={**os.environ, "PYTHONPATH": PYTHONPATH, **env},
                          capture_output=True, text=True, timeout=900, check=False)


# What the training DLC is like for ScaNN: `import scann` fails (1.4.2 is built for TF 2.20, the image has 2.19).
WITHOUT_SCANN = ("import runpy, sys; sys.modules['scann'] = None; "
                 "runpy.run_module('tastebud_training.sagemaker_entry', run_name='__main__', alter_sys=True)")


def run_entry_without_scann(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_SCANN, *args],
                          env={**os.environ, "PYTHONPATH": PYTHONPATH, **env},
                          capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.slow
def test_the_entry_point_trains_on_tiny_data_in_the_opt_ml_layout_without_scann(tiny_data: Path,
                                                                                 tmp_path: Path) -> None:
    root = tmp_path / "opt_ml"
    shutil.copytree(tiny_data, root / "processing" / "input" / "data")
    env = {"TASTEBUD_SM_ROOT": str(root), "HF_HUB_OFFLINE": "1"}
    embedded = run_entry_without_scann(["embed"], env)
    assert embedded.returncode == 0, embedded.stderr[-3000:]
    # The training job's channels: `train` (the ETL's tables) and `cache` (the embeddings job's output).
    shutil.copytree(tiny_data, root / "input" / "data" / "train")
    shutil.copytree(root / "processing" / "output" / "cache", root / "input" / "data" / "cache")
    config = root / "input" / "config"
    config.mkdir(parents=True)
    # As SageMaker writes them for the SDK's estimators: every value JSON-encoded into a string.
    (config / "hyperparameters.json").write_text(json.dumps({
        "epochs": "2", "seed": "3", "retrieval": '"two_tower"', "images": '"false"', "evaluate": '"true"',
        "max_eval_users": "200", "max_ranker_groups": "1500", "sagemaker_program": '"sagemaker_entry.py"'}))
    trained = run_entry_without_scann([], env)
    assert trained.returncode == 0, trained.stderr[-3000:]  # `import scann` anywhere would have failed the job
    assert not (root / "output" / "failure").exists()

    model = root / "model"
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["retrieval"]["kind"] == "two_tower" and manifest["retrieval"]["config"]["epochs"] == 2
    # No ANN index in the version (OpenSearch is the serving index); its vectors are there for the bulk load.
    assert manifest["retrieval"]["index"] == "none" and not (model / "index").exists()
    vectors = np.load(model / "index_vectors.npy")
    assert vectors.shape == (manifest["retrieval"]["items"], manifest["retrieval"]["dimension"])
    assert manifest["files"]["index_vectors.npy"] and "index" not in manifest["files"]
    evaluation = json.loads((model / "evaluation.json").read_text())
    with tarfile.open(model / "user_tower" / "model.tar.gz") as tar:
        assert "user_tower/1/saved_model.pb" in tar.getnames()
    final = {}
    for metric in METRICS:  # what SageMaker's metric regexes extract from the job's log
        found = re.findall(metric["Regex"], trained.stdout)
        assert found, f"no {metric['Name']} line in the job's output"
        final[metric["Name"]] = float(found[-1])
    assert final["recall@20"] == pytest.approx(evaluation["models"]["tastebud"]["recall@20"], abs=1e-6)


def test_a_failing_job_writes_opt_ml_output_failure(tmp_path: Path) -> None:
    result = run_module(["tastebud_training.sagemaker_entry"], {"TASTEBUD_SM_ROOT": str(tmp_path)})
    assert result.returncode == 1
    assert (tmp_path / "output" / "failure").read_text().startswith("FileNotFoundError")


@pytest.fixture(scope="module")
def sdk_jobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not SAGEMAKER_PYTHON.exists():
        pytest.skip("the SageMaker SDK lives in .venv-sagemaker (it conflicts with the dev venv's pins): "
                    "`make .venv-sagemaker/.installed` or `make sagemaker-jobs`")
    out = tmp_path_factory.mktemp("jobs")
    result = run_module(["tastebud_training.sagemaker_jobs", "--region", "eu-west-1", "--bucket", "tb-artifacts",
                         "--role", "arn:aws:iam::123456789012:role/tastebud-training", "--out", str(out / "jobs.json"),
                         "--source-tar", str(out / "sourcedir.tar.gz")],
                        {"SAGEMAKER_SUPPRESS_V2_WARNING": "1", "AWS_ACCESS_KEY_ID": "testing",
                         "AWS_SECRET_ACCESS_KEY": "testing"}, python=SAGEMAKER_PYTHON)
    assert result.returncode == 0, result.stderr[-3000:]
    with tarfile.open(out / "sourcedir.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"sagemaker_entry.py", "requirements.txt", "tastebud_training/sagemaker_entry.py",
            "tastebud/two_tower_features.py"} <= names
    return dict(json.loads((out / "jobs.json").read_text()))


def test_the_sdk_renders_the_training_job_the_state_machine_runs(sdk_jobs: dict[str, Any]) -> None:
    training = sdk_jobs["training"]
    algorithm = training["AlgorithmSpecification"]
    assert algorithm["TrainingImage"].endswith(f"/tensorflow-training:{TF_VERSION}-cpu-py312")
    assert algorithm["MetricDefinitions"] == METRICS
    assert json.loads(training["HyperParameters"]["sagemaker_program"]) == "sagemaker_entry.py"
    assert [c["ChannelName"] for c in training["InputDataConfig"]] == ["train", "cache"]
    etl = sdk_jobs["etl"]
    assert "sagemaker-spark-processing:3.5" in etl["AppSpecification"]["ImageUri"]
    assert etl["AppSpecification"]["ContainerArguments"][:2] == ["--lake", "s3://tb-artifacts/lake/events/"]


def test_the_training_state_machine_executes_the_sdk_definition(sdk_jobs: dict[str, Any], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws
    from sfn_harness import MOTO_CONFIG, function, queue, role
    from test_state_machines import training

    from tastebud.lifecycle import control_tasks

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws(config=MOTO_CONFIG):  # type: ignore[arg-type]
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="tb-artifacts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_object(Bucket="tb-artifacts", Key="training/jobs.json", Body=json.dumps(sdk_jobs).encode())
        deps = control_tasks.ControlDeps(s3=s3, sagemaker=None, bucket="tb-artifacts", prefix="tastebud",
                                         alias="items", endpoint_prefix="e", user_tower_image="i",
                                         user_tower_role_arn="r")
        specs = control_tasks.job_specs({"jobs": "s3://tb-artifacts/training/jobs.json", "run": "gate"}, deps)
        role_arn = role()
        aws = {"role": role_arn, "functions": {"ControlTaskFunctionArn": function("control-tasks", role_arn)}}
        queue(specs, {"pass": False, "reason": "recall@20 0.2100 < live 0.3000 - 0.01"})
        run = training(aws, "sdk-gate")
        assert run["status"] == "FAILED" and run["error"] == "GateRejected", run
        assert run["states"].index("EtlJob") < run["states"].index("TrainingJob") < run["states"].index("Gate")
        sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
        job = sagemaker.describe_training_job(TrainingJobName=specs["training"]["TrainingJobName"])
        assert job["AlgorithmSpecification"]["TrainingImage"] == \
            sdk_jobs["training"]["AlgorithmSpecification"]["TrainingImage"]
        assert job["HyperParameters"] == sdk_jobs["training"]["HyperParameters"]
