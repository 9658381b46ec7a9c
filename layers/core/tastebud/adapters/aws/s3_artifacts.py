"""ArtifactStore on S3, mirroring LocalArtifactStore's layout under a prefix:

    s3://<bucket>/<prefix>/CURRENT                         the live version's name (one small object)
    s3://<bucket>/<prefix>/versions/<version>/manifest.json
    s3://<bucket>/<prefix>/versions/<version>/<files ...>

``publish`` uploads every file, the manifest LAST, then writes CURRENT: a reader that follows CURRENT never
sees a version without its manifest, and a version without a manifest is never current. S3 PUTs of one
key are atomic and reads after writes are strongly consistent, so flipping CURRENT is the atomic switch.
``fetch`` downloads a version into ``<destination>/versions/<version>/`` once; a marker file written after
the last download makes warm Lambda containers (same /tmp) reuse it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import Any

from tastebud.artifacts import CURRENT, MANIFEST
from tastebud.errors import ArtifactMismatchError, ArtifactsMissingError, DependencyError

COMPLETE_MARKER = ".complete"


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code")) if isinstance(response, dict) else ""


class S3ArtifactStore:
    def __init__(self, bucket: str, prefix: str, *, client: Any) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts)) if self.prefix else "/".join(parts)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}/"

    def current_version(self) -> str:
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(CURRENT))["Body"].read()
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404", "NoSuchBucket"):
                raise ArtifactsMissingError(
                    f"no {CURRENT} under {self.uri}; upload `tastebud train` output with "
                    "`aws s3 sync ARTIFACTS/ <ArtifactsS3Uri>` (docs/DEPLOY.md)") from exc
            raise DependencyError("artifacts", f"reading {self.uri}{CURRENT}: {exc}") from exc
        return body.decode().strip()

    def _list(self, version: str) -> list[str]:
        prefix = self._key("versions", version) + "/"
        keys: list[str] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"][len(prefix):] for obj in page.get("Contents", []))
        return keys

    def fetch(self, version: str, destination: Path, *, include: Collection[str] | None = None) -> Path:
        """Download the version (only the top-level files/folders in ``include`` when given) and return its dir."""
        target = destination / "versions" / version
        if (target / COMPLETE_MARKER).is_file():
            return target
        try:
            names = self._list(version)
        except Exception as exc:
            raise DependencyError("artifacts", f"listing {self.uri}versions/{version}/: {exc}") from exc
        if MANIFEST not in names:
            raise ArtifactsMissingError(f"artifact version {version!r} has no {MANIFEST} under {self.uri}")
        if include is not None:
            wanted = set(include) | {MANIFEST}
            names = [n for n in names if n.split("/", 1)[0] in wanted]
        staging = destination / "versions" / f".download-{version}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            for name in names:
                path = staging / name
                path.parent.mkdir(parents=True, exist_ok=True)
                self._client.download_file(self.bucket, self._key("versions", version, name), str(path))
        except Exception as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise DependencyError("artifacts", f"downloading {self.uri}versions/{version}/: {exc}") from exc
        (staging / COMPLETE_MARKER).write_text(version)
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, target)
        return target

    def publish(self, source: Path, version: str, *, make_current: bool = True) -> None:
        if not (source / MANIFEST).is_file():
            raise ArtifactMismatchError(f"refusing to publish {source}: it has no {MANIFEST}")
        if self._list(version):
            marker = source / COMPLETE_MARKER
            if marker.is_file() and marker.read_text() == version:  # our own fetched copy: just flip CURRENT
                if make_current:
                    self.make_current(version)
                return
            raise ArtifactMismatchError(f"artifact version {version!r} already exists under {self.uri}")
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.name != COMPLETE_MARKER)
        files.sort(key=lambda p: p.relative_to(source).as_posix() == MANIFEST)  # manifest last
        for path in files:
            self._client.upload_file(str(path), self.bucket,
                                     self._key("versions", version, path.relative_to(source).as_posix()))
        if make_current:
            self.make_current(version)

    def make_current(self, version: str) -> None:
        if MANIFEST not in self._list(version):
            raise ArtifactsMissingError(f"artifact version {version!r} has no {MANIFEST} under {self.uri}")
        self._client.put_object(Bucket=self.bucket, Key=self._key(CURRENT), Body=(version + "\n").encode(),
                                ContentType="text/plain")
