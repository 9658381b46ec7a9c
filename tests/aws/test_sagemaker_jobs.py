"""SageMaker: the SDK-built job definitions against the containers' contracts (tests/aws/container_contracts.py:
smspark-submit's parse-join-and-shell, the training toolkit's hyperparameters/env/argv), the embeddings and training
entry points run on tiny data exactly as their containers start them (the rendered ContainerEntrypoint, the
toolkit's command line), and the training state machine executing the definitions (moto's SageMaker backend + ASL
interpreter)."""

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
from container_contracts import (
    PYTHONPATH,
    app_arguments,
    dlc_without_scann,
    python_with_recorded_pip,
    rendered_jobs,
    run_in_shell,
    smspark_submit_command,
    training_invocation,
    unpack_sourcedir,
)

from tastebud.event_types import EVENT_WEIGHTS
from tastebud_training import sagemaker_entry
from tastebud_training.etl import spark_etl
from tastebud_training.sagemaker_jobs import LAKE_WINDOW_DAYS, METRICS, TF_VERSION

OPT_ML = "/opt/ml"


def run_module(args: list[str], env: dict[str, str],
               python: Path | str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", *args], env={**os.environ, "PYTHONPATH": PYTHONPATH, **env},
                          capture_output=True, text=True, timeout=900, check=False)


def processing_input(job: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(i["S3Input"] for i in job["ProcessingInputs"] if i["InputName"] == name)
    return found


def container_env(root: Path, tools: Path) -> dict[str, str]:
    """The container's environment, with /opt/ml moved to ``root`` and ``tools`` first on PATH; no PYTHONPATH to
    the repository: the code must come from sourcedir.tar.gz."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TASTEBUD_SM_ROOT=str(root), HF_HUB_OFFLINE="1", PATH=f"{tools}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(dlc_without_scann(root.parent / "dlc_site")))
    return env


@pytest.mark.slow
def test_the_embeddings_and_training_jobs_run_as_their_containers_start_them(tiny_data: Path,
                                                                            tmp_path: Path) -> None:
    jobs, rendered = rendered_jobs()
    root = tmp_path / "opt_ml"
    tools = python_with_recorded_pip(tmp_path / "bin", tmp_path / "pip.log")
    env = container_env(root, tools)

    # Embeddings (Processing): the inputs where the request puts them, then the request's ContainerEntrypoint.
    embeddings = jobs["embeddings"]
    code = Path(processing_input(embeddings, "code")["LocalPath"].replace(OPT_ML, str(root), 1))
    code.mkdir(parents=True)
    shutil.copy(rendered / "sourcedir.tar.gz", code / "sourcedir.tar.gz")
    shutil.copytree(tiny_data, Path(processing_input(embeddings, "tables")["LocalPath"].replace(OPT_ML, str(root), 1)))
    entrypoint = [part.replace(OPT_ML, str(root)) for part in embeddings["AppSpecification"]["ContainerEntrypoint"]]
    assert "ContainerArguments" not in embeddings["AppSpecification"]
    embedded = subprocess.run(entrypoint, env={**env, **embeddings["Environment"]}, cwd=tmp_path,
                              capture_output=True, text=True, timeout=900, check=False)
    assert embedded.returncode == 0, embedded.stderr[-3000:]
    assert (tmp_path / "pip.log").read_text().split() == [str(code), "-m", "pip", "install", "-q", "-r",
                                                          "requirements.txt"]
    [output] = embeddings["ProcessingOutputConfig"]["Outputs"]
    cache = Path(output["S3Output"]["LocalPath"].replace(OPT_ML, str(root), 1))
    assert any(cache.iterdir()), "the embeddings job wrote nothing to its output"
    # S3 (a folder per URI here): the output is uploaded under its prefix, where an earlier night's files remain.
    s3 = tmp_path / "s3"
    uploaded = s3 / output["S3Output"]["S3Uri"].removeprefix("s3://")
    shutil.copytree(cache, uploaded)
    (uploaded / "minilm-from-an-earlier-night.npy").write_bytes(b"stale")

    # Training: SageMaker downloads each channel to /opt/ml/input/data/<channel>: `train` its prefix, `cache` what
    # the embeddings job's manifest lists (S3DataType ManifestFile), each file at its key relative to the prefix.
    training = jobs["training"]
    channels = [c["ChannelName"] for c in training["InputDataConfig"]]
    shutil.copytree(tiny_data, root / "input" / "data" / "train")
    [cache_source] = [c["DataSource"]["S3DataSource"] for c in training["InputDataConfig"]
                      if c["ChannelName"] == "cache"]
    assert cache_source["S3DataType"] == "ManifestFile"
    header, *listed = json.loads((s3 / cache_source["S3Uri"].removeprefix("s3://")).read_text())
    for key in listed:
        source = s3 / (header["prefix"] + key).removeprefix("s3://")
        (root / "input" / "data" / "cache" / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, root / "input" / "data" / "cache" / key)
    assert "minilm-from-an-earlier-night.npy" not in listed and listed
    # The rendered hyperparameters (JSON-encoded strings, sagemaker_* included), made small for tiny data.
    hyperparameters = {**training["HyperParameters"], **{k: json.dumps(v) for k, v in {
        "epochs": 2, "seed": 3, "images": "false", "max_eval_users": 200, "max_ranker_groups": 1500}.items()}}
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    argv, toolkit_env, code_dir = training_invocation(hyperparameters, channels, root)
    unpack_sourcedir(rendered / "sourcedir.tar.gz", code_dir)
    assert argv[1:3] == ["sagemaker_entry.py", "--epochs"] and "--model_dir" in argv  # as the toolkit passes them
    trained = subprocess.run(argv, env={**env, **toolkit_env}, cwd=code_dir, capture_output=True, text=True,
                             timeout=900, check=False)
    assert trained.returncode == 0, trained.stderr[-3000:]  # `import scann` anywhere would have failed the job
    assert not (root / "output" / "failure").exists()
    # The packages come from the tarball (the script's folder is sys.path[0]), not from the dev venv's editable
    # install: their submodules are then looked up in the tarball only.
    origin = subprocess.run([argv[0], "-c", "import tastebud, tastebud_training; print(tastebud.__file__); "
                             "print(tastebud_training.__file__)"], env={**env, **toolkit_env}, cwd=code_dir,
                            capture_output=True, text=True, timeout=60, check=True)
    assert all(Path(line).is_relative_to(code_dir) for line in origin.stdout.split()), origin.stdout

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
    assert_the_cache_channel_holds_the_train_channels_text_vectors(root / "input" / "data")


def assert_the_cache_channel_holds_the_train_channels_text_vectors(channels: Path) -> None:
    """What the embeddings job wrote is what training looks up: every item text of the `train` channel is a cache
    hit in the `cache` channel (the sentence model is never loaded)."""
    from unittest import mock

    from tastebud_training import text_embedding
    from tastebud_training.data import load_dataset

    texts = text_embedding.item_texts(load_dataset(channels / "train").items)
    with mock.patch.object(text_embedding, "_model", side_effect=AssertionError("cache miss: model loaded")):
        vectors = text_embedding.embed_texts(texts, cache_dir=channels / "cache")
    assert vectors.shape == (len(texts), text_embedding.DIMENSION)


def test_a_failing_job_writes_opt_ml_output_failure(tmp_path: Path) -> None:
    result = run_module(["tastebud_training.sagemaker_entry"], {"TASTEBUD_SM_ROOT": str(tmp_path)})
    assert result.returncode == 1
    assert (tmp_path / "output" / "failure").read_text().startswith("FileNotFoundError")


@pytest.fixture(scope="module")
def sdk_jobs() -> dict[str, Any]:
    jobs, rendered = rendered_jobs()
    with tarfile.open(rendered / "sourcedir.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"sagemaker_entry.py", "requirements.txt", "tastebud_training/sagemaker_entry.py",
            "tastebud/features/two_tower.py"} <= names
    assert "setup.py" not in names  # else the toolkit runs `python -m sagemaker_entry` (PYTHON_PACKAGE), not the file
    return jobs


def test_the_sdk_renders_the_training_job_the_state_machine_runs(sdk_jobs: dict[str, Any]) -> None:
    training = sdk_jobs["training"]
    algorithm = training["AlgorithmSpecification"]
    assert algorithm["TrainingImage"].endswith(f"/tensorflow-training:{TF_VERSION}-cpu-py312")
    assert algorithm["MetricDefinitions"] == METRICS
    assert json.loads(training["HyperParameters"]["sagemaker_program"]) == "sagemaker_entry.py"
    assert [c["ChannelName"] for c in training["InputDataConfig"]] == ["train", "cache"]
    etl = sdk_jobs["etl"]
    assert etl["AppSpecification"]["ImageUri"].endswith("/sagemaker-spark-processing:3.5-cpu-py312")  # Python 3.12
    assert etl["AppSpecification"]["ContainerArguments"][:2] == ["--lake", "s3://tb-artifacts/lake/events/"]


def test_each_processing_request_carries_its_container_entrypoint(sdk_jobs: dict[str, Any]) -> None:
    """processing_config() ignores Processor(entrypoint=...): without ContainerEntrypoint the Spark image runs its
    ENTRYPOINT smspark-submit with `--lake ...` as the app, the TF image its default shell."""
    etl = sdk_jobs["etl"]
    code = processing_input(etl, "code")
    script = f"{code['LocalPath']}/{code['S3Uri'].rsplit('/', 1)[1]}"  # where the Processing job puts the script
    assert etl["AppSpecification"]["ContainerEntrypoint"] == ["smspark-submit", script]
    assert script.endswith("/spark_etl.py")
    embeddings = sdk_jobs["embeddings"]
    entrypoint = embeddings["AppSpecification"]["ContainerEntrypoint"]
    assert entrypoint[:2] == ["bash", "-c"] and len(entrypoint) == 3
    assert f"cd {processing_input(embeddings, 'code')['LocalPath']} && tar xzf sourcedir.tar.gz" in entrypoint[2]
    assert entrypoint[2].endswith("python -m tastebud_training.sagemaker_entry embed")


def test_the_jobs_hand_each_other_the_same_s3_locations(sdk_jobs: dict[str, Any]) -> None:
    etl_arguments = sdk_jobs["etl"]["AppSpecification"]["ContainerArguments"]
    tables = etl_arguments[etl_arguments.index("--out") + 1]
    embeddings = sdk_jobs["embeddings"]
    [cache_output] = embeddings["ProcessingOutputConfig"]["Outputs"]
    assert processing_input(embeddings, "tables")["S3Uri"] == tables
    assert processing_input(embeddings, "tables")["LocalPath"] == f"{OPT_ML}/processing/input/data"  # embed() reads
    assert cache_output["S3Output"]["LocalPath"] == f"{OPT_ML}/processing/output/cache"  # embed() writes
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in sdk_jobs["training"]["InputDataConfig"]}
    assert channels["train"]["S3Uri"] == tables and channels["train"]["S3DataType"] == "S3Prefix"
    # `cache`: only the files the embeddings job lists in its manifest (the prefix keeps every earlier night's).
    cache_prefix = cache_output["S3Output"]["S3Uri"].rstrip("/") + "/"
    assert channels["cache"] == {**channels["cache"], "S3DataType": "ManifestFile",
                                 "S3Uri": f"{cache_prefix}{sagemaker_entry.CACHE_MANIFEST}"}
    assert embeddings["Environment"]["TASTEBUD_CACHE_S3_URI"].rstrip("/") + "/" == cache_prefix


def test_the_embeddings_manifest_lists_this_runs_files_under_the_output_prefix(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    for name in ("minilm-a.npy", "images/efficientnet-b.npy"):
        (tmp_path / name).write_bytes(b"x")
    manifest = sagemaker_entry.write_cache_manifest(tmp_path, "s3://tb-artifacts/training/cache")
    assert json.loads(manifest.read_text()) == [{"prefix": "s3://tb-artifacts/training/cache/"},
                                                "images/efficientnet-b.npy", "minilm-a.npy"]


@pytest.mark.parametrize("quote", [False, True], ids=["joined-with-spaces", "shlex-quoted"])
def test_the_etl_arguments_survive_smspark_submits_shell(sdk_jobs: dict[str, Any], quote: bool,
                                                         tmp_path: Path) -> None:
    application = sdk_jobs["etl"]["AppSpecification"]
    entrypoint, arguments = application["ContainerEntrypoint"], application["ContainerArguments"]
    assert entrypoint[0] == "smspark-submit"
    command = smspark_submit_command([*entrypoint[1:], *arguments], quote=quote)
    received = run_in_shell(command, tmp_path / "bin")  # a real /bin/sh, a real spark-submit argv
    assert received[:4] == ["--master", "yarn", "--deploy-mode", "client"]
    assert app_arguments(received, entrypoint[1]) == arguments  # every argument arrives unchanged
    parsed = spark_etl.parse_arguments(app_arguments(received, entrypoint[1]))
    assert parsed.event_weights == EVENT_WEIGHTS and parsed.window_days == LAKE_WINDOW_DAYS


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
        queue(specs, {"pass": False, "error": "GateRejected", "reason": "recall@20 0.2100 < live 0.3000 - 0.01",
                      "model_artifacts": "s3://tb-artifacts/training/out/model.tar.gz"})  # the gate's answer
        run = training(aws, "sdk-gate")
        assert run["status"] == "FAILED" and run["error"] == "GateRejected", run
        assert run["states"].index("EtlJob") < run["states"].index("TrainingJob") < run["states"].index("Gate")
        sagemaker = boto3.client("sagemaker", region_name="eu-west-1")
        job = sagemaker.describe_training_job(TrainingJobName=specs["training"]["TrainingJobName"])
        assert job["AlgorithmSpecification"]["TrainingImage"] == \
            sdk_jobs["training"]["AlgorithmSpecification"]["TrainingImage"]
        assert job["HyperParameters"] == sdk_jobs["training"]["HyperParameters"]
