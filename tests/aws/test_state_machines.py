"""The state machines, EXECUTED by moto's ASL interpreter (see sfn_harness): success, gate rejection, failing
bulk load, failing endpoint, and the training machine's hot-swap polling loop. Task Lambdas answer from a queue;
their logic is tested in test_lifecycle_tasks, and test_training_hot_swap runs both machines on the real tasks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from sfn_harness import MOTO_CONFIG, execute, function, queue, render, role

LIVE_V1 = {"version": "v1", "model_version": "m1", "index_version": "i1", "index": "items-i1",
           "endpoint": "tb-user-tower-v1", "previous": None}
PREP_V2 = {"version": "v2", "model_version": "m2", "index_version": "i2", "dimension": 8, "items": 30,
           "index": "items-i2", "endpoint": "tb-user-tower-v2", "chunks": [{"start": 0, "end": 20},
                                                                         {"start": 20, "end": 30}],
           "live": LIVE_V1, "already_live": False}
FAST = {"version": "v2", "poll_seconds": 0, "drain_seconds": 0, "index_poll_seconds": 0}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws(config=MOTO_CONFIG):  # type: ignore[arg-type]
        role_arn = role()
        functions = {"IndexTaskFunctionArn": function("index-tasks", role_arn),
                     "ControlTaskFunctionArn": function("control-tasks", role_arn)}
        yield {"role": role_arn, "functions": functions}


def hot_swap(aws: dict[str, Any], name: str, **overrides: Any) -> dict[str, Any]:
    return execute(render("index_hot_swap", aws["functions"]), aws["role"], {**FAST, **overrides}, name=name)


def chunk(start: int, end: int, failed: int = 0) -> dict[str, Any]:
    return {"start": start, "end": end, "loaded": end - start - failed, "failed": failed}


MERGE_TASK = "oTUltX4IQMOUUVeiohTt8A:1000"
# start_merge -> merge_status (running, then done) -> settle -> warm_up (still loading, then warm)
MERGED_AND_WARM = ({"index": "items-i2", "task": MERGE_TASK},
                   {"index": "items-i2", "task": MERGE_TASK, "done": False, "restarted": False},
                   {"index": "items-i2", "task": MERGE_TASK, "done": True, "restarted": False},
                   {"index": "items-i2"}, {"index": "items-i2", "warm": False, "warmed_shards": 0},
                   {"index": "items-i2", "warm": True, "warmed_shards": 2})
VERIFIED = {"ok": True, "count": 30, "expected": 30, "recall": 1.0, "k": 30, "reason": ""}
ROLLBACK = {"rolled_back": True, "actions": ["deleted items-i2"]}


def test_hot_swap_success_path(aws: dict[str, Any]) -> None:
    queue(PREP_V2, {"index": "items-i2", "created": True}, chunk(0, 20), chunk(20, 30),
          *MERGED_AND_WARM, VERIFIED, {"endpoint": "tb-user-tower-v2"},
          {"status": "Creating", "failure_reason": ""}, {"status": "InService", "failure_reason": ""},
          {**LIVE_V1, "version": "v2"}, {"deleted": ["tb-user-tower-v1"]}, {"deleted": []})
    run = hot_swap(aws, "success")
    assert run["status"] == "SUCCEEDED", run
    states = run["states"]
    assert states.count("DescribeEndpoint") == 2 and states.count("LoadChunk") == 2  # the Wait loop ran twice
    assert states.count("DescribeMerge") == 2 and states.count("WarmUp") == 2  # merge and warm-up polled
    assert states.index("Verify") < states.index("DeployEndpoint") < states.index("Flip") < states.index(
        "CleanupIndices")
    assert "Rollback" not in states


def test_a_rerun_for_the_live_version_changes_nothing(aws: dict[str, Any]) -> None:
    queue({**PREP_V2, "already_live": True})
    run = hot_swap(aws, "rerun")
    assert run["status"] == "SUCCEEDED" and run["states"] == ["Configure", "Prepare", "AlreadyLive", "NothingToDo"]


def test_a_failing_bulk_load_rolls_back_before_any_flip(aws: dict[str, Any]) -> None:
    queue(PREP_V2, {"index": "items-i2", "created": True}, chunk(0, 20), chunk(20, 30, failed=3),
          ROLLBACK, {"deleted": "tb-user-tower-v2"})
    run = hot_swap(aws, "bulk-fails")
    assert run["status"] == "FAILED" and run["error"] == "RolledBack", run
    assert "Flip" not in run["states"] and "DeployEndpoint" not in run["states"]
    assert run["states"][-3:] == ["Rollback", "RollbackEndpoint", "RolledBack"]


def test_a_failing_endpoint_rolls_back(aws: dict[str, Any]) -> None:
    queue(PREP_V2, {"index": "items-i2", "created": True}, chunk(0, 20), chunk(20, 30),
          *MERGED_AND_WARM, VERIFIED, {"endpoint": "tb-user-tower-v2"},
          {"status": "Creating", "failure_reason": ""},
          {"status": "Failed", "failure_reason": "The primary container for production variant AllTraffic did not "
                                                 "pass the ping health check."},
          ROLLBACK, {"deleted": "tb-user-tower-v2"})
    run = hot_swap(aws, "endpoint-fails")
    assert run["status"] == "FAILED" and run["error"] == "RolledBack", run
    assert "EndpointFailed" in run["states"] and "Flip" not in run["states"]


def test_a_verification_rejection_rolls_back(aws: dict[str, Any]) -> None:
    queue(PREP_V2, {"index": "items-i2", "created": True}, chunk(0, 20), chunk(20, 30),
          *MERGED_AND_WARM,
          {**VERIFIED, "ok": False, "recall": 0.41, "reason": "recall@30 0.410 < 0.9"}, ROLLBACK,
          {"deleted": "tb-user-tower-v2"})
    run = hot_swap(aws, "verify-rejects")
    assert run["status"] == "FAILED" and run["error"] == "RolledBack"
    assert "VerifyRejected" in run["states"] and "DeployEndpoint" not in run["states"]


# ---------------------------------------------------------------- training machine
ROLE = "arn:aws:iam::123456789012:role/tastebud-training"
SPECS = {
    "etl": {"ProcessingJobName": "tastebud-etl-run1", "RoleArn": ROLE,
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.xlarge",
                                                      "VolumeSizeInGB": 30}},
            "AppSpecification": {"ImageUri": "123.dkr.ecr.eu-west-1.amazonaws.com/spark:latest"},
            "ProcessingInputs": [], "ProcessingOutputConfig": {"Outputs": []},
            "StoppingCondition": {"MaxRuntimeInSeconds": 7200}, "Environment": {}},
    "training": {"TrainingJobName": "tastebud-training-run1", "RoleArn": ROLE,
                 "AlgorithmSpecification": {"TrainingImage": "763104351884.dkr.ecr.eu-west-1.amazonaws.com/"
                                                             "tensorflow-training:2.19-cpu-py312",
                                            "TrainingInputMode": "File"},
                 "InputDataConfig": [], "OutputDataConfig": {"S3OutputPath": "s3://b/training/out"},
                 "ResourceConfig": {"InstanceType": "ml.c7i.4xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
                 "StoppingCondition": {"MaxRuntimeInSeconds": 14400}, "HyperParameters": {"epochs": "3"}},
}
SPECS["embeddings"] = {**SPECS["etl"], "ProcessingJobName": "tastebud-embeddings-run1"}


HOT_SWAP = "arn:aws:states:eu-west-1:123456789012:stateMachine:tastebud-index-hot-swap"
FAST_TRAINING = {"poll_seconds": 0, "hot_swap_poll_seconds": 0}
ARTIFACTS = "s3://b/training/out/tastebud-training-run1/output/model.tar.gz"
GATE_PASSES = {"pass": True, "error": "", "reason": "", "metric": "recall@20", "candidate": 0.31, "live": 0.30,
               "model_artifacts": ARTIFACTS, "training_job_name": "tastebud-training-run1"}
PUBLISHED_V2 = {"version": "v2", "model_version": "m2", "index_version": "i2"}
STARTED = {"execution_arn": HOT_SWAP.replace(":stateMachine:", ":execution:") + ":train-v2", "name": "train-v2",
           "started": True}


def status(value: str, error: str = "", cause: str = "") -> dict[str, Any]:
    return {"execution_arn": STARTED["execution_arn"], "status": value, "error": error, "cause": cause}


def training(aws: dict[str, Any], name: str, **overrides: Any) -> dict[str, Any]:
    definition = render("training", {"ControlTaskFunctionArn": aws["functions"]["ControlTaskFunctionArn"],
                                     "IndexHotSwapStateMachineArn": HOT_SWAP, "TrainingS3Uri": "s3://b/training",
                                     "TrainingJobRoleArn": ROLE})
    return execute(definition, aws["role"], {**FAST_TRAINING, **overrides}, name=name)


def start_payload(run: dict[str, Any]) -> dict[str, Any]:
    scheduled = [e["taskScheduledEventDetails"] for e in run["events"] if "taskScheduledEventDetails" in e]
    payloads = [json.loads(s["parameters"]).get("Payload") or {} for s in scheduled]
    return next(p for p in payloads if p.get("action") == "start_hot_swap")


def test_training_success_path_publishes_and_polls_the_hot_swap(aws: dict[str, Any]) -> None:
    queue(SPECS, GATE_PASSES, PUBLISHED_V2, STARTED, status("RUNNING"), status("RUNNING"), status("SUCCEEDED"))
    run = training(aws, "train-ok", hot_swap_overrides={"drain_seconds": 30})
    assert run["status"] == "SUCCEEDED", run
    states = run["states"]
    assert states.index("EtlJob") < states.index("EmbeddingsJob") < states.index("TrainingJob") < states.index(
        "Gate") < states.index("Publish") < states.index("StartHotSwap") < states.index("DescribeHotSwap"), run
    assert states.count("DescribeTraining") == 1  # moto's SageMaker backend reports Completed at once
    assert states.count("DescribeHotSwap") == 3 and states.count("CountHotSwapPoll") == 2
    assert states[-2:] == ["Summary", "Done"]
    assert run["output"] == {**PUBLISHED_V2, "gate": {"pass": True, "error": "", "reason": "",
                                                      "model_artifacts": ARTIFACTS},
                             "hot_swap_execution_arn": STARTED["execution_arn"]}
    sent = start_payload(run)
    assert sent["state_machine_arn"] == HOT_SWAP and sent["version"] == "v2" and sent["run"] == "train-ok"
    assert sent["overrides"] == {"drain_seconds": 30} and sent["parent_execution_id"].endswith(":train-ok")


@pytest.mark.parametrize("ended", ["FAILED", "TIMED_OUT", "ABORTED"])
def test_a_failed_hot_swap_fails_the_training_execution(aws: dict[str, Any], ended: str) -> None:
    cause = "A step failed or a check rejected the version; LIVE.json and the alias stay on the previous version."
    queue(SPECS, GATE_PASSES, PUBLISHED_V2, STARTED, status("RUNNING"), status(ended, "RolledBack", cause))
    run = training(aws, f"train-{ended.lower().replace('_', '-')}")
    assert run["status"] == "FAILED" and run["error"] == "HotSwapFailed" and run["cause"] == cause, run
    assert run["states"][-2:] == ["HotSwapDone", "HotSwapFailed"]


def test_a_hot_swap_that_flipped_but_failed_cleanup_is_reported_as_such(aws: dict[str, Any]) -> None:
    queue(SPECS, GATE_PASSES, PUBLISHED_V2, STARTED, status("FAILED", "CleanupFailed", "old index left"))
    run = training(aws, "train-cleanup")
    assert run["status"] == "FAILED" and run["error"] == "HotSwapCleanupFailed", run


def test_polling_the_hot_swap_is_bounded(aws: dict[str, Any]) -> None:
    queue(SPECS, GATE_PASSES, PUBLISHED_V2, STARTED, *[status("RUNNING")] * 3)
    run = training(aws, "train-bounded", hot_swap_max_polls=2)
    assert run["status"] == "FAILED" and run["error"] == "HotSwapUnconfirmed", run
    assert run["states"].count("DescribeHotSwap") == 3  # polls 0, 1, 2: the third answer reaches the bound


def test_training_gate_rejection_publishes_nothing(aws: dict[str, Any]) -> None:
    reason = "recall@20 0.2100 < live 0.3000 - 0.01"
    queue(SPECS, {**GATE_PASSES, "pass": False, "error": "GateRejected", "reason": reason})
    run = training(aws, "train-gate")
    assert run["status"] == "FAILED" and run["error"] == "GateRejected" and run["cause"] == reason, run
    assert "Publish" not in run["states"] and "StartHotSwap" not in run["states"]
