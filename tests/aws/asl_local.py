"""Run statemachines/*.asl.json in npm's aws-local-stepfunctions (tests/aws/asl_local_runner.mjs), with Task answers
SHAPED FROM BOTOCORE'S SERVICE MODELS.

Why a second interpreter: moto's port of LocalStack's interpreter answers what the code expects (a training job is
Completed at once, with every field). aws-local-stepfunctions applies AWS's path semantics: a ResultSelector,
Parameters, Choice or Fail path that points at nothing raises ``States.Runtime``, which no Retry or Catch
(``States.ALL`` included) matches, so the execution fails on the spot, as on AWS.

Answers (``result`` / ``error``):
  - ``sdk_response(service, operation, **members)``: the operation's output shape from botocore's JSON model. Required
    members are always there (placeholders when the scenario does not care), optional ones ONLY when given; unknown
    members, wrong types and enum values outside the model raise. What a real InProgress DescribeTrainingJob lacks
    (FinalMetricDataList, TrainingEndTime, ...) is therefore absent unless a scenario adds it.
  - ``lambda_result(payload)``: ``arn:aws:states:::lambda:invoke``'s result: Lambda's Invoke output members plus the
    function's JSON ``Payload``; ``function_error`` the error of a function that raised (Error = its errorType).
  - ``sdk_error(prefix, service, operation, code)``: the error name Step Functions gives a service error: for the
    ``aws-sdk:`` integrations ``<Service>.<ErrorName>`` with an ``Exception`` suffix added when the API's name lacks
    it (Step Functions developer guide, "AWS SDK service integrations"); the code must be one of the operation's
    modeled errors or a common AWS error (throttling, internal failure).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.model import Shape, StructureShape
from botocore.session import get_session

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("asl_local_runner.mjs")
SCRIPT_TIMEOUT_S = 60
# Errors every AWS query/JSON API may answer without listing them per operation (botocore's retry handler and the
# AWS "common errors" page): throttling and server-side failures.
COMMON_ERRORS = frozenset({"ThrottlingException", "Throttling", "InternalFailure", "ServiceUnavailable",
                           "RequestLimitExceeded"})
# Step Functions' own names for the Lambda integration's client-side failures (not in Lambda's API model):
# "Handle Lambda service exceptions" in the Step Functions developer guide.
LAMBDA_CLIENT_ERRORS = frozenset({"ClientExecutionTimeoutException", "SdkClientException", "AWSLambdaException"})
NOW = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)

_session = get_session()


def _model(service: str) -> Any:
    return _session.get_service_model(service)


def _placeholder(shape: Shape, path: str) -> Any:
    """A value for a REQUIRED member the scenario does not set."""
    if isinstance(shape, StructureShape):
        return _structure(shape, {}, path)
    kind = shape.type_name
    if kind == "list":
        return []
    if kind == "map":
        return {}
    if kind == "string":
        enum = shape.enum
        return enum[0] if enum else f"{path.rsplit('.', 1)[-1]}-placeholder"
    if kind == "timestamp":
        return NOW.isoformat().replace("+00:00", "Z")
    if kind in ("integer", "long"):
        return 1
    if kind in ("float", "double"):
        return 0.0
    if kind == "boolean":
        return False
    if kind == "blob":
        return ""
    raise TypeError(f"{path}: no placeholder for a {kind}")


def _value(shape: Shape, value: Any, path: str) -> Any:
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            raise TypeError(f"{path}: {shape.name} is a structure, not {type(value).__name__}")
        return _structure(shape, value, path)
    if kind == "list":
        if not isinstance(value, list):
            raise TypeError(f"{path}: a list, not {type(value).__name__}")
        return [_value(shape.member, item, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            raise TypeError(f"{path}: a map, not {type(value).__name__}")
        return {k: _value(shape.value, v, f"{path}.{k}") for k, v in value.items()}
    if kind == "string":
        if not isinstance(value, str):
            raise TypeError(f"{path}: a string, not {type(value).__name__}")
        if shape.enum and value not in shape.enum:
            raise ValueError(f"{path}: {value!r} is not one of botocore's {shape.name} values {shape.enum}")
        return value
    if kind == "timestamp":
        if isinstance(value, datetime):
            return value.isoformat().replace("+00:00", "Z")
        if not isinstance(value, str):
            raise TypeError(f"{path}: a timestamp, not {type(value).__name__}")
        return value
    if kind in ("integer", "long") and (not isinstance(value, int) or isinstance(value, bool)):
        raise TypeError(f"{path}: an integer, not {type(value).__name__}")
    if kind in ("float", "double") and not isinstance(value, (int, float)):
        raise TypeError(f"{path}: a number, not {type(value).__name__}")
    if kind == "boolean" and not isinstance(value, bool):
        raise TypeError(f"{path}: a boolean, not {type(value).__name__}")
    return value


def _structure(shape: StructureShape, given: dict[str, Any], path: str) -> dict[str, Any]:
    unknown = sorted(set(given) - set(shape.members))
    if unknown:
        raise KeyError(f"{path}: {unknown} are not members of botocore's {shape.name}")
    required = set(shape.required_members)
    built: dict[str, Any] = {}
    for name, member in shape.members.items():  # the model's member order, like a real response
        if name in given:
            built[name] = _value(member, given[name], f"{path}.{name}")
        elif name in required:
            built[name] = _placeholder(member, f"{path}.{name}")
    return built


def sdk_response(service: str, operation: str, **members: Any) -> dict[str, Any]:
    """``operation``'s output per botocore's model: required members always, optional ones only when given."""
    shape = _model(service).operation_model(operation).output_shape
    if shape is None:
        if members:
            raise KeyError(f"{service}.{operation} has no output members")
        return {}
    return _structure(shape, members, f"{service}.{operation}")


def result(service: str, operation: str, **members: Any) -> dict[str, Any]:
    return {"result": sdk_response(service, operation, **members)}


def lambda_result(payload: Any, *, match: dict[str, Any] | None = None) -> dict[str, Any]:
    """``arn:aws:states:::lambda:invoke``: Invoke's output (StatusCode, ExecutedVersion) with the decoded Payload,
    and the metadata Step Functions adds."""
    invoke = sdk_response("lambda", "Invoke", StatusCode=200, ExecutedVersion="$LATEST")
    answer: dict[str, Any] = {"result": {**invoke, "Payload": payload,
                                         "SdkHttpMetadata": {"HttpStatusCode": 200},
                                         "SdkResponseMetadata": {"RequestId": "00000000-0000-0000-0000-000000000000"}}}
    if match is not None:
        answer["match"] = match
    return answer


def function_error(error_type: str, message: str, *, match: dict[str, Any] | None = None) -> dict[str, Any]:
    """A function that raised: Step Functions' Error is its errorType, the Cause the error payload (JSON)."""
    cause = json.dumps({"errorMessage": message, "errorType": error_type, "requestId": "r-1", "stackTrace": []})
    answer: dict[str, Any] = {"error": error_type, "cause": cause}
    if match is not None:
        answer["match"] = match
    return answer


def sdk_error(prefix: str, service: str, operation: str, code: str, message: str = "") -> dict[str, Any]:
    """A service error as a Task state sees it (``<prefix>.<Code>[Exception]``), ``code`` checked against the model."""
    operation_model = _model(service).operation_model(operation)
    modeled = {shape.name for shape in operation_model.error_shapes}
    allowed = modeled | COMMON_ERRORS | (LAMBDA_CLIENT_ERRORS if service == "lambda" else set())
    if code not in allowed:
        raise ValueError(f"{code} is not an error of {service}.{operation} (modeled: {sorted(modeled)})")
    name = code if code.endswith("Exception") else f"{code}Exception"
    return {"error": f"{prefix}.{name}",
            "cause": f"{message or code} (Service: {prefix}, Status Code: 400, Error Code: {code})"}


def node() -> str:
    found = shutil.which("node")
    if found is None:
        raise RuntimeError("node is not on PATH (make test installs node_modules with npm; node comes with it)")
    return found


def render(name: str, substitutions: dict[str, str]) -> dict[str, Any]:
    text = (ROOT / "statemachines" / f"{name}.asl.json").read_text()
    for key, value in substitutions.items():
        text = text.replace("${" + key + "}", value)
    assert "${" not in text.replace("$$.", ""), "an unsubstituted ${...} is left"
    return dict(json.loads(text))


def execute(definition: dict[str, Any], execution_input: dict[str, Any], answers: dict[str, list[dict[str, Any]]],
            *, name: str = "run-1", machine: str = "machine") -> dict[str, Any]:
    """One execution; every scripted answer must be used (a left-over one means the path was not the one meant)."""
    arn = f"arn:aws:states:eu-west-1:123456789012:execution:{machine}:{name}"
    context = {"Execution": {"Id": arn, "Name": name, "Input": execution_input,
                             "StartTime": NOW.isoformat().replace("+00:00", "Z"),
                             "RoleArn": "arn:aws:iam::123456789012:role/sfn"},
               "StateMachine": {"Id": arn.replace(":execution:", ":stateMachine:").rsplit(":", 1)[0],
                                "Name": machine}}
    scenario = {"definition": definition, "input": execution_input, "context": context, "answers": answers}
    completed = subprocess.run([node(), str(RUNNER)], input=json.dumps(scenario), capture_output=True, text=True,
                               cwd=ROOT, timeout=SCRIPT_TIMEOUT_S, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"asl_local_runner.mjs failed ({completed.returncode}): {completed.stderr[-3000:]}")
    return dict(json.loads(completed.stdout))
