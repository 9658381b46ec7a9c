"""Run statemachines/*.asl.json in moto's Step Functions interpreter (a port of LocalStack's), no Docker.

Lambda tasks are answered by moto's "simple" Lambda backend from a queue that the test fills through the
documented ``/moto-api/static/lambda-simple/response`` endpoint; each answer is one task's ``Payload``, in
the order the interpreter invokes them. ``in_process`` instead runs the task functions' real handlers in
this process (against moto and the wire doubles), so executions, nested ones included, do the real work.
``DefinitionSubstitutions`` are applied exactly as SAM/CloudFormation
would (``${Name}`` -> value) before the definition is created.
"""

from __future__ import annotations

import io
import json
import threading
import time
import traceback
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import requests

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


def render(name: str, substitutions: dict[str, str]) -> str:
    text = (ROOT / "statemachines" / f"{name}.asl.json").read_text()
    for key, value in substitutions.items():
        text = text.replace("${" + key + "}", value)
    assert "${" not in text.replace("$$.", ""), "an unsubstituted ${...} is left"
    json.loads(text)
    return text


def role() -> str:
    iam = boto3.client("iam", region_name=REGION)
    return str(iam.create_role(RoleName="sfn-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"])


def function(name: str, role_arn: str) -> str:
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    client = boto3.client("lambda", region_name=REGION)
    return str(client.create_function(FunctionName=name, Runtime="python3.12", Role=role_arn, Handler="app.handler",
                                      Code={"ZipFile": code.getvalue()})["FunctionArn"])


def queue(*payloads: Any) -> None:
    response = requests.post("http://motoapi.amazonaws.com/moto-api/static/lambda-simple/response",
                             json={"results": [json.dumps(p) for p in payloads], "region": REGION}, timeout=5)
    assert response.status_code == 201, response.text


Handler = Callable[[dict[str, Any]], dict[str, Any]]


@contextmanager
def in_process(handlers: Mapping[str, Handler]) -> Iterator[list[tuple[str, str]]]:
    """While active, an invocation of a function named in ``handlers`` runs that handler on the JSON payload
    (one at a time: Map iterations run in interpreter threads) and answers its result; an exception becomes
    a Lambda function error (``FunctionError: Unhandled``), as on AWS. Yields the (function, action) calls.

    moto 5.2.5 has no documented hook for this: it replaces ``LambdaSimpleBackend.invoke`` (the no-Docker
    backend's answer-from-the-queue method) for the duration, and restores it."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    original = LambdaSimpleBackend.invoke
    lock, calls = threading.Lock(), []

    def invoke(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
               response_headers: Any) -> bytes | None:
        name = function_name.split(":function:")[-1].split(":")[0]
        handler = handlers.get(name)
        if handler is None:
            return original(self, function_name, qualifier, body, headers, response_headers)
        event = json.loads(body or "{}")
        with lock:
            calls.append((name, str(event.get("action"))))
            try:
                result = handler(event)
            except Exception as exc:
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc),
                                   "stackTrace": traceback.format_exception(exc)}).encode()
        return json.dumps(result).encode()

    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        LambdaSimpleBackend.invoke = original  # type: ignore[method-assign]


def execute(definition: str, role_arn: str, execution_input: dict[str, Any], *, name: str,
            timeout: float = 30.0) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(name=f"sm-{name}", definition=definition, roleArn=role_arn)["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(execution_input))["executionArn"]
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return described_run(arn)


def described_run(arn: str) -> dict[str, Any]:
    """Status, output, error/cause, the states entered (in order) and the history of one execution."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    described = sfn.describe_execution(executionArn=arn)
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    return {"arn": arn, "status": described["status"], "output": json.loads(described.get("output") or "null"),
            "error": described.get("error"), "cause": described.get("cause"), "states": entered, "events": events}
