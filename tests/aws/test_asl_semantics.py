"""Both state machines EXECUTED by a second ASL interpreter with AWS's path and error semantics (npm's
aws-local-stepfunctions, see asl_local.py), on Task answers shaped from botocore's service models: InProgress
describes without their optional members, throttling, lost answers after a successful create, function errors.

Every path of both machines: success, gate rejection and a missing metric, failing jobs, a nested hot-swap failure
(and one that flipped but failed its cleanup, and one never confirmed), failing bulk load, failing endpoint, failed
verification, the force-merge polling loop (and its bound), the warm-up loop, rollback and cleanup failures.
moto's interpreter (test_state_machines, test_training_hot_swap) keeps running the REAL task handlers."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from asl_local import (
    execute,
    function_error,
    lambda_result,
    render,
    result,
    sdk_error,
)

REGION, ACCOUNT = "eu-west-1", "123456789012"
CONTROL = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:tastebud-control-tasks"
INDEX = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:tastebud-index-tasks"
HOT_SWAP = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:tastebud-index-hot-swap"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/tastebud-training"
RUN = "nightly-2026-12-06"


# ---------------------------------------------------------------- training machine
def training_definition() -> dict[str, Any]:
    return render("training", {"ControlTaskFunctionArn": CONTROL, "IndexHotSwapStateMachineArn": HOT_SWAP,
                               "TrainingS3Uri": "s3://tastebud-artifacts/training", "TrainingJobRoleArn": ROLE})


SPECS = {
    "etl": {"ProcessingJobName": f"tastebud-etl-{RUN}", "RoleArn": ROLE,
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.xlarge",
                                                      "VolumeSizeInGB": 30}},
            "AppSpecification": {"ImageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/spark:3.5"},
            "ProcessingInputs": [], "ProcessingOutputConfig": {"Outputs": []},
            "StoppingCondition": {"MaxRuntimeInSeconds": 7200}, "Environment": {}},
    "training": {"TrainingJobName": f"tastebud-training-{RUN}", "RoleArn": ROLE,
                 "AlgorithmSpecification": {"TrainingImage": "763104351884.dkr.ecr.eu-west-1.amazonaws.com/"
                                                             "tensorflow-training:2.19-cpu-py312",
                                            "TrainingInputMode": "File"},
                 "InputDataConfig": [], "OutputDataConfig": {"S3OutputPath": "s3://tastebud-artifacts/training/out"},
                 "ResourceConfig": {"InstanceType": "ml.c7i.4xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
                 "StoppingCondition": {"MaxRuntimeInSeconds": 14400}, "HyperParameters": {"epochs": "3"}},
}
SPECS["embeddings"] = {**SPECS["etl"], "ProcessingJobName": f"tastebud-embeddings-{RUN}"}
TRAINING_JOB = SPECS["training"]["TrainingJobName"]
ARTIFACTS = f"s3://tastebud-artifacts/training/out/{TRAINING_JOB}/output/model.tar.gz"
GATE_PASSES = {"pass": True, "error": "", "reason": "", "metric": "recall@20", "candidate": 0.31, "live": 0.30,
               "model_artifacts": ARTIFACTS, "training_job_name": TRAINING_JOB}
PUBLISHED = {"version": "v2", "model_version": "m2", "index_version": "i2"}
EXECUTION = HOT_SWAP.replace(":stateMachine:", ":execution:") + f":{RUN}-v2"


def processing(kind: str, status: str) -> dict[str, Any]:
    """DescribeProcessingJob as the aws-sdk integration returns it (required members + what that status has)."""
    name = SPECS[kind]["ProcessingJobName"]
    optional: dict[str, Any] = {"ProcessingEndTime": "2026-12-06T18:00:00Z"} if status != "InProgress" else {}
    if status == "Failed":
        optional["FailureReason"] = "AlgorithmError: see the job's logs"
    return result("sagemaker", "DescribeProcessingJob", ProcessingJobName=name, ProcessingJobStatus=status,
                  ProcessingJobArn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{name}", **optional)


def training_job(status: str, secondary: str, **optional: Any) -> dict[str, Any]:
    return result("sagemaker", "DescribeTrainingJob", TrainingJobName=TRAINING_JOB, TrainingJobStatus=status,
                  SecondaryStatus=secondary, **optional)


IN_PROGRESS = training_job("InProgress", "Training")  # no FinalMetricDataList, no TrainingEndTime, ...
COMPLETED = training_job("Completed", "Completed", TrainingEndTime="2026-12-06T19:00:00Z",
                         ModelArtifacts={"S3ModelArtifacts": ARTIFACTS},
                         FinalMetricDataList=[{"MetricName": "recall@20", "Value": 0.31,
                                               "Timestamp": "2026-12-06T19:00:00Z"}])


def created(kind: str) -> dict[str, Any]:
    if kind == "training":
        return result("sagemaker", "CreateTrainingJob",
                      TrainingJobArn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{TRAINING_JOB}")
    name = SPECS[kind]["ProcessingJobName"]
    return result("sagemaker", "CreateProcessingJob",
                  ProcessingJobArn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{name}")


def described(status: str, error: str = "", cause: str = "") -> dict[str, Any]:
    return lambda_result({"execution_arn": EXECUTION, "status": status, "error": error, "cause": cause})


def nightly(**replace: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The answers of a nightly run that goes live; ``replace`` swaps the answers of some states."""
    answers = {
        "JobSpecs": [lambda_result(SPECS)],
        "EtlJob": [created("etl")],
        "DescribeEtl": [processing("etl", "InProgress"), processing("etl", "Completed")],
        "EmbeddingsJob": [created("embeddings")],
        "DescribeEmbeddings": [processing("embeddings", "Completed")],
        "TrainingJob": [created("training")],
        "DescribeTraining": [IN_PROGRESS, IN_PROGRESS, COMPLETED],
        "Gate": [lambda_result(GATE_PASSES)],
        "Publish": [lambda_result(PUBLISHED)],
        "StartHotSwap": [lambda_result({"execution_arn": EXECUTION, "name": f"{RUN}-v2", "started": True})],
        "DescribeHotSwap": [described("RUNNING"), described("SUCCEEDED")],
    }
    answers.update(replace)
    return answers


def train(answers: dict[str, list[dict[str, Any]]], definition: dict[str, Any] | None = None,
          **execution_input: Any) -> dict[str, Any]:
    run = execute(definition or training_definition(), {"poll_seconds": 0, "hot_swap_poll_seconds": 0,
                                                        **execution_input}, answers, name=RUN,
                  machine="tastebud-training")
    assert not run["unused_answers"], run  # the run took the path the scenario scripted, all of it
    return run


def test_the_nightly_run_polls_an_in_progress_training_job_and_goes_live() -> None:
    throttled = sdk_error("SageMaker", "sagemaker", "DescribeTrainingJob", "ThrottlingException", "Rate exceeded")
    run = train(nightly(DescribeTraining=[IN_PROGRESS, throttled, IN_PROGRESS, COMPLETED]))
    assert run["status"] == "SUCCEEDED", run
    assert run["states"].count("DescribeTraining") == 3  # InProgress, (throttled + retried) InProgress, Completed
    assert {"type": "StateRetried", "state": "DescribeTraining", "error": None} in run["events"]
    assert run["output"] == {**PUBLISHED, "gate": {"pass": True, "error": "", "reason": "",
                                                   "model_artifacts": ARTIFACTS},
                             "hot_swap_execution_arn": EXECUTION}
    (gate,) = run["task_inputs"]["Gate"]
    assert gate["Payload"] == {"action": "gate", "metric": "recall@20", "margin": 0.01,
                               "training_job_name": TRAINING_JOB}  # the gate reads the optional members itself
    assert run["task_inputs"]["Publish"][0]["Payload"]["model_artifacts"] == ARTIFACTS


def test_the_old_describe_training_selector_is_a_states_runtime_error_on_the_first_in_progress_poll() -> None:
    """Issue 20 #4, as AWS would run the old definition: ``$.FinalMetricDataList`` is absent while the job runs,
    the path raises States.Runtime, and ``Catch: States.ALL`` does not catch it (PipelineFailed is never reached;
    the training job keeps running and billing). moto's interpreter never showed this."""
    definition = training_definition()
    definition["States"]["DescribeTraining"]["ResultSelector"] = {
        "status.$": "$.TrainingJobStatus", "final_metrics.$": "$.FinalMetricDataList",
        "model_artifacts.$": "$.ModelArtifacts.S3ModelArtifacts"}
    answers = nightly(DescribeTraining=[IN_PROGRESS])
    for later in ("Gate", "Publish", "StartHotSwap", "DescribeHotSwap"):
        del answers[later]
    run = train(answers, definition)
    assert run["status"] == "FAILED" and run["error"] == "States.Runtime", run
    assert "FinalMetricDataList" in run["cause"]
    assert run["states"][-1] == "DescribeTraining" and "PipelineFailed" not in run["states"]


def test_every_training_poll_selects_only_required_members_of_the_describe_output() -> None:
    """The audit behind #4: a poll loop's ResultSelector may read only members botocore's model marks required."""
    from asl_local import _model

    operations = {"arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob": "DescribeTrainingJob",
                  "arn:aws:states:::aws-sdk:sagemaker:describeProcessingJob": "DescribeProcessingJob"}
    checked = 0
    for name, state in training_definition()["States"].items():
        operation = operations.get(state.get("Resource", ""))
        if operation is None:
            continue
        required = set(_model("sagemaker").operation_model(operation).output_shape.required_members)
        for path in state["ResultSelector"].values():
            top = path.removeprefix("$.").split(".")[0]
            assert top in required, f"{name} selects {path}: optional in {operation}'s output"
            checked += 1
    assert checked == 3


def test_a_create_retried_after_a_lost_answer_finds_its_job_and_polls_it() -> None:
    """CreateProcessingJob succeeded, its answer was lost (a 500 to Step Functions), the retry meets ResourceInUse:
    Describe decides, and the job that exists is polled instead of failing the pipeline."""
    lost = sdk_error("SageMaker", "sagemaker", "CreateProcessingJob", "InternalFailure", "We encountered an error")
    in_use = sdk_error("SageMaker", "sagemaker", "CreateProcessingJob", "ResourceInUse",
                       f"Processing job names must be unique ... {SPECS['etl']['ProcessingJobName']} already exists")
    lost = {**lost, "error": "SageMaker.AmazonSageMakerException"}  # the optimized integration's generic name
    run = train(nightly(EtlJob=[lost, in_use]))
    assert run["status"] == "SUCCEEDED", run
    assert run["states"][run["states"].index("EtlJob") + 1] == "DescribeEtl"
    assert {"type": "StateCaught", "state": "EtlJob", "error": None} in run["events"]


def test_a_create_that_really_failed_fails_the_pipeline_after_describe_finds_no_job() -> None:
    quota = sdk_error("SageMaker", "sagemaker", "CreateTrainingJob", "ResourceLimitExceeded",
                      "The account-level service limit 'ml.c7i.4xlarge for training job usage' is 0 Instances")
    missing = sdk_error("SageMaker", "sagemaker", "DescribeTrainingJob", "ResourceNotFound",
                        "Requested resource not found")
    answers = nightly(TrainingJob=[quota], DescribeTraining=[missing])
    for later in ("Gate", "Publish", "StartHotSwap", "DescribeHotSwap"):
        del answers[later]
    run = train(answers)
    assert run["status"] == "FAILED" and run["error"] == "PipelineFailed", run
    assert run["states"][-3:] == ["TrainingJob", "DescribeTraining", "PipelineFailed"]


@pytest.mark.parametrize("state", ["DescribeEtl", "DescribeEmbeddings", "DescribeTraining"])
def test_a_failed_job_fails_the_pipeline(state: str) -> None:
    failed = {"DescribeEtl": processing("etl", "Failed"), "DescribeEmbeddings": processing("embeddings", "Failed"),
              "DescribeTraining": training_job("Failed", "Failed", FailureReason="AlgorithmError: exit 1")}[state]
    answers = nightly(**{state: [failed]})
    order = list(answers)
    for later in order[order.index(state) + 1:]:
        del answers[later]
    run = train(answers)
    assert run["status"] == "FAILED" and run["error"] == "PipelineFailed", run
    assert run["states"][-2:] == [state.replace("Describe", "") + "Done", "PipelineFailed"]


def test_gate_rejection_publishes_nothing_and_says_why() -> None:
    reason = "recall@20 0.2100 < live 0.3000 - 0.01"
    answers = nightly(Gate=[lambda_result({**GATE_PASSES, "pass": False, "error": "GateRejected", "reason": reason})])
    for later in ("Publish", "StartHotSwap", "DescribeHotSwap"):
        del answers[later]
    run = train(answers)
    assert run["status"] == "FAILED" and run["error"] == "GateRejected" and run["cause"] == reason, run


def test_a_job_without_the_metric_fails_the_gate_clearly() -> None:
    """The Completed job's FinalMetricDataList is absent (its regexes matched nothing): MetricMissing, not a pass."""
    reason = f"training job {TRAINING_JOB} reported no recall@20 (no metric at all (FinalMetricDataList absent))"
    no_metric = training_job("Completed", "Completed", ModelArtifacts={"S3ModelArtifacts": ARTIFACTS})
    answers = nightly(DescribeTraining=[no_metric], Gate=[lambda_result(
        {**GATE_PASSES, "pass": False, "error": "MetricMissing", "reason": reason, "candidate": None})])
    for later in ("Publish", "StartHotSwap", "DescribeHotSwap"):
        del answers[later]
    run = train(answers)
    assert run["status"] == "FAILED" and run["error"] == "MetricMissing" and run["cause"] == reason, run


def test_a_throttled_lambda_is_retried_and_a_function_error_fails_the_pipeline() -> None:
    throttled = sdk_error("Lambda", "lambda", "Invoke", "TooManyRequestsException", "Rate Exceeded.")
    lost = sdk_error("Lambda", "lambda", "Invoke", "ClientExecutionTimeoutException")
    run = train(nightly(Gate=[throttled, lost, lambda_result(GATE_PASSES)]))
    assert run["status"] == "SUCCEEDED", run
    assert [e for e in run["events"] if e["state"] == "Gate" and e["type"] == "StateRetried"] == [
        {"type": "StateRetried", "state": "Gate", "error": None}] * 2
    answers = nightly(Publish=[function_error("ArtifactMismatchError", "model.tar.gz holds no manifest.json")])
    for later in ("StartHotSwap", "DescribeHotSwap"):
        del answers[later]
    failed = train(answers)
    assert failed["status"] == "FAILED" and failed["error"] == "PipelineFailed", failed


@pytest.mark.parametrize(("ended", "error", "expected"), [
    ("FAILED", "RolledBack", "HotSwapFailed"), ("TIMED_OUT", "", "HotSwapFailed"), ("ABORTED", "", "HotSwapFailed"),
    ("FAILED", "CleanupFailed", "HotSwapCleanupFailed")])
def test_a_nested_hot_swap_failure_fails_the_training_execution(ended: str, error: str, expected: str) -> None:
    cause = "A step failed or a check rejected the version; LIVE.json and the alias stay on the previous version."
    run = train(nightly(DescribeHotSwap=[described("RUNNING"), described(ended, error, cause)]))
    assert run["status"] == "FAILED" and run["error"] == expected and run["cause"] == cause, run


def test_watching_the_hot_swap_is_bounded_and_a_failing_describe_is_unconfirmed() -> None:
    run = train(nightly(DescribeHotSwap=[described("RUNNING")] * 3), hot_swap_max_polls=2)
    assert run["status"] == "FAILED" and run["error"] == "HotSwapUnconfirmed", run
    broken = function_error("ClientError", "AccessDeniedException: states:DescribeExecution")
    run = train(nightly(DescribeHotSwap=[broken]))
    assert run["status"] == "FAILED" and run["error"] == "HotSwapUnconfirmed", run


# ---------------------------------------------------------------- index hot-swap machine
LIVE_V1 = {"version": "v1", "model_version": "m1", "index_version": "i1", "index": "items-i1",
           "endpoint": "tb-user-tower-v1", "previous": None}
PREP = {"version": "v2", "model_version": "m2", "index_version": "i2", "dimension": 128, "items": 30000,
        "index": "items-i2", "endpoint": "tb-user-tower-v2",
        "chunks": [{"start": 0, "end": 20000}, {"start": 20000, "end": 30000}], "live": LIVE_V1,
        "already_live": False}
TASK = "oTUltX4IQMOUUVeiohTt8A:1000"
VERIFIED = {"ok": True, "count": 30000, "expected": 30000, "recall": 0.97, "k": 200, "reason": ""}
ROLLED_BACK = {"rolled_back": True, "actions": ["alias back on items-i1", "deleted items-i2"]}


def merge(done: bool, task: str = TASK) -> dict[str, Any]:
    return lambda_result({"index": "items-i2", "task": task, "done": done, "restarted": False})


def chunk(start: int, end: int, failed: int = 0) -> dict[str, Any]:
    return lambda_result({"start": start, "end": end, "loaded": end - start - failed, "failed": failed},
                         match={"Payload": {"start": start}})


def endpoint(status: str, reason: str = "") -> dict[str, Any]:
    return lambda_result({"endpoint": "tb-user-tower-v2", "status": status, "failure_reason": reason})


def swap_answers(**replace: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    answers = {
        "Prepare": [lambda_result(PREP)],
        "CreateIndex": [lambda_result({"index": "items-i2", "created": True})],
        "LoadChunk": [chunk(0, 20000), chunk(20000, 30000)],
        "StartMerge": [lambda_result({"index": "items-i2", "task": TASK})],
        "DescribeMerge": [merge(False), merge(False), merge(True)],
        "Settle": [lambda_result({"index": "items-i2"})],
        "WarmUp": [lambda_result({"index": "items-i2", "warm": False, "warmed_shards": 0}),
                   lambda_result({"index": "items-i2", "warm": True, "warmed_shards": 2})],
        "Verify": [lambda_result(VERIFIED)],
        "DeployEndpoint": [lambda_result({"endpoint": "tb-user-tower-v2", "model_data": "s3://b/m.tar.gz"})],
        "DescribeEndpoint": [endpoint("Creating"), endpoint("InService")],
        "Flip": [lambda_result({**LIVE_V1, "version": "v2", "index": "items-i2", "previous": LIVE_V1})],
        "CleanupEndpoints": [lambda_result({"deleted": ["tb-user-tower-v1"]})],
        "CleanupIndices": [lambda_result({"deleted": [], "kept": ["items-i1", "items-i2"]})],
    }
    answers.update(replace)
    return answers


ROLLBACK = {"Rollback": [lambda_result(ROLLED_BACK)], "RollbackEndpoint": [lambda_result({"deleted": None})]}


def until(answers: dict[str, list[dict[str, Any]]], last: str, **extra: list[dict[str, Any]]) -> dict[str, Any]:
    """The answers up to and including ``last``, then ``extra`` (e.g. the rollback's)."""
    order = list(answers)
    return {**{k: answers[k] for k in order[:order.index(last) + 1]}, **extra}


def swap(answers: dict[str, list[dict[str, Any]]], **execution_input: Any) -> dict[str, Any]:
    definition = render("index_hot_swap", {"IndexTaskFunctionArn": INDEX, "ControlTaskFunctionArn": CONTROL})
    run = execute(definition, {"version": "v2", "poll_seconds": 0, "drain_seconds": 0, "index_poll_seconds": 0,
                               **execution_input}, copy.deepcopy(answers), name=f"{RUN}-v2",
                  machine="tastebud-index-hot-swap")
    assert not run["unused_answers"], run
    return run


def test_the_hot_swap_merges_in_the_background_polls_warms_up_verifies_and_flips() -> None:
    lost = sdk_error("Lambda", "lambda", "Invoke", "ClientExecutionTimeoutException")
    answers = swap_answers(StartMerge=[lost, lambda_result({"index": "items-i2", "task": TASK})])
    run = swap(answers)
    assert run["status"] == "SUCCEEDED", run
    states = run["states"]
    assert states.count("DescribeMerge") == 3 and states.count("CountMergePoll") == 2
    assert states.count("WarmUp") == 2 and states.count("DescribeEndpoint") == 2 and states.count("LoadChunk") == 2
    assert states.index("StartMerge") < states.index("Settle") < states.index("WarmUp") < states.index(
        "Verify") < states.index("Flip") < states.index("CleanupIndices")
    assert "Rollback" not in states
    polled = [call["Payload"] for call in run["task_inputs"]["DescribeMerge"]]
    assert polled == [{"action": "merge_status", "index": "items-i2", "task": TASK}] * 3
    assert len(run["task_inputs"]["StartMerge"]) == 2  # retried after the lost answer (the task is idempotent)


def test_a_merge_that_outlasts_the_bound_does_not_delete_the_loaded_index() -> None:
    run = swap(swap_answers(DescribeMerge=[merge(False)] * 3), max_index_polls=2)
    assert run["status"] == "SUCCEEDED", run
    assert run["states"].count("DescribeMerge") == 3 and "Rollback" not in run["states"]


def test_a_failed_merge_rolls_back() -> None:
    failed = function_error("DependencyError", "force merge of items-i2 (task ...) failed: illegal_state_exception")
    run = swap(until(swap_answers(DescribeMerge=[merge(False), failed]), "DescribeMerge", **ROLLBACK))
    assert run["status"] == "FAILED" and run["error"] == "RolledBack", run
    assert run["states"][-3:] == ["Rollback", "RollbackEndpoint", "RolledBack"]


def test_a_rerun_for_the_live_version_changes_nothing() -> None:
    run = swap({"Prepare": [lambda_result({**PREP, "already_live": True})]})
    assert run["status"] == "SUCCEEDED" and run["states"] == ["Configure", "Prepare", "AlreadyLive", "NothingToDo"]


def test_a_bad_version_fails_before_changing_anything() -> None:
    run = swap({"Prepare": [function_error("ArtifactMismatchError", "version 'v9': no readable manifest.json")]})
    assert run["status"] == "FAILED" and run["error"] == "PrepareFailed", run


def test_a_failing_bulk_load_rolls_back_before_any_flip() -> None:
    answers = swap_answers(LoadChunk=[chunk(0, 20000), chunk(20000, 30000, failed=3)])
    run = swap(until(answers, "LoadChunk", **ROLLBACK))
    assert run["status"] == "FAILED" and run["error"] == "RolledBack", run
    assert "StartMerge" not in run["states"] and "Flip" not in run["states"]


def test_a_failing_endpoint_rolls_back() -> None:
    reason = "The primary container for production variant AllTraffic did not pass the ping health check."
    answers = swap_answers(DescribeEndpoint=[endpoint("Creating"), endpoint("Failed", reason)])
    run = swap(until(answers, "DescribeEndpoint", **ROLLBACK))
    assert run["status"] == "FAILED" and run["error"] == "RolledBack", run
    assert "EndpointFailed" in run["states"] and "Flip" not in run["states"]
    assert run["task_inputs"]["Rollback"][0]["Payload"] == {"action": "rollback", "index": "items-i2",
                                                            "live": LIVE_V1}


def test_an_endpoint_that_never_gets_in_service_is_rolled_back_after_the_bound() -> None:
    answers = swap_answers(DescribeEndpoint=[endpoint("Creating")] * 3)
    run = swap(until(answers, "DescribeEndpoint", **ROLLBACK), max_endpoint_polls=2)
    assert run["status"] == "FAILED" and run["error"] == "RolledBack", run
    assert run["states"].count("DescribeEndpoint") == 3 and "EndpointTimedOut" in run["states"]
    assert run["task_inputs"]["Rollback"][0]["Payload"]["index"] == "items-i2"


def test_a_failed_verification_rolls_back() -> None:
    rejected = {**VERIFIED, "ok": False, "recall": 0.41, "reason": "recall@200 0.410 < 0.9"}
    run = swap(until(swap_answers(Verify=[lambda_result(rejected)]), "Verify", **ROLLBACK))
    assert run["status"] == "FAILED" and run["error"] == "RolledBack", run
    assert "VerifyRejected" in run["states"] and "DeployEndpoint" not in run["states"]


def test_a_failing_rollback_and_a_failing_cleanup_say_so() -> None:
    rejected = {**VERIFIED, "ok": False, "reason": "29990 documents for 30000 items"}
    run = swap(until(swap_answers(Verify=[lambda_result(rejected)]), "Verify",
                     Rollback=[function_error("DependencyError", "swapping alias items: HTTP 503")]))
    assert run["status"] == "FAILED" and run["error"] == "RollbackFailed", run
    answers = swap_answers(CleanupIndices=[function_error("DependencyError", "deleting items-i0: HTTP 403")])
    run = swap(answers)
    assert run["status"] == "FAILED" and run["error"] == "CleanupFailed" and "Flip" in run["states"], run


def test_every_lambda_task_retries_lost_answers_and_throttling() -> None:
    """Step Functions' Lambda integration errors (developer guide, "Handle Lambda service exceptions"): the
    invocation may have run when ClientExecutionTimeoutException comes back, so the tasks are idempotent."""
    expected = {"Lambda.ClientExecutionTimeoutException", "Lambda.ServiceException", "Lambda.AWSLambdaException",
                "Lambda.SdkClientException", "Lambda.TooManyRequestsException"}
    for definition in (training_definition(), render("index_hot_swap", {"IndexTaskFunctionArn": INDEX,
                                                                        "ControlTaskFunctionArn": CONTROL})):
        states = dict(definition["States"])
        states.update(definition["States"]["BulkLoad"]["ItemProcessor"]["States"] if "BulkLoad" in states else {})
        for name, state in states.items():
            if state.get("Resource") == "arn:aws:states:::lambda:invoke":
                retried = {error for retrier in state["Retry"] for error in retrier["ErrorEquals"]}
                assert expected <= retried, (name, sorted(expected - retried))


def test_the_answers_are_shaped_from_the_service_models() -> None:
    """The helper refuses what the API cannot answer (the scenarios above cannot drift from botocore's model)."""
    from asl_local import sdk_response

    with pytest.raises(ValueError, match="not one of botocore's"):
        sdk_response("sagemaker", "DescribeTrainingJob", TrainingJobStatus="Running")
    with pytest.raises(KeyError, match="not members"):
        sdk_response("sagemaker", "DescribeTrainingJob", final_metrics=[])
    with pytest.raises(ValueError, match="not an error of"):
        sdk_error("SageMaker", "sagemaker", "DescribeTrainingJob", "ResourceInUse")
    in_progress = sdk_response("sagemaker", "DescribeTrainingJob", TrainingJobStatus="InProgress")
    assert "FinalMetricDataList" not in in_progress and "TrainingEndTime" not in in_progress
    assert {"TrainingJobName", "TrainingJobArn", "TrainingJobStatus", "SecondaryStatus", "CreationTime"} <= set(
        in_progress)
    assert json.loads(json.dumps(in_progress)) == in_progress
