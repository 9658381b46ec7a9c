"""Records every AWS call the code under test makes: (call site, IAM action, resource), for the IAM check
(tests/aws/test_iam_against_code.py).

A call is recorded where it leaves the process: botocore's ``BaseClient._make_api_call`` (every boto3 client,
whatever answers it: moto, a Stubber, a wire double) and opensearch-py's ``Transport.perform_request`` (SigV4
HTTP, authorised as ``es:ESHttp<Method>``). The call site is the innermost frame in the project's packages, as
``module:qualname``; the chain holds every project frame of the stack, outermost first, so the entry point (a
lifecycle task, the ingest handler, an API route) decides which function's role the call runs under.
Installed for the whole session by tests/conftest.py."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (ROOT / "layers" / "core" / "tastebud", ROOT / "training" / "tastebud_training")
# Operations whose IAM action is not ``<signing name>:<operation>`` (the Service Authorization Reference).
S3_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket", "HeadObject": "s3:GetObject",
    "HeadBucket": "s3:ListBucket", "CreateMultipartUpload": "s3:PutObject", "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject", "DeleteObjects": "s3:DeleteObject",
}


@dataclass(frozen=True)
class AwsCall:
    chain: tuple[str, ...]  # module:qualname of every project frame, outermost first
    action: str  # the IAM action that authorises the call
    target: str  # what it touched (bucket/key, table, endpoint, HTTP path), for messages


CALLS: set[AwsCall] = set()
_lock = threading.Lock()


def _chain(frame: FrameType | None) -> tuple[str, ...]:
    sites = []
    while frame is not None:
        filename = Path(frame.f_code.co_filename)
        if any(filename.is_relative_to(package) for package in PACKAGES):
            sites.append(f"{frame.f_globals.get('__name__', filename.stem)}:{frame.f_code.co_qualname}")
        frame = frame.f_back
    return tuple(reversed(sites))


def _record(action: str, target: str) -> None:
    chain = _chain(sys._getframe(2))
    if chain:  # calls made by the tests themselves (setup, assertions) are not the code's
        with _lock:
            CALLS.add(AwsCall(chain, action, target))


# DynamoDB authorises a transaction item by item (there is no dynamodb:TransactWriteItems action).
TRANSACTION_ITEMS = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
                     "ConditionCheck": "dynamodb:ConditionCheckItem"}


def iam_actions(signing_name: str, operation: str, params: dict[str, Any]) -> list[str]:
    """The IAM actions one API call needs, the implied ones included (SageMaker: tags on create need
    sagemaker:AddTags, a role handed to the service needs iam:PassRole)."""
    if signing_name == "s3":
        return [S3_ACTIONS.get(operation, f"s3:{operation}")]
    if operation == "TransactWriteItems":
        return sorted({TRANSACTION_ITEMS[kind] for item in params.get("TransactItems", []) for kind in item})
    actions = [f"{signing_name}:{operation}"]
    if signing_name == "sagemaker" and operation.startswith("Create") and params.get("Tags"):
        actions.append("sagemaker:AddTags")
    if "ExecutionRoleArn" in params or "RoleArn" in params:
        actions.append("iam:PassRole")
    return actions


def _target(params: dict[str, Any]) -> str:
    for keys in (("Bucket", "Key"), ("TableName",), ("EndpointName",), ("SecretId",), ("StreamName",),
                 ("stateMachineArn",), ("executionArn",), ("TrainingJobName",), ("ModelName",),
                 ("EndpointConfigName",)):
        if keys[0] in params:
            return "/".join(str(params.get(k, "")) for k in keys)
    return ""


# boto3's managed transfers run their S3 calls in s3transfer's worker threads, whose stacks hold no project frame:
# they are recorded where the code calls them (injected into S3 clients when the client class is created).
TRANSFERS = {"upload_file": "s3:PutObject", "upload_fileobj": "s3:PutObject", "download_file": "s3:GetObject",
             "download_fileobj": "s3:GetObject"}


def install() -> Callable[[], None]:
    """Wrap the exits; returns the function that restores them. Install before any S3 client class exists."""
    import boto3.s3.inject
    from botocore.client import BaseClient
    from opensearchpy.transport import Transport

    make_api_call = BaseClient._make_api_call
    perform_request = Transport.perform_request
    transfers = {name: getattr(boto3.s3.inject, name) for name in TRANSFERS}

    def recording_transfer(name: str) -> Callable[..., Any]:
        original = transfers[name]

        def transfer(self: Any, *args: Any, **kwargs: Any) -> Any:
            _record(TRANSFERS[name], "")
            return original(self, *args, **kwargs)

        return transfer

    for name in TRANSFERS:
        setattr(boto3.s3.inject, name, recording_transfer(name))

    def recording_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        for action in iam_actions(self.meta.service_model.signing_name, operation_name, api_params):
            _record(action, _target(api_params))
        return make_api_call(self, operation_name, api_params)

    def recording_request(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        _record(f"es:ESHttp{method.capitalize()}", url)
        return perform_request(self, method, url, *args, **kwargs)

    BaseClient._make_api_call = recording_api_call  # type: ignore[method-assign]
    Transport.perform_request = recording_request  # type: ignore[method-assign]

    def restore() -> None:
        BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
        Transport.perform_request = perform_request  # type: ignore[method-assign]
        for name, original in transfers.items():
            setattr(boto3.s3.inject, name, original)

    return restore
