"""Versioned artifacts: one directory per version, one manifest, and a CURRENT pointer that flips atomically.

Layout (the embedded ArtifactStore; the S3 adapter mirrors it under a prefix):
    ARTIFACTS/CURRENT                      name of the live version
    ARTIFACTS/versions/<version>/manifest.json
    ARTIFACTS/versions/<version>/{manifest.json, catalog.npz, users.npz, text_vectors.npy, index_vectors.npy,
                                  index/, user_tower.onnx, user_tower.int8.onnx, ranker.onnx, ...}
Training writes a staging directory and publishes it with a rename, so readers never see half a version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tastebud.errors import ArtifactMismatchError, ArtifactsMissingError

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
# The user tower: float32 as exported, and its int8 twin; the manifest's ``retrieval.user_tower`` names the served one.
USER_TOWER = "user_tower.onnx"
USER_TOWER_INT8 = "user_tower.int8.onnx"
BUILD_HINT = "build them with `tastebud train --data DIR --out ARTIFACTS` (or `make demo`)"


@dataclass(frozen=True)
class Manifest:
    """What a version contains and what it was built from; serving checks it before loading anything."""

    version: str
    model_version: str
    index_version: str
    feature_version: str
    created_at: float
    retrieval: dict[str, Any]
    ranker: dict[str, Any]
    data: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST
        if not path.is_file():
            raise ArtifactsMissingError(f"no {MANIFEST} in {directory}; {BUILD_HINT}")
        try:
            return cls(**json.loads(path.read_text()))
        except (TypeError, ValueError) as exc:
            raise ArtifactMismatchError(f"{path} is not a Tastebud manifest: {exc}") from exc


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in paths:
        with p.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


class LocalArtifactStore:
    """ArtifactStore on a local directory (the embedded adapter)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    def current_version(self) -> str:
        pointer = self.root / CURRENT
        if not pointer.is_file():
            raise ArtifactsMissingError(f"no trained artifacts in {self.root} (missing {CURRENT}); {BUILD_HINT}")
        return pointer.read_text().strip()

    def current_dir(self) -> Path:
        return self.fetch(self.current_version(), self.root)

    def fetch(self, version: str, destination: Path) -> Path:
        directory = self.versions_dir / version
        if not directory.is_dir():
            raise ArtifactsMissingError(f"artifact version {version!r} not found under {self.versions_dir}")
        return directory

    def staging_dir(self, version: str) -> Path:
        path = self.versions_dir / f".staging-{version}"
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def list_versions(self) -> list[Manifest]:
        """Published versions, oldest first (staging directories and unreadable manifests are skipped)."""
        manifests = []
        if self.versions_dir.is_dir():
            for directory in self.versions_dir.iterdir():
                if directory.is_dir() and not directory.name.startswith(".") and (directory / MANIFEST).is_file():
                    try:
                        manifests.append(Manifest.read(directory))
                    except ArtifactMismatchError:
                        continue
        return sorted(manifests, key=lambda m: (m.created_at, m.version))

    def set_current(self, version: str) -> None:
        """Point CURRENT at an already published version (rollback / roll forward), atomically."""
        self.fetch(version, self.root)
        tmp = self.root / f".{CURRENT}.tmp"
        tmp.write_text(version + "\n")
        os.replace(tmp, self.root / CURRENT)

    def publish(self, source: Path, version: str, *, make_current: bool = True) -> None:
        """Move a fully written directory into place, then flip CURRENT with an atomic rename."""
        target = self.versions_dir / version
        if not (source / MANIFEST).is_file():
            raise ArtifactMismatchError(f"refusing to publish {source}: it has no {MANIFEST}")
        if source != target:
            if target.exists():
                raise ArtifactMismatchError(f"artifact version {version!r} already exists")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        if make_current:
            self.set_current(version)
