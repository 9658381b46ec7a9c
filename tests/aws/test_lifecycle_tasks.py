"""The lifecycle task functions (index_tasks, control_tasks) against moto (S3, SageMaker) and the OpenSearch
wire double (tests/aws_doubles.py: documented request/response bodies, under the real opensearch-py client).

The state machines that call these tasks are executed in test_state_machines.py; here each task's own
behaviour is checked: what it sends to OpenSearch / SageMaker / S3, and that re-runs are harmless.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import numpy as np
import pytest
from aws_doubles import FakeOpenSearchDomain, json_reply, opensearch_client
from botocore.stub import Stubber
from moto import mock_aws
from urllib3.exceptions import ReadTimeoutError

from tastebud.adapters.aws.live_pointer import LivePointer, read_live, write_live
from tastebud.adapters.aws.opensearch_admin import OpenSearchIndexAdmin
from tastebud.errors import ArtifactMismatchError, DependencyError
from tastebud.lifecycle import control_tasks, index_tasks
from tastebud.lifecycle.control_tasks import ControlDeps
from tastebud.lifecycle.index_tasks import IndexDeps

from factories import model_tar, version_dir

BUCKET, PREFIX, ALIAS, REGION = "tastebud-artifacts", "tastebud", "items", "eu-west-1"
N, DIM = 30, 8
ROLE = "arn:aws:iam::123456789012:role/tastebud-user-tower"
IMAGE = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-inference:2.19-cpu"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        domain = FakeOpenSearchDomain()
        index = IndexDeps(opensearch=opensearch_client(domain, timeout=5.0), s3=s3, bucket=BUCKET, prefix=PREFIX,
                          alias=ALIAS, cache=tmp_path / "cache")
        control = ControlDeps(s3=s3, sagemaker=boto3.client("sagemaker", region_name=REGION), bucket=BUCKET,
                              prefix=PREFIX, alias=ALIAS, endpoint_prefix="tb-user-tower", user_tower_image=IMAGE,
                              user_tower_role_arn=ROLE, chunk_size=20,
                              instance_type="ml.c5.large")  # moto 5.2.5's enum predates ml.c7i (the default)
        yield {"s3": s3, "domain": domain, "index": index, "control": control, "tmp": tmp_path}


def publish(world: dict[str, Any], version: str, *, seed: int = 1) -> None:
    world["control"].store.publish(version_dir(world["tmp"] / "src", version, seed=seed), version)


def hot_swap(world: dict[str, Any], version: str) -> dict[str, Any]:
    """What index_hot_swap.asl.json does on its success path, task by task (minus the endpoint wait)."""
    prep = control_tasks.handle({"action": "prepare", "version": version}, world["control"])
    common = {k: prep[k] for k in ("version", "model_version", "index_version", "index", "endpoint", "live")}
    index_tasks.handle({"action": "create_index", **common, "dimension": prep["dimension"]}, world["index"])
    for chunk in prep["chunks"]:
        loaded = index_tasks.handle({"action": "bulk_load", **common, **chunk}, world["index"])
        assert loaded["failed"] == 0, loaded
    started = index_tasks.handle({"action": "start_merge", **common}, world["index"])
    while not (merge := index_tasks.handle({"action": "merge_status", **common, "task": started["task"]},
                                           world["index"]))["done"]:
        started = merge  # the state machine's Wait -> merge_status -> Choice loop
    index_tasks.handle({"action": "settle", **common}, world["index"])
    assert index_tasks.handle({"action": "warm_up", **common}, world["index"])["warm"] is True
    verified = index_tasks.handle({"action": "verify", **common, "k": 10, "samples": 5}, world["index"])
    assert verified["ok"], verified
    index_tasks.handle({"action": "flip", **common}, world["index"])
    return prep


# ---------------------------------------------------------------- index tasks
def test_a_hot_swap_builds_warms_verifies_and_flips_one_pointer(world: dict[str, Any]) -> None:
    publish(world, "v1")
    prep = hot_swap(world, "v1")
    assert prep["chunks"] == [{"start": 0, "end": 20}, {"start": 20, "end": 30}] and prep["live"] is None
    domain: FakeOpenSearchDomain = world["domain"]
    index = "items-i-v1"
    assert domain.aliases[ALIAS] == {index} and len(domain.indices[index]["docs"]) == N
    created = json.loads(next(r["body"] for r in domain.requests if r["method"] == "PUT" and r["path"] == f"/{index}"))
    assert created["settings"]["index"]["number_of_replicas"] == 0  # relaxed during the load
    assert created["settings"]["index"]["refresh_interval"] == "-1"
    assert domain.indices[index]["settings"]["number_of_replicas"] == 1  # restored by settle
    assert domain.indices[index]["settings"]["refresh_interval"] == "30s"
    calls = [(r["method"], r["path"]) for r in domain.requests]
    assert calls.index(("POST", f"/{index}/_forcemerge")) < calls.index(("POST", f"/{index}/_refresh")) < calls.index(
        ("GET", f"/_plugins/_knn/warmup/{index}"))  # the merge flushes the indexing buffer itself
    merge = next(r for r in domain.requests if r["path"] == f"/{index}/_forcemerge")
    # In the background: a blocking force merge of 100k-1M vectors outlives every client timeout (issue 20 #10).
    assert merge["query"] == {"max_num_segments": ["1"], "wait_for_completion": ["false"]}
    assert ("GET", "/_tasks/oTUltX4IQMOUUVeiohTt8A:1000") in [(m, unquote(path)) for m, path in calls]
    live = read_live(world["s3"], BUCKET, PREFIX)
    assert live == LivePointer(version="v1", model_version="m-v1", index_version="i-v1", index=index,
                               endpoint="tb-user-tower-v1", previous=None)
    again = control_tasks.handle({"action": "prepare", "version": "v1"}, world["control"])
    assert again["already_live"] is True  # a re-run of the same version is a no-op in the ASL


def loaded_index(world: dict[str, Any], version: str = "v1") -> dict[str, Any]:
    publish(world, version)
    prep = control_tasks.handle({"action": "prepare", "version": version}, world["control"])
    common = {k: prep[k] for k in ("version", "model_version", "index_version", "index", "endpoint", "live")}
    index_tasks.handle({"action": "create_index", **common, "dimension": prep["dimension"]}, world["index"])
    return common


def test_the_force_merge_runs_in_the_background_and_is_polled_to_completion(world: dict[str, Any]) -> None:
    common = loaded_index(world)
    domain: FakeOpenSearchDomain = world["domain"]
    domain.merge_polls = 3
    started = index_tasks.handle({"action": "start_merge", **common}, world["index"])
    polls = [index_tasks.handle({"action": "merge_status", **common, "task": started["task"]}, world["index"])
             for _ in range(4)]
    assert [p["done"] for p in polls] == [False, False, False, True]
    assert {p["task"] for p in polls} == {started["task"]}


def test_a_retried_start_merge_finds_the_running_merge_instead_of_queueing_another(world: dict[str, Any]) -> None:
    common = loaded_index(world)
    domain: FakeOpenSearchDomain = world["domain"]
    domain.merge_polls = 5
    first = index_tasks.handle({"action": "start_merge", **common}, world["index"])
    again = index_tasks.handle({"action": "start_merge", **common}, world["index"])  # after a lost answer
    assert again["task"] == first["task"] and len(domain.tasks) == 1


def test_a_merge_task_lost_with_its_node_is_started_again_and_a_failed_merge_raises(world: dict[str, Any]) -> None:
    common = loaded_index(world)
    status = index_tasks.handle({"action": "merge_status", **common, "task": "gone:1"}, world["index"])
    assert status["done"] is False and status["restarted"] is True and status["task"] in world["domain"].tasks
    world["domain"].failures.append(json_reply(200, {"completed": True, "task": {}, "error": {
        "type": "illegal_state_exception", "reason": "merge failed"}}))
    with pytest.raises(DependencyError, match="illegal_state_exception"):
        index_tasks.handle({"action": "merge_status", **common, "task": status["task"]}, world["index"])


def test_a_warm_up_that_outlasts_its_request_timeout_is_asked_again_later(world: dict[str, Any]) -> None:
    common = loaded_index(world)
    domain: FakeOpenSearchDomain = world["domain"]
    domain.failures.append(ReadTimeoutError(None, "/_plugins/_knn/warmup", "Read timed out. (read timeout=45)"))
    assert index_tasks.handle({"action": "warm_up", **common}, world["index"])["warm"] is False
    warmup = next(r for r in domain.requests if r["path"].startswith("/_plugins/_knn/warmup/"))
    assert warmup["timeout"] == 45.0  # bounded below the client's 60 s and the Lambda's 900 s
    assert index_tasks.handle({"action": "warm_up", **common}, world["index"])["warm"] is True
    domain.failures.append(json_reply(200, {"_shards": {"total": 2, "successful": 1, "failed": 1}}))
    with pytest.raises(DependencyError, match="warm-up"):
        index_tasks.handle({"action": "warm_up", **common}, world["index"])


def test_create_index_replaces_a_half_built_index_and_refuses_the_live_one(world: dict[str, Any]) -> None:
    publish(world, "v1")
    deps, domain = world["index"], world["domain"]
    event = {"index": "items-i-v1", "index_version": "i-v1", "dimension": DIM, "live": None}
    index_tasks.create_index(event, deps)
    domain.indices["items-i-v1"]["docs"]["stale"] = {"embedding": [0.0] * DIM}
    index_tasks.create_index(event, deps)  # an earlier failed run's index is deleted first
    assert domain.indices["items-i-v1"]["docs"] == {}
    with pytest.raises(DependencyError, match="live index"):
        index_tasks.create_index({**event, "live": {"index": "items-i-v1"}}, deps)


def test_a_failing_bulk_chunk_is_reported_not_raised(world: dict[str, Any]) -> None:
    publish(world, "v1")
    deps = world["index"]
    index_tasks.create_index({"index": "items-i-v1", "index_version": "i-v1", "dimension": DIM + 1}, deps)
    result = index_tasks.bulk_load({"index": "items-i-v1", "version": "v1", "start": 0, "end": 20}, deps)
    assert result["loaded"] == 0 and result["failed"] == 20 and "mapper_parsing_exception" in result["error"]


def test_verify_rejects_a_missing_document_and_a_poor_recall(world: dict[str, Any]) -> None:
    publish(world, "v1")
    deps, domain = world["index"], world["domain"]
    common = {"index": "items-i-v1", "index_version": "i-v1", "version": "v1"}
    index_tasks.create_index({**common, "dimension": DIM}, deps)
    index_tasks.bulk_load({**common, "start": 0, "end": N}, deps)
    assert index_tasks.verify({**common, "k": 10}, deps)["ok"]
    domain.indices["items-i-v1"]["docs"].pop("i3")
    missing = index_tasks.verify({**common, "k": 10}, deps)
    assert not missing["ok"] and missing["count"] == N - 1 and "29 documents for 30 items" in missing["reason"]
    index_tasks.bulk_load({**common, "start": 0, "end": N}, deps)
    for doc in domain.indices["items-i-v1"]["docs"].values():  # vectors of another model: recall collapses
        doc["embedding"] = list(np.random.default_rng(len(doc["merchant_id"])).normal(size=DIM))
    poor = index_tasks.verify({**common, "k": 5, "samples": 10}, deps)
    assert not poor["ok"] and poor["recall"] < 0.9 and poor["reason"].startswith("recall@5")


def test_rollback_restores_the_old_pointer_and_alias_and_deletes_the_new_index(world: dict[str, Any]) -> None:
    publish(world, "v1")
    hot_swap(world, "v1")
    publish(world, "v2", seed=2)
    prep = hot_swap(world, "v2")  # flipped, then (say) a later step failed
    assert world["domain"].aliases[ALIAS] == {"items-i-v2"}
    event = {"action": "rollback", "index": prep["index"], "live": prep["live"]}
    result = index_tasks.handle(event, world["index"])
    assert result["actions"] == ["pointer restored", "alias back on items-i-v1", "deleted items-i-v2"]
    assert read_live(world["s3"], BUCKET, PREFIX).version == "v1"  # type: ignore[union-attr]
    assert world["domain"].aliases[ALIAS] == {"items-i-v1"} and "items-i-v2" not in world["domain"].indices
    assert index_tasks.handle(event, world["index"])["actions"] == []  # twice is harmless


def test_rollback_of_a_first_version_removes_its_pointer(world: dict[str, Any]) -> None:
    publish(world, "v1")
    prep = hot_swap(world, "v1")
    result = index_tasks.handle({"action": "rollback", "index": prep["index"], "live": None}, world["index"])
    assert result["actions"] == ["pointer removed", "deleted items-i-v1"]
    assert read_live(world["s3"], BUCKET, PREFIX) is None


def test_cleanup_keeps_the_newest_and_the_live_index(world: dict[str, Any]) -> None:
    deps = world["index"]
    assert index_tasks.cleanup({"keep": 2}, deps)["deleted"] == []  # a wildcard matching nothing is {}
    admin = OpenSearchIndexAdmin(deps.opensearch, ALIAS)
    for version in ("a", "b", "c", "d"):  # created in this order
        admin.create(version, DIM)
    write_live(world["s3"], BUCKET, PREFIX, LivePointer("v", "m", "a", "items-a", "e"))
    result = index_tasks.cleanup({"keep": 2}, deps)
    assert result == {"deleted": ["items-b"], "kept": ["items-a", "items-c", "items-d"]}
    assert sorted(world["domain"].indices) == ["items-a", "items-c", "items-d"]


def test_stock_updates_before_the_first_swap_never_create_an_index_named_like_the_alias(
        world: dict[str, Any]) -> None:
    admin, domain = OpenSearchIndexAdmin(world["index"].opensearch, ALIAS), world["domain"]
    with pytest.raises(DependencyError, match="require_alias"):
        admin.set_in_stock("i1", False)
    assert ALIAS not in domain.indices
    # Without require_alias the double behaves like OpenSearch (auto-create), which is the defect it guards.
    world["index"].opensearch.update(index=ALIAS, id="i1", body={"doc": {"in_stock": False}},
                                     params={"ignore": 404})
    assert ALIAS in domain.indices


def test_merchant_open_flips_every_document_of_the_merchant_through_the_alias(world: dict[str, Any]) -> None:
    publish(world, "v1")
    hot_swap(world, "v1")
    admin = OpenSearchIndexAdmin(world["index"].opensearch, ALIAS)
    assert admin.set_merchant_open("m2", False) == N // 5
    docs = world["domain"].indices["items-i-v1"]["docs"]
    assert {d["merchant_open"] for d in docs.values() if d["merchant_id"] == "m2"} == {False}
    assert {d["merchant_open"] for d in docs.values() if d["merchant_id"] != "m2"} == {True}
    sent = next(r for r in world["domain"].requests if r["path"] == f"/{ALIAS}/_update_by_query")
    assert sent["query"]["conflicts"] == ["proceed"]


# ---------------------------------------------------------------- control tasks
def test_prepare_needs_a_manifest_with_dimension_and_items(world: dict[str, Any]) -> None:
    with pytest.raises(ArtifactMismatchError, match="no readable"):
        control_tasks.prepare({"version": "nope"}, world["control"])
    world["s3"].put_object(Bucket=BUCKET, Key=f"{PREFIX}/versions/v0/manifest.json", Body=json.dumps(
        {"version": "v0", "model_version": "m", "index_version": "i", "retrieval": {}}).encode())
    with pytest.raises(ArtifactMismatchError, match=r"retrieval\.dimension"):
        control_tasks.prepare({"version": "v0"}, world["control"])


def test_the_user_tower_endpoint_is_deployed_idempotently_and_only_stale_ones_are_removed(
        world: dict[str, Any]) -> None:
    deps, sagemaker = world["control"], world["control"].sagemaker
    for _ in range(2):  # a re-run finds Model, EndpointConfig and Endpoint already there
        out = control_tasks.handle({"action": "deploy_endpoint", "endpoint": "tb-user-tower-v2", "version": "v2"},
                                   deps)
    assert out["model_data"] == f"s3://{BUCKET}/{PREFIX}/versions/v2/user_tower/model.tar.gz"
    model = sagemaker.describe_model(ModelName="tb-user-tower-v2")
    assert model["PrimaryContainer"]["Image"] == IMAGE and model["ExecutionRoleArn"] == ROLE
    assert model["PrimaryContainer"]["Environment"] == {"SAGEMAKER_TFS_DEFAULT_MODEL_NAME": "user_tower"}
    config = sagemaker.describe_endpoint_config(EndpointConfigName="tb-user-tower-v2")["ProductionVariants"][0]
    assert config["ModelName"] == "tb-user-tower-v2" and config["InstanceType"] == "ml.c5.large"
    status = control_tasks.handle({"action": "describe_endpoint", "endpoint": "tb-user-tower-v2"}, deps)
    assert status["status"] in ("Creating", "InService")

    control_tasks.deploy_endpoint({"endpoint": "tb-user-tower-v1", "version": "v1"}, deps)
    write_live(world["s3"], BUCKET, PREFIX, LivePointer("v2", "m", "i", "items-i", "tb-user-tower-v2"))
    assert control_tasks.delete_endpoint({"endpoint": "tb-user-tower-v2"}, deps) == {"deleted": None}  # live
    assert control_tasks.cleanup_endpoints({}, deps) == {"deleted": ["tb-user-tower-v1"]}
    names = [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]]
    assert names == ["tb-user-tower-v2"]
    with pytest.raises(Exception, match=r"Could not find|does not exist"):
        sagemaker.describe_model(ModelName="tb-user-tower-v1")


JOB = "tastebud-training-run1"


def described_job(status: str = "Completed", metrics: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A DescribeTrainingJob answer with the model's REQUIRED members; FinalMetricDataList only when given (the API
    omits it while the job runs, and on a Completed job whose metric regexes matched nothing)."""
    now = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
    described: dict[str, Any] = {
        "TrainingJobName": JOB, "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{JOB}",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://{BUCKET}/training/out/{JOB}/output/model.tar.gz"},
        "TrainingJobStatus": status, "SecondaryStatus": "Completed" if status == "Completed" else "Training",
        "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": IMAGE},
        "ResourceConfig": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        "StoppingCondition": {"MaxRuntimeInSeconds": 14400}, "CreationTime": now}
    if metrics is not None:
        described["FinalMetricDataList"] = [{**m, "Timestamp": now} for m in metrics]
    return described


def gate_with(world: dict[str, Any], answer: dict[str, Any], **event: Any) -> dict[str, Any]:
    """The gate against a SageMaker client whose answer botocore's Stubber checks against the service model."""
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    with Stubber(sagemaker) as stub:
        stub.add_response("describe_training_job", answer, {"TrainingJobName": JOB})
        return control_tasks.gate({"training_job_name": JOB, **event}, replace(world["control"], sagemaker=sagemaker))


def test_the_gate_compares_the_candidate_with_the_live_version(world: dict[str, Any]) -> None:
    final = [{"MetricName": "recall@20", "Value": 0.295}]
    first = gate_with(world, described_job(metrics=final))
    assert first["pass"] is True and first["reason"] == "nothing live yet"
    assert first["model_artifacts"] == f"s3://{BUCKET}/training/out/{JOB}/output/model.tar.gz"
    write_live(world["s3"], BUCKET, PREFIX, LivePointer("v1", "m", "i", "items-i", "e"))
    world["s3"].put_object(Bucket=BUCKET, Key=f"{PREFIX}/versions/v1/evaluation.json",
                           Body=json.dumps({"models": {"tastebud": {"recall@20": 0.30}}}).encode())
    assert gate_with(world, described_job(metrics=final), margin=0.01)["pass"] is True
    rejected = gate_with(world, described_job(metrics=final), margin=0.001)
    assert rejected["pass"] is False and rejected["reason"] == "recall@20 0.2950 < live 0.3000 - 0.001"
    assert rejected["error"] == "GateRejected"


def test_a_job_that_reported_no_metric_fails_the_gate_clearly(world: dict[str, Any]) -> None:
    """Issue 20 #4: FinalMetricDataList is optional; a Completed job without it must not pass (nor crash)."""
    absent = gate_with(world, described_job(metrics=None))
    assert absent["pass"] is False and absent["error"] == "MetricMissing"
    assert "reported no recall@20" in absent["reason"] and "FinalMetricDataList absent" in absent["reason"]
    other = gate_with(world, described_job(metrics=[{"MetricName": "loss", "Value": 0.1}]))
    assert other["pass"] is False and other["error"] == "MetricMissing" and "(loss)" in other["reason"]
    with pytest.raises(ArtifactMismatchError, match="InProgress"):
        gate_with(world, described_job(status="InProgress"))


def test_publish_unpacks_the_training_output_and_writes_current_last(world: dict[str, Any]) -> None:
    s3, deps = world["s3"], world["control"]
    s3.put_object(Bucket=BUCKET, Key="training/out/job/output/model.tar.gz",
                  Body=model_tar(version_dir(world["tmp"] / "job", "v7")))
    event = {"model_artifacts": f"s3://{BUCKET}/training/out/job/output/model.tar.gz", "tmp": str(world["tmp"])}
    assert control_tasks.publish(event, deps) == {"version": "v7", "model_version": "m-v7", "index_version": "i-v7"}
    assert deps.store.current_version() == "v7"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/versions/v7/")["Contents"]}
    assert keys == {f"{PREFIX}/versions/v7/{name}" for name in ("catalog.npz", "index_vectors.npy", "manifest.json")}
    assert control_tasks.publish(event, deps)["version"] == "v7"  # a re-run is harmless
    # A run that died mid-upload left files but no manifest: the re-run completes it.
    s3.delete_object(Bucket=BUCKET, Key=f"{PREFIX}/versions/v7/manifest.json")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/CURRENT", Body=b"v6\n")
    assert control_tasks.publish(event, deps)["version"] == "v7" and deps.store.current_version() == "v7"
    assert read_live(s3, BUCKET, PREFIX) is None  # publishing never changes traffic


def asl_request_members() -> dict[str, set[str]]:
    """The request members statemachines/training.asl.json's create tasks read (``$.specs.<kind>.<member>``)."""
    states = json.loads((Path(__file__).resolve().parents[2] / "statemachines" / "training.asl.json").read_text())
    read: dict[str, set[str]] = {}
    for state in states["States"].values():
        for path in (state.get("Parameters") or {}).values():
            if isinstance(path, str) and path.startswith("$.specs."):
                kind, member = path.removeprefix("$.specs.").split(".")[:2]
                read.setdefault(kind, set()).add(member)
    return read


def minimal_jobs() -> dict[str, Any]:
    """Each request with only the members botocore's model REQUIRES (what an SDK rendering may be reduced to)."""
    processing = {"RoleArn": ROLE, "AppSpecification": {"ImageUri": IMAGE},
                  "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                            "VolumeSizeInGB": 30}},
                  "StoppingCondition": {"MaxRuntimeInSeconds": 7200}}
    training = {"RoleArn": ROLE, "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
                "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/training/out"},
                "ResourceConfig": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
                "StoppingCondition": {"MaxRuntimeInSeconds": 14400}}
    return {"etl": processing, "embeddings": dict(processing), "training": training}


def test_job_specs_name_each_job_of_a_run(world: dict[str, Any]) -> None:
    world["s3"].put_object(Bucket=BUCKET, Key="training/jobs.json", Body=json.dumps(minimal_jobs()).encode())
    out = control_tasks.handle({"action": "job_specs", "jobs": f"s3://{BUCKET}/training/jobs.json",
                                "run": "2026-12-01T02:00:00Z"}, world["control"])
    assert out["etl"]["ProcessingJobName"] == "tastebud-etl-2026-12-01t02-00-00z"
    assert out["training"]["TrainingJobName"] == "tastebud-training-2026-12-01t02-00-00z"
    with pytest.raises(ValueError, match="unknown control task action"):
        control_tasks.handle({"action": "nope"}, world["control"])


def test_job_specs_carry_every_member_the_state_machine_reads(world: dict[str, Any]) -> None:
    """An absent ``$.specs.etl.ProcessingInputs`` in a create task's Parameters is States.Runtime on AWS (no Catch):
    the optional members the SDK omits when empty are filled with their empty value; a missing one that has no
    neutral value (a processing job's StoppingCondition) fails this Lambda task, which Catch handles."""
    read = asl_request_members()
    assert read["etl"] >= {"ProcessingInputs", "StoppingCondition", "Environment"}, read
    world["s3"].put_object(Bucket=BUCKET, Key="training/jobs.json", Body=json.dumps(minimal_jobs()).encode())
    out = control_tasks.handle({"action": "job_specs", "jobs": f"s3://{BUCKET}/training/jobs.json", "run": "r"},
                               world["control"])
    for kind, members in read.items():
        assert members <= set(out[kind]), (kind, sorted(members - set(out[kind])))
    no_limit = minimal_jobs()
    del no_limit["etl"]["StoppingCondition"]
    world["s3"].put_object(Bucket=BUCKET, Key="training/jobs.json", Body=json.dumps(no_limit).encode())
    with pytest.raises(ArtifactMismatchError, match=r"etl request lacks \['StoppingCondition'\]"):
        control_tasks.handle({"action": "job_specs", "jobs": f"s3://{BUCKET}/training/jobs.json", "run": "r"},
                             world["control"])


def test_the_hot_swap_is_started_once_per_run_and_version_and_described(world: dict[str, Any]) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    deps = ControlDeps(**{**world["control"].__dict__, "stepfunctions": sfn})
    machine = sfn.create_state_machine(name="tastebud-index-hot-swap", roleArn=ROLE, definition=json.dumps(
        {"StartAt": "Swap", "States": {"Swap": {"Type": "Succeed"}}}))["stateMachineArn"]
    event = {"action": "start_hot_swap", "state_machine_arn": machine, "version": "2026-12-01T02:00:00Z",
             "run": "Nightly Run 7", "parent_execution_id": "arn:aws:states:eu-west-1:123456789012:execution:t:r",
             "overrides": {"min_recall": 0.95, "version": "ignored"}}
    first = control_tasks.handle(event, deps)
    assert first["name"] == "nightly-run-7-2026-12-01t02-00-00z" and first["started"] is True
    execution = sfn.describe_execution(executionArn=first["execution_arn"])
    parent = event["parent_execution_id"]
    assert json.loads(execution["input"]) == {"version": "2026-12-01T02:00:00Z", "min_recall": 0.95,
                                              "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": parent}
    assert control_tasks.handle(event, deps)["execution_arn"] == first["execution_arn"]  # a retried task
    running = control_tasks.handle({"action": "describe_execution", "execution_arn": first["execution_arn"]}, deps)
    assert running == {"execution_arn": first["execution_arn"], "status": "RUNNING", "error": "", "cause": ""}
    sfn.stop_execution(executionArn=first["execution_arn"], error="Operator", cause="stopped by hand")
    again = control_tasks.handle(event, deps)  # closed: ExecutionAlreadyExists names the same execution
    assert again == {**first, "started": False}
    stopped = control_tasks.describe_execution({"execution_arn": first["execution_arn"]}, deps)
    assert stopped["status"] == "ABORTED" and stopped["cause"]
    with pytest.raises(ValueError, match="not a state machine ARN"):
        control_tasks.start_hot_swap({**event, "state_machine_arn": "arn:aws:lambda:eu-west-1:1:function:x"}, deps)


def test_hot_swap_execution_names_fit_step_functions_limits() -> None:
    name = control_tasks.hot_swap_execution_name("r" * 100, "v" * 30)
    assert len(name) == 80 and name.endswith("-" + "v" * 30)
    assert control_tasks.hot_swap_execution_name("", "V 1") == "v-1"
    assert len(control_tasks.hot_swap_execution_name("run", "x" * 200)) == 80


# ---------------------------------------------------------------- the machines' paths vs the handlers' answers
def selected_payload_members() -> dict[str, set[str]]:
    """action -> the ``$.Payload.<member>`` paths both machines read from that action's answer (ResultSelector, and
    the Map's ``OutputPath: $.Payload`` + Choice on ``$.failed``). On AWS an absent one is States.Runtime, which no
    Catch handles (moto's interpreter instead reports a caught task failure: a spurious rollback)."""
    root = Path(__file__).resolve().parents[2] / "statemachines"
    selected: dict[str, set[str]] = {}

    def walk(states: dict[str, Any]) -> None:
        for state in states.values():
            if "ItemProcessor" in state:
                walk(state["ItemProcessor"]["States"])
            payload = (state.get("Parameters") or {}).get("Payload")
            if not isinstance(payload, dict) or state.get("Resource") != "arn:aws:states:::lambda:invoke":
                if state.get("OutputPath") == "$.Payload":  # LoadChunk: payload = the Map item's action
                    selected.setdefault("bulk_load", set()).add("failed")
                continue
            paths = [v for v in (state.get("ResultSelector") or {}).values() if isinstance(v, str)]
            selected.setdefault(payload["action"], set()).update(
                p.removeprefix("$.Payload.").split(".")[0] for p in paths if p.startswith("$.Payload."))

    for name in ("index_hot_swap", "training"):
        walk(json.loads((root / f"{name}.asl.json").read_text())["States"])
    return selected


def test_every_payload_member_the_machines_select_is_in_every_answer_of_the_real_handler(
        world: dict[str, Any]) -> None:
    selected = selected_payload_members()
    answers: dict[str, list[dict[str, Any]]] = {}

    def index_task(event: dict[str, Any]) -> dict[str, Any]:
        answer = index_tasks.handle(event, world["index"])
        answers.setdefault(event["action"], []).append(answer)
        return answer

    def control_task(event: dict[str, Any], deps: ControlDeps | None = None) -> dict[str, Any]:
        answer = control_tasks.handle(event, deps or world["control"])
        answers.setdefault(event["action"], []).append(answer)
        return answer

    publish(world, "v1")
    prep = control_task({"action": "prepare", "version": "v1"})
    common = {k: prep[k] for k in ("version", "model_version", "index_version", "index", "endpoint", "live")}
    index_task({"action": "create_index", **common, "dimension": prep["dimension"]})
    for chunk in prep["chunks"]:
        index_task({"action": "bulk_load", **common, **chunk})
    world["domain"].merge_polls = 1
    task = index_task({"action": "start_merge", **common})["task"]
    index_task({"action": "merge_status", **common, "task": task})
    index_task({"action": "merge_status", **common, "task": task})
    index_task({"action": "merge_status", **common, "task": "gone:7"})  # restarted
    index_task({"action": "settle", **common})
    world["domain"].failures.append(ReadTimeoutError(None, "/_plugins/_knn/warmup", "Read timed out."))
    index_task({"action": "warm_up", **common})
    index_task({"action": "warm_up", **common})
    index_task({"action": "verify", **common, "k": 10, "samples": 5})
    index_task({"action": "verify", **common, "k": 10, "samples": 5, "min_recall": 1.01})  # rejected
    control_task({"action": "deploy_endpoint", "endpoint": common["endpoint"], "version": "v1"})
    control_task({"action": "describe_endpoint", "endpoint": common["endpoint"]})
    index_task({"action": "flip", **common})
    index_task({"action": "rollback", "index": "items-i-v9", "live": None})
    index_task({"action": "cleanup", "keep": 2})
    control_task({"action": "cleanup_endpoints"})
    control_task({"action": "delete_endpoint", "endpoint": "tb-user-tower-v0"})
    world["s3"].put_object(Bucket=BUCKET, Key="training/jobs.json", Body=json.dumps(minimal_jobs()).encode())
    control_task({"action": "job_specs", "jobs": f"s3://{BUCKET}/training/jobs.json", "run": "r"})
    for metrics in ([{"MetricName": "recall@20", "Value": 0.3}], None):
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        with Stubber(sagemaker) as stub:
            stub.add_response("describe_training_job", described_job(metrics=metrics), {"TrainingJobName": JOB})
            control_task({"action": "gate", "training_job_name": JOB},
                         replace(world["control"], sagemaker=sagemaker))
    world["s3"].put_object(Bucket=BUCKET, Key="training/out/job/output/model.tar.gz",
                           Body=model_tar(version_dir(world["tmp"] / "job", "v7")))
    control_task({"action": "publish", "model_artifacts": f"s3://{BUCKET}/training/out/job/output/model.tar.gz",
                  "tmp": str(world["tmp"])})
    # start_hot_swap / describe_execution answer from a real (moto) execution in test_training_hot_swap.
    for action in set(selected) - {"start_hot_swap", "describe_execution"}:
        assert action in answers, f"no answer of {action} was checked"
        for answer in answers[action]:
            missing = selected[action] - set(answer)
            assert not missing, f"{action} answered {sorted(answer)} without {sorted(missing)}"
