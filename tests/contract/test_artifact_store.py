"""One ArtifactStore contract for the local directory and S3 (moto): versions, an atomic CURRENT flip, nothing
half-published, immutable versions, and fetch giving the same files back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tastebud.adapters.aws.s3_artifacts import S3ArtifactStore
from tastebud.artifacts import LocalArtifactStore
from tastebud.errors import ArtifactMismatchError, ArtifactsMissingError
from tastebud.ports import ArtifactStore


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="tastebud-artifacts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "store")
    return S3ArtifactStore("tastebud-artifacts", "artifacts", client=request.getfixturevalue("s3"))


def staged(tmp_path: Path, version: str, *, manifest: bool = True) -> Path:
    path = tmp_path / f"build-{version}"
    (path / "index").mkdir(parents=True)
    (path / "index" / "part.bin").write_bytes(version.encode() * 3)
    (path / "ranker.onnx").write_bytes(b"onnx-" + version.encode())
    if manifest:
        (path / "manifest.json").write_text("{}")
    return path


def test_is_an_artifact_store(store: Any) -> None:
    assert isinstance(store, ArtifactStore)


def test_publish_flips_current(store: Any, tmp_path: Path) -> None:
    store.publish(staged(tmp_path, "v1"), "v1")
    assert store.current_version() == "v1"
    store.publish(staged(tmp_path, "v2"), "v2", make_current=False)
    assert store.current_version() == "v1"
    store.publish(store.fetch("v2", tmp_path / "cache"), "v2")  # re-publishing a fetched version = roll to it
    assert store.current_version() == "v2"
    assert (store.fetch("v1", tmp_path / "cache") / "manifest.json").is_file()


def test_fetch_returns_the_same_files(store: Any, tmp_path: Path) -> None:
    store.publish(staged(tmp_path, "v1"), "v1")
    directory = store.fetch("v1", tmp_path / "cache")
    assert (directory / "index" / "part.bin").read_bytes() == b"v1v1v1"
    assert (directory / "ranker.onnx").read_bytes() == b"onnx-v1"


def test_missing_artifacts_say_which_command_builds_them(store: Any) -> None:
    with pytest.raises(ArtifactsMissingError, match="tastebud train"):
        store.current_version()


def test_a_version_without_manifest_is_never_published(store: Any, tmp_path: Path) -> None:
    with pytest.raises(ArtifactMismatchError):
        store.publish(staged(tmp_path, "v1", manifest=False), "v1")
    with pytest.raises(ArtifactsMissingError):
        store.current_version()


def test_versions_are_immutable(store: Any, tmp_path: Path) -> None:
    store.publish(staged(tmp_path, "v1"), "v1")
    with pytest.raises(ArtifactMismatchError, match="already exists"):
        store.publish(staged(tmp_path / "again", "v1"), "v1")


def test_unknown_version_is_missing(store: Any, tmp_path: Path) -> None:
    with pytest.raises(ArtifactsMissingError):
        store.fetch("v404", tmp_path / "cache")


def test_s3_uploads_the_manifest_last_then_current(s3: Any, tmp_path: Path) -> None:
    keys: list[str] = []
    s3.meta.events.register("before-parameter-build.s3.PutObject", lambda params, **kw: keys.append(params["Key"]))
    S3ArtifactStore("tastebud-artifacts", "artifacts/", client=s3).publish(staged(tmp_path, "v1"), "v1")
    assert keys[-2:] == ["artifacts/versions/v1/manifest.json", "artifacts/CURRENT"]
    assert set(keys[:-2]) == {"artifacts/versions/v1/index/part.bin", "artifacts/versions/v1/ranker.onnx"}


def test_s3_fetch_downloads_once_and_only_what_is_asked(s3: Any, tmp_path: Path) -> None:
    store = S3ArtifactStore("tastebud-artifacts", "artifacts", client=s3)
    store.publish(staged(tmp_path, "v1"), "v1")
    directory = store.fetch("v1", tmp_path / "cache", include=["ranker.onnx"])
    assert sorted(p.name for p in directory.iterdir()) == [".complete", "manifest.json", "ranker.onnx"]
    gets: list[str] = []
    s3.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **kw: gets.append(params["Key"]))
    assert store.fetch("v1", tmp_path / "cache") == directory and gets == []  # warm container: no download
