"""Lifecycle tasks outside the VPC (``ControlTaskFunction``): S3 artifacts, the SageMaker control plane
and the evaluation gate. Dispatched on ``event["action"]`` like ``index_tasks``:

  prepare            what a hot swap of ``version`` (default: CURRENT) needs: names, dimension, Map chunks,
                     and the live pointer to roll back to; ``already_live`` makes a re-run a no-op
  deploy_endpoint    Model + EndpointConfig + Endpoint ``<prefix>-<version>`` for the version's user tower
                     (model.tar.gz in the TF Serving layout under versions/<v>/user_tower/); idempotent
  describe_endpoint  EndpointStatus (the ASL loops create -> Wait -> Describe -> Choice until InService)
  delete_endpoint    rollback of a new endpoint that never went live (never the live one)
  cleanup_endpoints  endpoints of this stack's prefix other than the live one (after the drain wait)
  gate               describes the COMPLETED training job itself (DescribeTrainingJob): its metric from
                     FinalMetricDataList vs the live version's evaluation.json; passes when candidate >= live -
                     margin (or nothing is live yet). FinalMetricDataList is optional in the API (absent when the
                     job's metric regexes matched nothing): no metric fails the gate (error MetricMissing),
                     never passes it. Returns the job's model artifacts for publish.
  publish            stream the training job's model.tar.gz from S3 into versions/<v>/ (manifest, then
                     CURRENT, written last; nothing on the Lambda's disk); publishing never changes traffic
                     (only LIVE.json does)
  start_hot_swap     StartExecution of the index hot-swap machine for a published version (input: the
                     run's ``hot_swap_overrides``, e.g. ``min_recall``, plus the version), named after the
                     training run and the version (a retried task gets the execution it already started)
  describe_execution status/error/cause of that execution (the training ASL polls Wait -> Describe -> Choice)

The training machine starts and polls the hot swap through this function rather than with the
``states:startExecution`` / ``aws-sdk:sfn:*`` integrations: moto 5.2.5's port of the ASL interpreter hands
those integrations' PascalCase parameters (``StateMachineArn``) to botocore unconverted (its
``_normalise_parameters`` is a no-op, LocalStack's maps them onto the API shape), and the Step Functions
API's own members are camelCase (``stateMachineArn``), so botocore's serializer raises KeyError. A Lambda
task is something the interpreter runs, so the whole training path is executed in the tests.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Generator
from pathlib import PurePosixPath
from typing import IO, Any

from tastebud.adapters.aws.live_pointer import read_live
from tastebud.artifacts import MANIFEST
from tastebud.errors import ArtifactMismatchError
from tastebud.lifecycle.control_deps import ControlDeps, read_json_object, read_manifest
from tastebud.lifecycle.endpoint_tasks import (
    cleanup_endpoints,
    delete_endpoint,
    deploy_endpoint,
    describe_endpoint,
    endpoint_name,
    slug,
)


def prepare(event: dict[str, Any], deps: ControlDeps) -> dict[str, Any]:
    version = event.get("version") or deps.store.current_version()
    manifest = read_manifest(deps, version)
    retrieval = manifest.get("retrieval") or {}
    dimension = retrieval.get("dimension")
    items = int(retrieval.get("items") or (manifest.get("data") or {}).get("items") or 0)
    if not isinstance(dimension, int) or items <= 0:
        raise ArtifactMismatchError(f"version {version}: manifest needs retrieval.dimension and retrieval.items")
    live = read_live(deps.s3, deps.bucket, deps.prefix)
    index = f"{deps.alias}-{manifest['index_version']}".lower()
    size = deps.chunk_size
    chunks = [{"start": start, "end": min(start + size, items)} for start in range(0, items, size)]
    return {"version": version, "model_version": manifest["model_version"],
            "index_version": manifest["index_version"], "dimension": dimension, "items": items,
            "index": index, "endpoint": endpoint_name(deps.endpoint_prefix, version), "chunks": chunks,
            "live": json.loads(live.to_json()) if live else None,
            "already_live": bool(live and live.version == version)}


def _gate_verdict(metric: str, margin: float, final: dict[str, float], job: str,
                 deps: ControlDeps) -> dict[str, Any]:
    if metric not in final:
        reported = ", ".join(sorted(final)) or "no metric at all (FinalMetricDataList absent)"
        return {"pass": False, "error": "MetricMissing", "metric": metric, "candidate": None, "live": None,
                "reason": f"training job {job} reported no {metric} ({reported}): check the metric definitions"}
    candidate = final[metric]
    live = read_live(deps.s3, deps.bucket, deps.prefix)
    if live is None:
        return {"pass": True, "error": "", "metric": metric, "candidate": candidate, "live": None,
                "reason": "nothing live yet"}
    evaluation = read_json_object(deps, f"{deps.prefix}/versions/{live.version}/evaluation.json") or {}
    live_value = ((evaluation.get("models") or {}).get("tastebud") or {}).get(metric)
    if live_value is None:
        return {"pass": True, "error": "", "metric": metric, "candidate": candidate, "live": None,
                "reason": f"live version {live.version} has no {metric} in evaluation.json"}
    passed = candidate >= float(live_value) - margin
    return {"pass": passed, "error": "" if passed else "GateRejected", "metric": metric, "candidate": candidate,
            "live": float(live_value),
            "reason": "" if passed else f"{metric} {candidate:.4f} < live {float(live_value):.4f} - {margin}"}


def gate(event: dict[str, Any], deps: ControlDeps) -> dict[str, Any]:
    """Every key is always present (the ASL's ResultSelector selects them all)."""
    metric, margin = str(event.get("metric", "recall@20")), float(event.get("margin", 0.01))
    job = str(event["training_job_name"])
    described = deps.sagemaker.describe_training_job(TrainingJobName=job)
    if described["TrainingJobStatus"] != "Completed":
        raise ArtifactMismatchError(f"training job {job} is {described['TrainingJobStatus']}, not Completed")
    artifacts = (described.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    if not artifacts:
        raise ArtifactMismatchError(f"training job {job} is Completed but names no ModelArtifacts.S3ModelArtifacts")
    final = {m["MetricName"]: float(m["Value"]) for m in described.get("FinalMetricDataList") or []}
    return {**_gate_verdict(metric, margin, final, job, deps), "model_artifacts": str(artifacts),
            "training_job_name": job}


class _ForwardOnly(io.RawIOBase):
    """A tar member read from the archive's stream, offered as non-seekable: s3transfer then uploads it in
    parts as it reads (a seekable file would be sized by seeking, which a tar stream cannot undo)."""

    def __init__(self, member: IO[bytes]) -> None:
        self._member = member

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        data = self._member.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _archive_members(deps: ControlDeps, bucket: str, key: str) -> Generator[tuple[str, IO[bytes]], None, None]:
    """The regular files of a gzipped tar on S3, read as one forward stream (nothing on disk)."""
    body = deps.s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as tar:
            for member in tar:
                if member.isfile():
                    name = member.name.removeprefix("./")
                    if name.startswith("/") or ".." in PurePosixPath(name).parts:
                        raise ArtifactMismatchError(f"s3://{bucket}/{key}: member {member.name!r} leaves the version")
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        yield name, extracted
    finally:
        body.close()


def publish(event: dict[str, Any], deps: ControlDeps) -> dict[str, Any]:
    """Training output (model.tar.gz holding one artifacts version) -> versions/<v>/ + CURRENT (last).

    Streamed from S3 to S3, member by member: a version at 1M items is several GB, more than a Lambda's /tmp
    can be asked to hold twice (archive + extracted). The first pass reads up to manifest.json (the version's
    name; SageMaker's tar order is not ours to choose), the second uploads every other member as it is read
    and the manifest last. A re-run after a complete publish only re-writes CURRENT; after a partial one (no
    manifest yet) it uploads again, overwriting."""
    source = str(event["model_artifacts"])
    bucket, _, key = source.removeprefix("s3://").partition("/")
    manifest_bytes = None
    members = _archive_members(deps, bucket, key)
    for name, member in members:
        if name == MANIFEST:
            manifest_bytes = member.read()
            members.close()  # the rest of the archive is not needed for the name
            break
    if manifest_bytes is None:
        raise ArtifactMismatchError(f"{source} holds no {MANIFEST}: not an artifacts version")
    manifest = json.loads(manifest_bytes)
    version = str(manifest["version"])
    store = deps.store
    if MANIFEST not in store._list(version):
        for name, member in _archive_members(deps, bucket, key):
            if name != MANIFEST:
                deps.s3.upload_fileobj(_ForwardOnly(member), deps.bucket, store._key("versions", version, name))
        deps.s3.put_object(Bucket=deps.bucket, Key=store._key("versions", version, MANIFEST), Body=manifest_bytes)
    store.make_current(version)
    return {"version": version, "model_version": manifest["model_version"],
            "index_version": manifest["index_version"]}


def job_specs(event: dict[str, Any], deps: ControlDeps) -> dict[str, Any]:
    """The SageMaker job requests of one run: ``jobs.json`` (written by ``tastebud_training.sagemaker_jobs``
    with the SageMaker SDK at deploy time) with unique job names for this execution."""
    bucket, _, key = str(event["jobs"]).removeprefix("s3://").partition("/")
    specs = json.loads(deps.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    run = slug(str(event.get("run", "run")))
    out: dict[str, Any] = {}
    for kind, name_field in (("etl", "ProcessingJobName"), ("embeddings", "ProcessingJobName"),
                             ("training", "TrainingJobName")):
        request = dict(specs[kind])
        request[name_field] = f"tastebud-{kind}-{run}"[:63].rstrip("-")
        # The ASL's Parameters read every member below; an absent one would be States.Runtime (uncatchable, on
        # AWS). The SDK omits empty optional members: an empty value means the same to SageMaker.
        for member, empty in _EMPTY_WHEN_ABSENT[name_field].items():
            request.setdefault(member, empty)
        missing = [m for m in _ASL_MEMBERS[name_field] if m not in request]
        if missing:
            raise ArtifactMismatchError(f"{event['jobs']}: the {kind} request lacks {missing}, which the training "
                                        "state machine passes to SageMaker (re-run `make sagemaker-jobs`)")
        out[kind] = request
    return out


# What statemachines/training.asl.json's create tasks read from each request (``$.specs.<kind>.<member>``).
_ASL_MEMBERS = {
    "ProcessingJobName": ("ProcessingJobName", "ProcessingResources", "AppSpecification", "ProcessingInputs",
                          "ProcessingOutputConfig", "StoppingCondition", "Environment"),
    "TrainingJobName": ("TrainingJobName", "AlgorithmSpecification", "InputDataConfig", "OutputDataConfig",
                        "ResourceConfig", "StoppingCondition", "HyperParameters"),
}
_EMPTY_WHEN_ABSENT: dict[str, dict[str, Any]] = {
    "ProcessingJobName": {"Environment": {}, "ProcessingOutputConfig": {"Outputs": []}, "ProcessingInputs": []},
    "TrainingJobName": {"InputDataConfig": [], "HyperParameters": {}},
}


# Step Functions execution names: 1-80 characters, no whitespace, brackets, wildcards or punctuation other
# than - and _ (the ARN embeds them).
_EXECUTION_NAME_MAX = 80


def hot_swap_execution_name(run: str, version: str) -> str:
    """``<run>-<version>`` in [a-z0-9-], at most 80 characters, keeping the version whole when it can."""
    version_part = slug(version)[:_EXECUTION_NAME_MAX]
    room = _EXECUTION_NAME_MAX - len(version_part) - 1
    run_part = slug(run)[:room].rstrip("-") if room > 0 else ""
    return f"{run_part}-{version_part}" if run_part else version_part


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def start_hot_swap(event: dict[str, Any], deps: ControlDeps) -> dict[str, Any]:
    """StartExecution of the hot-swap machine for ``version``. StartExecution is idempotent for a running
    standard execution with the same name and input; once that execution has closed it answers
    ExecutionAlreadyExists, and the execution it names is the one this run started."""
    machine, version = str(event["state_machine_arn"]), str(event["version"])
    if ":stateMachine:" not in machine:
        raise ValueError(f"not a state machine ARN: {machine!r}")
    name = hot_swap_execution_name(str(event.get("run") or "run"), version)
    overrides = event.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ValueError(f"hot swap overrides must be an object, not {type(overrides).__name__}")
    execution_input: dict[str, Any] = {**overrides, "version": version}
    if event.get("parent_execution_id"):  # links the two executions in the console
        execution_input["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"] = str(event["parent_execution_id"])
    try:
        arn = str(deps.stepfunctions.start_execution(stateMachineArn=machine, name=name,
                                                     input=json.dumps(execution_input, sort_keys=True))[
            "executionArn"])
        started = True
    except Exception as exc:
        if _error_code(exc) != "ExecutionAlreadyExists":
            raise
        arn, started = machine.replace(":stateMachine:", ":execution:", 1) + ":" + name, False
    return {"execution_arn": arn, "name": name, "started": started}


def describe_execution(event: dict[str, Any], deps: ControlDeps) -> dict[str, Any]:
    """RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED (| PENDING_REDRIVE), with the error and cause of a
    failed execution (empty strings otherwise: the ASL selects both fields unconditionally)."""
    arn = str(event["execution_arn"])
    described = deps.stepfunctions.describe_execution(executionArn=arn)
    status = str(described["status"])
    error, cause = str(described.get("error") or ""), str(described.get("cause") or "")
    if status in ("FAILED", "TIMED_OUT", "ABORTED") and not cause:
        cause = f"execution {arn} ended {status}"
    return {"execution_arn": arn, "status": status, "error": error, "cause": cause}


ACTIONS = {"job_specs": job_specs, "prepare": prepare, "deploy_endpoint": deploy_endpoint,
           "describe_endpoint": describe_endpoint,
           "delete_endpoint": delete_endpoint, "cleanup_endpoints": cleanup_endpoints, "gate": gate,
           "publish": publish, "start_hot_swap": start_hot_swap, "describe_execution": describe_execution}


def handle(event: dict[str, Any], deps: ControlDeps) -> dict[str, Any]:
    action = ACTIONS.get(str(event.get("action")))
    if action is None:
        raise ValueError(f"unknown control task action {event.get('action')!r}; one of {sorted(ACTIONS)}")
    return action(event, deps)
