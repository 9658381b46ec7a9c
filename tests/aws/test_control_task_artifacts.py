"""The control task's handling of artifacts: publishing a training job's output streams S3 -> S3 (issue 20 #13),
and an endpoint is created only with an image that loads the version's user tower (#8).

A version at 1M items is several GB, and the control task Lambda's /tmp could not hold the archive and its
extraction. Here the OS itself enforces it: the process may not write any file larger than 1 MB (RLIMIT_FSIZE)
while a version with a 9 MB member is published."""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from tastebud.errors import ArtifactMismatchError
from tastebud.lifecycle import control_tasks
from tastebud.lifecycle.control_tasks import ControlDeps

BUCKET, PREFIX, REGION = "tastebud-artifacts", "tastebud", "eu-west-1"
SOURCE = "training/output/job-1/output/model.tar.gz"
BIG = 9 * 1024 * 1024  # above s3transfer's 8 MB multipart threshold: the member goes up in parts


def archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@contextmanager
def no_file_larger_than(limit: int) -> Iterator[None]:
    """RLIMIT_FSIZE for this process; SIGXFSZ ignored, so an oversized write fails with EFBIG (OSError)."""
    previous_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, previous_limit[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, previous_limit)
        signal.signal(signal.SIGXFSZ, previous_handler)


@pytest.fixture
def deps(monkeypatch: pytest.MonkeyPatch) -> Iterator[ControlDeps]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(64 * 1024 * 1024))  # moto keeps objects in memory
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield ControlDeps(s3=s3, sagemaker=None, bucket=BUCKET, prefix=PREFIX, alias="items",
                          endpoint_prefix="tb-user-tower", user_tower_image="", user_tower_role_arn="")


def test_a_version_is_published_without_touching_local_disk_manifest_last(deps: ControlDeps, tmp_path: Path) -> None:
    manifest = {"version": "v9", "model_version": "m9", "index_version": "i9"}
    big = os.urandom(BIG)  # incompressible: the archive is as large as the member
    # SageMaker's tar order is not ours: the manifest may come after the files it names.
    deps.s3.put_object(Bucket=BUCKET, Key=SOURCE, Body=archive({
        "index_vectors.npy": big, "user_tower/model.tar.gz": b"tower", "manifest.json": json.dumps(manifest).encode()}))
    with no_file_larger_than(1024 * 1024):
        with pytest.raises(OSError), (tmp_path / "probe").open("wb") as probe:  # the limit is real
            probe.write(b"x" * 2 * 1024 * 1024)
        published = control_tasks.publish({"model_artifacts": f"s3://{BUCKET}/{SOURCE}"}, deps)
    assert published == manifest
    body = deps.s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/versions/v9/index_vectors.npy")["Body"].read()
    assert body == big
    assert deps.store.current_version() == "v9"
    assert json.loads(deps.s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/versions/v9/manifest.json")["Body"].read()) \
        == manifest


def test_a_partial_publish_is_completed_and_a_complete_one_only_flips_current(deps: ControlDeps) -> None:
    manifest = {"version": "v3", "model_version": "m3", "index_version": "i3"}
    deps.s3.put_object(Bucket=BUCKET, Key=SOURCE, Body=archive({
        "manifest.json": json.dumps(manifest).encode(), "catalog.npz": b"catalog"}))
    deps.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/versions/v3/catalog.npz", Body=b"half")  # died mid-upload
    event = {"model_artifacts": f"s3://{BUCKET}/{SOURCE}"}
    assert control_tasks.publish(event, deps)["version"] == "v3"
    assert deps.s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/versions/v3/catalog.npz")["Body"].read() == b"catalog"
    deps.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/CURRENT", Body=b"v2\n")
    deps.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/versions/v3/catalog.npz", Body=b"kept")
    assert control_tasks.publish(event, deps)["version"] == "v3"  # complete: not uploaded again
    assert deps.s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/versions/v3/catalog.npz")["Body"].read() == b"kept"
    assert deps.store.current_version() == "v3"


@pytest.mark.parametrize("members", [{"catalog.npz": b"x"}, {"../manifest.json": b"{}", "manifest.json": b"{}"}])
def test_an_archive_without_a_manifest_or_with_an_escaping_member_is_refused(
        deps: ControlDeps, members: dict[str, bytes]) -> None:
    deps.s3.put_object(Bucket=BUCKET, Key=SOURCE, Body=archive(members))
    with pytest.raises(ArtifactMismatchError):
        control_tasks.publish({"model_artifacts": f"s3://{BUCKET}/{SOURCE}"}, deps)
    listed = deps.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/")
    assert "Contents" not in listed  # nothing half-published


@pytest.mark.parametrize(("servable_by", "image", "refused"), [
    (["2.19"], "763104351884.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-inference:2.19-cpu", False),
    (["2.19"], "763104351884.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-inference:2.18-cpu", True),
    ([], "763104351884.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-inference:2.19-cpu", True),
    (None, "763104351884.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-inference:2.18-cpu", False),  # older version
    (["2.19"], "123456789012.dkr.ecr.eu-west-1.amazonaws.com/our-own-tower:7", False),  # the operator's image
])
def test_the_endpoint_is_created_only_with_an_image_that_loads_the_user_tower(
        deps: ControlDeps, servable_by: list[str] | None, image: str, refused: bool) -> None:
    """Issue 20 #8: the export records the TF Serving versions that load its graph; a hot swap must not create an
    endpoint whose container cannot serve it (it would fail its health check only after minutes of billing)."""
    deps.sagemaker = boto3.client("sagemaker", region_name=REGION)
    deps.user_tower_image, deps.user_tower_role_arn = image, "arn:aws:iam::123456789012:role/tower"
    deps.instance_type = "ml.c5.large"  # moto 5.2.5's enum predates ml.c7i
    if servable_by is not None:
        deps.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/versions/v5/user_tower/tf_serving.json",
                           Body=json.dumps({"servable_by": servable_by}).encode())
    event = {"action": "deploy_endpoint", "endpoint": "tb-user-tower-v5", "version": "v5"}
    if refused:
        with pytest.raises(ArtifactMismatchError, match="set UserTowerTfVersion"):
            control_tasks.handle(event, deps)
        assert deps.sagemaker.list_models()["Models"] == []
    else:
        assert control_tasks.handle(event, deps)["endpoint"] == "tb-user-tower-v5"
        assert deps.sagemaker.describe_model(ModelName="tb-user-tower-v5")["PrimaryContainer"]["Image"] == image
