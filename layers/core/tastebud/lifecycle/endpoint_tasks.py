"""The user tower's SageMaker endpoint, per version: deploy (Model + EndpointConfig + Endpoint, idempotent), describe
(the ASL polls until InService), delete a new one that never went live, clean up the stack's others. Control tasks
(``control_tasks.ACTIONS``)."""

from __future__ import annotations

import re
from typing import Any

from tastebud.adapters.aws.live_pointer import read_live
from tastebud.errors import ArtifactMismatchError
from tastebud.lifecycle.control_deps import ControlDeps, read_json_object


def slug(version: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", version).strip("-").lower()


def endpoint_name(prefix: str, version: str) -> str:
    """SageMaker names: <= 63 chars of [a-zA-Z0-9-]."""
    return f"{prefix}-{slug(version)}"[:63].rstrip("-")


def _ignore_existing(call: Any, **kwargs: Any) -> None:
    try:
        call(**kwargs)
    except Exception as exc:
        message = str(exc)
        if "already exist" not in message and "Cannot create already existing" not in message:
            raise


# The AWS Deep Learning Container for TF Serving: <registry>/tensorflow-inference:<major.minor>-cpu...
_TF_SERVING_IMAGE = re.compile(r"/tensorflow-inference:(\d+\.\d+)")


def _check_servable(deps: ControlDeps, version: str) -> None:
    """Refuse a user tower the configured TF Serving image cannot load: the export records the TF Serving versions
    whose op registry loads its graph (``user_tower/tf_serving.json``, ``servable_by``). Older versions without
    the record, and images of the operator's own (UserTowerImageUri), are not checked."""
    image = _TF_SERVING_IMAGE.search(deps.user_tower_image)
    record = read_json_object(deps, f"{deps.prefix}/versions/{version}/user_tower/tf_serving.json")
    if image is None or record is None:
        return
    servable_by = [str(v) for v in record.get("servable_by") or []]
    if image.group(1) not in servable_by:
        raise ArtifactMismatchError(
            f"version {version}: its user tower loads in TF Serving {servable_by or 'no version'}, the endpoint image "
            f"is {deps.user_tower_image} (TF {image.group(1)}); set UserTowerTfVersion to one of them")


def deploy_endpoint(event: dict[str, Any], deps: ControlDeps) -> dict[str, Any]:
    name, version = event["endpoint"], event["version"]
    _check_servable(deps, version)
    model_data = f"s3://{deps.bucket}/{deps.prefix}/versions/{version}/user_tower/model.tar.gz"
    tags = [{"Key": "app", "Value": "tastebud"}, {"Key": "tastebud:version", "Value": version}]
    _ignore_existing(deps.sagemaker.create_model, ModelName=name, ExecutionRoleArn=deps.user_tower_role_arn,
                     EnableNetworkIsolation=True, Tags=tags,
                     PrimaryContainer={"Image": deps.user_tower_image, "ModelDataUrl": model_data,
                                       "Environment": {"SAGEMAKER_TFS_DEFAULT_MODEL_NAME": "user_tower"}})
    _ignore_existing(deps.sagemaker.create_endpoint_config, EndpointConfigName=name, Tags=tags,
                     ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name,
                                          "InstanceType": deps.instance_type,
                                          "InitialInstanceCount": deps.instance_count, "InitialVariantWeight": 1.0}])
    _ignore_existing(deps.sagemaker.create_endpoint, EndpointName=name, EndpointConfigName=name, Tags=tags)
    return {"endpoint": name, "model_data": model_data}


def describe_endpoint(event: dict[str, Any], deps: ControlDeps) -> dict[str, Any]:
    described = deps.sagemaker.describe_endpoint(EndpointName=event["endpoint"])
    return {"endpoint": event["endpoint"], "status": described["EndpointStatus"],
            "failure_reason": described.get("FailureReason", "")}


def _delete_endpoint(deps: ControlDeps, name: str) -> None:
    for call, key in ((deps.sagemaker.delete_endpoint, "EndpointName"),
                      (deps.sagemaker.delete_endpoint_config, "EndpointConfigName"),
                      (deps.sagemaker.delete_model, "ModelName")):
        try:
            call(**{key: name})
        except Exception as exc:
            if "Could not find" not in str(exc) and "does not exist" not in str(exc):
                raise


def delete_endpoint(event: dict[str, Any], deps: ControlDeps) -> dict[str, Any]:
    name, live = event.get("endpoint"), read_live(deps.s3, deps.bucket, deps.prefix)
    if not name or (live and live.endpoint == name):
        return {"deleted": None}
    _delete_endpoint(deps, name)
    return {"deleted": name}


def cleanup_endpoints(event: dict[str, Any], deps: ControlDeps) -> dict[str, Any]:
    live = read_live(deps.s3, deps.bucket, deps.prefix)
    names = [e["EndpointName"] for page in deps.sagemaker.get_paginator("list_endpoints").paginate(
        NameContains=deps.endpoint_prefix) for e in page["Endpoints"]]
    deleted = [n for n in names if n.startswith(deps.endpoint_prefix + "-") and (not live or n != live.endpoint)]
    for name in deleted:
        _delete_endpoint(deps, name)
    return {"deleted": deleted}
