"""Composition root of the lifecycle task functions: settings from the environment, clients, handlers."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tastebud.adapters.aws.local_endpoints import use_local_endpoints
from tastebud.lifecycle import control_tasks, index_tasks
from tastebud.settings import SettingsError

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class LifecycleSettings:
    artifacts_s3_uri: str
    index_alias: str
    opensearch_endpoint: str | None = None
    endpoint_prefix: str | None = None
    user_tower_image: str | None = None
    user_tower_role_arn: str | None = None
    user_tower_instance_type: str = "ml.c7i.large"
    user_tower_instance_count: int = 1
    region: str | None = None

    @property
    def bucket_and_prefix(self) -> tuple[str, str]:
        bucket, _, prefix = self.artifacts_s3_uri.removeprefix("s3://").partition("/")
        return bucket, prefix.strip("/")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, need: tuple[str, ...] = ()) -> LifecycleSettings:
        env = os.environ if environ is None else environ
        names = {"artifacts_s3_uri": "TASTEBUD_ARTIFACTS_S3_URI", "index_alias": "TASTEBUD_OPENSEARCH_INDEX_ALIAS",
                 "opensearch_endpoint": "TASTEBUD_OPENSEARCH_ENDPOINT", "endpoint_prefix": "TASTEBUD_ENDPOINT_PREFIX",
                 "user_tower_image": "TASTEBUD_USER_TOWER_IMAGE", "user_tower_role_arn": "TASTEBUD_USER_TOWER_ROLE_ARN"}
        missing = [names[n] for n in ("artifacts_s3_uri", "index_alias", *need) if not env.get(names[n])]
        if missing:
            raise SettingsError(f"lifecycle task needs {', '.join(missing)}")
        if not env["TASTEBUD_ARTIFACTS_S3_URI"].startswith("s3://"):
            raise SettingsError("TASTEBUD_ARTIFACTS_S3_URI must be s3://bucket/prefix/")
        return cls(**{field: env.get(var) or None for field, var in names.items()},  # type: ignore[arg-type]
                   user_tower_instance_type=env.get("TASTEBUD_USER_TOWER_INSTANCE_TYPE", "ml.c7i.large"),
                   user_tower_instance_count=int(env.get("TASTEBUD_USER_TOWER_INSTANCE_COUNT", "1")),
                   region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"))


def index_handler(deps: index_tasks.IndexDeps | None = None) -> Handler:
    built = [deps] if deps else []
    if deps is None:
        use_local_endpoints()

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if not built:
            import boto3

            from tastebud.composition.aws import opensearch_client

            settings = LifecycleSettings.from_env(need=("opensearch_endpoint",))
            session = boto3.session.Session(region_name=settings.region)
            bucket, prefix = settings.bucket_and_prefix
            assert settings.opensearch_endpoint and session.region_name
            client = opensearch_client(settings.opensearch_endpoint, session.region_name, session.get_credentials(),
                                       timeout=60.0)
            built.append(index_tasks.IndexDeps(opensearch=client, s3=session.client("s3"), bucket=bucket,
                                               prefix=prefix, alias=settings.index_alias,
                                               cache=Path("/tmp/tastebud/lifecycle")))
        return index_tasks.handle(event, built[0])

    return handle


def control_handler(deps: control_tasks.ControlDeps | None = None) -> Handler:
    built = [deps] if deps else []
    if deps is None:
        use_local_endpoints()

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if not built:
            import boto3

            settings = LifecycleSettings.from_env(need=("endpoint_prefix", "user_tower_image", "user_tower_role_arn"))
            session = boto3.session.Session(region_name=settings.region)
            bucket, prefix = settings.bucket_and_prefix
            assert settings.endpoint_prefix and settings.user_tower_image and settings.user_tower_role_arn
            built.append(control_tasks.ControlDeps(
                s3=session.client("s3"), sagemaker=session.client("sagemaker"), bucket=bucket, prefix=prefix,
                alias=settings.index_alias, endpoint_prefix=settings.endpoint_prefix,
                user_tower_image=settings.user_tower_image, user_tower_role_arn=settings.user_tower_role_arn,
                instance_type=settings.user_tower_instance_type, instance_count=settings.user_tower_instance_count,
                stepfunctions=session.client("stepfunctions")))
        return control_tasks.handle(event, built[0])

    return handle
