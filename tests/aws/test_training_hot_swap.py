"""The training machine and the index hot-swap machine together, EXECUTED by moto's ASL interpreter on the
REAL task functions (sfn_harness.in_process: control_tasks / index_tasks against moto S3 + SageMaker and the
OpenSearch wire double). Publish -> StartHotSwap starts a real nested execution (moto runs it in its own
thread), the training execution polls it with DescribeExecution, and LIVE.json is whatever that execution
left: the new version when it succeeded, the previous one when it rolled back.

The polling is deterministic in outcome: the training execution keeps polling (1 s apart, at most 60
times) until the nested execution has ended; only the number of polls depends on the machine's speed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_doubles import FakeOpenSearchDomain, opensearch_client
from moto import mock_aws
from sfn_harness import MOTO_CONFIG, described_run, execute, function, in_process, render, role

from tastebud.adapters.aws.live_pointer import read_live
from tastebud.lifecycle import control_tasks, index_tasks
from tastebud.lifecycle.control_tasks import ControlDeps
from tastebud.lifecycle.index_tasks import IndexDeps

from factories import model_tar, version_dir

BUCKET, PREFIX, ALIAS, REGION = "tastebud-artifacts", "tastebud", "items", "eu-west-1"
N, DIM = 30, 8
ROLE = "arn:aws:iam::123456789012:role/tastebud-training"
FAST_HOT_SWAP = {"poll_seconds": 0, "drain_seconds": 0, "index_poll_seconds": 0}
# moto's training job reports one canned metric (train:progress = 100) and Completed at once; the live
# version's evaluation.json has no such metric, so the real gate passes ("live version has no ...").
TRAINING_INPUT = {"poll_seconds": 0, "hot_swap_poll_seconds": 1, "hot_swap_max_polls": 60,
                  "metric": "train:progress", "hot_swap_overrides": FAST_HOT_SWAP}


def job_requests() -> dict[str, Any]:
    processing = {"RoleArn": ROLE, "AppSpecification": {"ImageUri": "123.dkr.ecr.eu-west-1.amazonaws.com/spark:1"},
                  "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                            "VolumeSizeInGB": 30}},
                  "ProcessingInputs": [], "StoppingCondition": {"MaxRuntimeInSeconds": 7200}}
    training = {"RoleArn": ROLE, "AlgorithmSpecification": {"TrainingImage": "763104351884.dkr.ecr.eu-west-1."
                                                                             "amazonaws.com/tensorflow-training:2.19",
                                                            "TrainingInputMode": "File"},
                "InputDataConfig": [], "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/training/out"},
                "ResourceConfig": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
                "StoppingCondition": {"MaxRuntimeInSeconds": 14400}, "HyperParameters": {"epochs": "1"}}
    return {"etl": processing, "embeddings": processing, "training": training}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(config=MOTO_CONFIG):  # type: ignore[arg-type]
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_object(Bucket=BUCKET, Key="training/jobs.json", Body=json.dumps(job_requests()).encode())
        domain = FakeOpenSearchDomain()
        index = IndexDeps(opensearch=opensearch_client(domain, timeout=5.0), s3=s3, bucket=BUCKET, prefix=PREFIX,
                          alias=ALIAS, cache=tmp_path / "cache")
        control = ControlDeps(s3=s3, sagemaker=boto3.client("sagemaker", region_name=REGION), bucket=BUCKET,
                              prefix=PREFIX, alias=ALIAS, endpoint_prefix="tb-user-tower",
                              user_tower_image="763104351884.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-inference:2.19",
                              user_tower_role_arn=ROLE, chunk_size=20, instance_type="ml.c5.large",
                              stepfunctions=boto3.client("stepfunctions", region_name=REGION))
        role_arn = role()
        functions = {"IndexTaskFunctionArn": function("index-tasks", role_arn),
                     "ControlTaskFunctionArn": function("control-tasks", role_arn)}
        sfn = boto3.client("stepfunctions", region_name=REGION)
        hot_swap = sfn.create_state_machine(name="tastebud-index-hot-swap", roleArn=role_arn,
                                            definition=render("index_hot_swap", functions))["stateMachineArn"]
        handlers = {"index-tasks": lambda event: index_tasks.handle(event, index),
                    "control-tasks": lambda event: control_tasks.handle(event, control)}
        with in_process(handlers) as calls:
            yield {"s3": s3, "sfn": sfn, "domain": domain, "control": control, "role": role_arn,
                   "functions": functions, "hot_swap": hot_swap, "calls": calls, "tmp": tmp_path}


def make_v1_live(world: dict[str, Any]) -> None:
    world["control"].store.publish(version_dir(world["tmp"] / "src", "v1", seed=1), "v1")
    run = execute(render("index_hot_swap", world["functions"]), world["role"], {"version": "v1", **FAST_HOT_SWAP},
                  name="swap-v1", timeout=60)
    assert run["status"] == "SUCCEEDED", run
    assert read_live(world["s3"], BUCKET, PREFIX).version == "v1"  # type: ignore[union-attr]


def train(world: dict[str, Any], run_name: str, model: Path) -> dict[str, Any]:
    """One training execution whose (moto) training job 'produced' ``model`` as its model.tar.gz."""
    key = f"training/out/tastebud-training-{run_name}/output/model.tar.gz"  # where moto's job reports it
    world["s3"].put_object(Bucket=BUCKET, Key=key, Body=model_tar(model))
    definition = render("training", {"ControlTaskFunctionArn": world["functions"]["ControlTaskFunctionArn"],
                                     "IndexHotSwapStateMachineArn": world["hot_swap"],
                                     "TrainingS3Uri": f"s3://{BUCKET}/training", "TrainingJobRoleArn": ROLE})
    return execute(definition, world["role"], TRAINING_INPUT, name=run_name, timeout=120)


def nested(world: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    arns = [json.loads(e["taskSucceededEventDetails"]["output"])["Payload"]["execution_arn"]
            for e in run["events"] if "taskSucceededEventDetails" in e
            and "execution_arn" in json.loads(e["taskSucceededEventDetails"]["output"]).get("Payload", {})]
    assert arns and len(set(arns)) == 1, arns  # one nested execution, started once, polled by its ARN
    return described_run(arns[0])


def test_training_publishes_and_its_hot_swap_makes_the_new_version_live(world: dict[str, Any]) -> None:
    make_v1_live(world)
    run = train(world, "nightly-ok", version_dir(world["tmp"] / "job", "v2", seed=2))
    assert run["status"] == "SUCCEEDED", run
    states = run["states"]
    assert states.index("Gate") < states.index("Publish") < states.index("StartHotSwap") < states.index(
        "DescribeHotSwap") < states.index("Summary"), states
    assert run["output"]["version"] == "v2" and run["output"]["gate"]["pass"] is True
    swap = nested(world, run)
    assert swap["status"] == "SUCCEEDED" and "Flip" in swap["states"], swap
    started = next(e["executionStartedEventDetails"] for e in swap["events"] if "executionStartedEventDetails" in e)
    assert json.loads(started["input"]) == {"version": "v2", "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": run["arn"],
                                            **FAST_HOT_SWAP}
    live = read_live(world["s3"], BUCKET, PREFIX)
    assert live is not None and (live.version, live.index, live.endpoint) == ("v2", "items-i-v2", "tb-user-tower-v2")
    assert live.previous is not None and live.previous["version"] == "v1"  # what a later rollback restores
    assert world["domain"].aliases[ALIAS] == {"items-i-v2"}
    assert world["control"].store.current_version() == "v2"


def test_a_failing_hot_swap_fails_the_training_and_leaves_the_live_version(world: dict[str, Any]) -> None:
    make_v1_live(world)
    # The trained artifacts are corrupt: 9-d index vectors for a manifest that says 8. Publishing accepts
    # them (it checks nothing), the bulk load is rejected by the index mapping, the hot swap rolls back.
    run = train(world, "nightly-bad", version_dir(world["tmp"] / "job", "v2", seed=2, vector_dim=DIM + 1))
    assert run["status"] == "FAILED" and run["error"] == "HotSwapFailed", run
    assert "LIVE.json and the alias stay on the previous version" in (run["cause"] or "")
    swap = nested(world, run)
    assert swap["status"] == "FAILED" and swap["error"] == "RolledBack", swap
    assert "Rollback" in swap["states"] and "Flip" not in swap["states"]
    live = read_live(world["s3"], BUCKET, PREFIX)
    assert live is not None and (live.version, live.index) == ("v1", "items-i-v1")  # the pointer is unchanged
    assert world["domain"].aliases[ALIAS] == {"items-i-v1"} and "items-i-v2" not in world["domain"].indices
    assert world["control"].store.current_version() == "v2"  # published, but no traffic reaches it
    assert ("control-tasks", "start_hot_swap") in world["calls"] and ("index-tasks", "rollback") in world["calls"]
