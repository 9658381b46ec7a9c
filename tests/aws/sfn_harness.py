"""Run statemachines/*.asl.json in moto's Step Functions interpreter (a port of LocalStack's), no Docker.

Lambda tasks are answered by moto's "simple" Lambda backend from a queue that the test fills through the
documented ``/moto-api/static/lambda-simple/response`` endpoint; each answer is one task's ``Payload``, in
the order the interpreter invokes them. ``DefinitionSubstitutions`` are applied exactly as SAM/CloudFormation
would (``${Name}`` -> value) before the definition is created.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
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
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    return {"status": described["status"], "output": json.loads(described.get("output") or "null"),
            "error": described.get("error"), "cause": described.get("cause"), "states": entered, "events": events}
