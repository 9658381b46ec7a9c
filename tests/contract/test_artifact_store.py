"""ArtifactStore contract for the local adapter: versions, atomic CURRENT flip, nothing half-published."""

from __future__ import annotations

from pathlib import Path

import pytest

from tastebud.artifacts import LocalArtifactStore
from tastebud.errors import ArtifactMismatchError, ArtifactsMissingError
from tastebud.ports import ArtifactStore


def staged(store: LocalArtifactStore, version: str) -> Path:
    path = store.staging_dir(version)
    (path / "manifest.json").write_text("{}")
    return path


def test_publish_flips_current(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    assert isinstance(store, ArtifactStore)
    store.publish(staged(store, "v1"), "v1")
    assert store.current_version() == "v1"
    store.publish(staged(store, "v2"), "v2", make_current=False)
    assert store.current_version() == "v1"
    store.publish(store.fetch("v2", tmp_path), "v2")
    assert store.current_version() == "v2"
    assert (store.fetch("v1", tmp_path) / "manifest.json").is_file()


def test_missing_artifacts_say_which_command_builds_them(tmp_path: Path) -> None:
    with pytest.raises(ArtifactsMissingError, match="tastebud train"):
        LocalArtifactStore(tmp_path).current_version()


def test_a_version_without_manifest_is_never_published(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    half = store.staging_dir("v1")
    with pytest.raises(ArtifactMismatchError):
        store.publish(half, "v1")
    with pytest.raises(ArtifactsMissingError):
        store.current_version()


def test_versions_are_immutable(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    store.publish(staged(store, "v1"), "v1")
    with pytest.raises(ArtifactMismatchError, match="already exists"):
        store.publish(staged(store, "v1"), "v1")
