"""What the control tasks (``control_tasks``, ``endpoint_tasks``) work with: the clients and names of the stack, and
reading a version's JSON files from S3."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tastebud.adapters.aws.s3_artifacts import S3ArtifactStore
from tastebud.errors import ArtifactMismatchError


@dataclass
class ControlDeps:
    s3: Any
    sagemaker: Any
    bucket: str
    prefix: str
    alias: str
    endpoint_prefix: str
    user_tower_image: str
    user_tower_role_arn: str
    instance_type: str = "ml.c7i.large"
    instance_count: int = 1
    chunk_size: int = 20_000
    stepfunctions: Any = None

    @property
    def store(self) -> S3ArtifactStore:
        return S3ArtifactStore(self.bucket, self.prefix, client=self.s3)


def read_manifest(deps: ControlDeps, version: str) -> dict[str, Any]:
    key = f"{deps.prefix}/versions/{version}/manifest.json"
    try:
        return dict(json.loads(deps.s3.get_object(Bucket=deps.bucket, Key=key)["Body"].read()))
    except Exception as exc:
        raise ArtifactMismatchError(f"version {version!r}: no readable s3://{deps.bucket}/{key} ({exc})") from exc


def read_json_object(deps: ControlDeps, key: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(deps.s3.get_object(Bucket=deps.bucket, Key=key)["Body"].read()))
    except Exception as exc:
        if str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) in ("NoSuchKey", "404"):
            return None
        raise
