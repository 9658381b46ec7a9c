"""Check 8 of issue 20: every AWS action each function, state machine and job performs is granted by its role on
the resources it names, and nothing else is (tests/aws/iam_grants.py is the declared table).

- template == table: every role's statements in template.yaml, exactly.
- code => table: every AWS call the code made in the AWS suites (recorded by tests/aws_calls.py where it leaves
  the process: botocore and opensearch-py) is granted to the function whose entry point made it; every grant of
  a function is used by some call, or the table says why it stays. Implied permissions are counted (tags on a
  SageMaker create need sagemaker:AddTags, a role handed over needs iam:PassRole, a DynamoDB transaction is
  authorised item by item).
- ASL => table: each state machine may invoke exactly the functions and SageMaker operations its Task states use
  and pass exactly the roles they hand over.
Resources are compared as written in the template; the code side is checked per action (the tests' bucket and
table names are not the stack's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import aws_calls
import pytest
from iam_grants import GRANTS, NOT_CALLED_BY_CODE, OPERATOR, PRINCIPAL_RULES

from helpers import load_template

ROOT = Path(__file__).resolve().parents[2]
# The suites whose calls are recorded: every AWS entry point of the code runs in them.
SOURCE_TESTS = ("tests/aws/test_aws_service.py", "tests/aws/test_aws_ingest.py", "tests/aws/test_lifecycle_tasks.py",
                "tests/aws/test_control_task_artifacts.py", "tests/aws/test_training_hot_swap.py",
                "tests/aws/test_dynamodb_seed.py", "tests/aws/test_aws_preflight.py", "tests/aws/test_events_replay.py",
                "tests/contract")
FUNCTIONS = ("RecommendFunction", "StockFunction", "IngestFunction", "IndexTaskFunction", "ControlTaskFunction")
# Step Functions' optimized SageMaker integrations: the IAM policies AWS documents for request-response tasks.
SAGEMAKER_TASK_EXTRA = ("sagemaker:AddTags",)
JOBS_BUCKET = "tb-artifacts"  # test_template.rendered_jobs renders the jobs for this bucket

Grants = dict[str, dict[str, set[str]]]


def _written(value: Any) -> str:
    """An intrinsic as the table writes it."""
    if isinstance(value, str):
        return value
    if "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    if "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return "${" + (target if isinstance(target, str) else ".".join(target)) + "}"
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    raise AssertionError(f"unexpected resource expression {value!r}")


def _add_statements(grants: dict[str, set[str]], document: dict[str, Any], where: str) -> None:
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow", f"{where}: only Allow statements are modelled"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            grants[action] |= {_written(r) for r in resources}


def template_grants() -> Grants:
    found: Grants = {}
    for name, resource in load_template()["Resources"].items():
        properties = resource.get("Properties", {})
        grants: dict[str, set[str]] = defaultdict(set)
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for policy in properties.get("Policies", []):
                if isinstance(policy, dict) and "Statement" in policy:
                    _add_statements(grants, policy, name)
                elif isinstance(policy, dict) and set(policy) == {"LambdaInvokePolicy"}:
                    function = _written(policy["LambdaInvokePolicy"]["FunctionName"])
                    grants["lambda:InvokeFunction"].add(f"LambdaInvoke({function})")
                else:
                    raise AssertionError(f"{name}: policy {policy!r} is not modelled by this check")
        elif resource["Type"] == "AWS::IAM::Role":
            assert not properties.get("ManagedPolicyArns"), f"{name}: managed policies are not modelled"
            for policy in properties.get("Policies", []):
                _add_statements(grants, policy["PolicyDocument"], name)
        else:
            continue
        found[name] = dict(grants)
    return found


def test_every_role_of_the_template_grants_exactly_the_declared_table() -> None:
    written = template_grants()
    assert set(written) == set(GRANTS), "roles in the template vs the table"
    differences = {}
    for role, grants in GRANTS.items():
        declared = {(action, resource) for action, resources in grants.items() for resource in resources}
        actual = {(action, resource) for action, resources in written[role].items() for resource in resources}
        if declared != actual:
            differences[role] = {"template only": sorted(actual - declared), "table only": sorted(declared - actual)}
    assert not differences, differences


def principals_of(chain: tuple[str, ...] | list[str]) -> tuple[str, ...] | None:
    for frame in chain:
        for pattern, principals in PRINCIPAL_RULES:
            if fnmatchcase(frame, pattern):
                return principals
    return None


@pytest.fixture(scope="module")
def recorded_calls(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """This session's calls when the source suites ran in it (the suite orders this test after them), else a run
    of the source suites of its own."""
    ran = {str(Path(str(item.path)).relative_to(ROOT)) for item in request.session.items}
    if all(any(path == source or path.startswith(source + "/") for path in ran) for source in SOURCE_TESTS):
        return [{"chain": list(call.chain), "action": call.action, "target": call.target} for call in aws_calls.CALLS]
    out = tmp_path_factory.mktemp("aws-calls") / "calls.json"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SOURCE_TESTS],
                   cwd=ROOT, env={**os.environ, "TASTEBUD_AWS_CALLS_OUT": str(out)}, check=False,
                   stdout=subprocess.DEVNULL)
    return list(json.loads(out.read_text()))


@pytest.mark.after_the_aws_suites
def test_every_aws_call_of_the_code_is_granted_to_the_role_it_runs_under(recorded_calls: list[dict[str, Any]]) -> None:
    undeclared, denied = set(), set()
    for call in recorded_calls:
        principals = principals_of(call["chain"])
        if principals is None:
            undeclared.add((call["chain"][-1], call["action"]))
            continue
        for principal in principals:
            allowed = OPERATOR if principal == "operator" else GRANTS[principal]
            if call["action"] not in allowed:
                denied.add((principal, call["action"], call["chain"][-1], call["target"]))
    assert not undeclared, f"AWS calls from code no PRINCIPAL_RULES entry assigns to a role: {sorted(undeclared)}"
    assert not denied, f"calls the role does not grant (role, action, site, target): {sorted(denied)}"


@pytest.mark.after_the_aws_suites
def test_every_grant_of_a_function_is_used_by_its_code(recorded_calls: list[dict[str, Any]]) -> None:
    used = {(principal, call["action"]) for call in recorded_calls
            for principal in (principals_of(call["chain"]) or ())}
    unused = {(function, action) for function in FUNCTIONS for action in GRANTS[function]
              if (function, action) not in used and (function, action) not in NOT_CALLED_BY_CODE}
    assert not unused, f"granted but never called (remove, or say why in NOT_CALLED_BY_CODE): {sorted(unused)}"
    operator_unused = OPERATOR - {call["action"] for call in recorded_calls
                                  if principals_of(call["chain"]) == ("operator",)}
    assert operator_unused <= {"cloudformation:DescribeStackResource", "s3:PutObject", "s3:GetObject",
                               "s3:ListBucket"}, operator_unused  # the runbook's aws CLI lines, not our code


def _states(definition: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for state in definition["States"].values():
        found.append(state)
        for nested in (state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])):
            if nested:
                found.extend(_states(nested))
    return found


def asl_grants(machine: dict[str, Any]) -> dict[str, set[str]]:
    """What a state machine's Task states need, from its definition and substitutions."""
    properties = machine["Properties"]
    definition = json.loads((ROOT / properties["DefinitionUri"]).read_text())
    substitutions = {key: _written(value) for key, value in properties["DefinitionSubstitutions"].items()}

    def resolve(text: str) -> str:
        for key, value in substitutions.items():
            text = text.replace("${" + key + "}", value)
        return text

    needs: dict[str, set[str]] = defaultdict(set)
    for state in _states(definition):
        if state["Type"] != "Task":
            continue
        resource, parameters = state["Resource"], state.get("Parameters", {})
        if resource == "arn:aws:states:::lambda:invoke":
            function = resolve(parameters["FunctionName"]).removeprefix("${").removesuffix("}").removesuffix(".Arn")
            needs["lambda:InvokeFunction"].add(f"LambdaInvoke(${{{function}}})")
        elif resource.startswith("arn:aws:states:::sagemaker:"):
            operation = resource.rsplit(":", 1)[1]
            needs[f"sagemaker:{operation[0].upper()}{operation[1:]}"] |= set()
            for extra in SAGEMAKER_TASK_EXTRA:
                needs[extra] |= set()
            if "RoleArn" in parameters:
                needs["iam:PassRole"].add(resolve(parameters["RoleArn"]))
        elif resource.startswith("arn:aws:states:::aws-sdk:"):
            service, operation = resource.removeprefix("arn:aws:states:::aws-sdk:").split(":")
            needs[f"{service}:{operation[0].upper()}{operation[1:]}"] |= set()
        else:
            raise AssertionError(f"Task resource {resource} is not modelled by this check")
    return needs


@pytest.mark.parametrize("name", ["IndexHotSwapStateMachine", "TrainingStateMachine"])
def test_each_state_machine_may_do_exactly_what_its_tasks_do(name: str) -> None:
    machine = load_template()["Resources"][name]
    needs = asl_grants(machine)
    granted = {action: set(resources) for action, resources in GRANTS[name].items()}
    logging = {action for action in granted if action.startswith("logs:")}
    assert machine["Properties"].get("Logging") and logging, f"{name}: vended log delivery without Logging"
    assert set(granted) - logging == set(needs), (sorted(set(granted) - logging - set(needs)),
                                                  sorted(set(needs) - set(granted)))
    for action in ("lambda:InvokeFunction", "iam:PassRole"):
        assert granted.get(action, set()) == needs.get(action, set()), action


def _s3_prefix(uri: str) -> str:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    assert bucket == JOBS_BUCKET, uri
    return "${ArtifactsBucket.Arn}/" + key.rsplit("/", 1)[0].rstrip("/") + "/" if key.endswith(".json") else \
        "${ArtifactsBucket.Arn}/" + key.rstrip("/") + "/"


def _covered(prefix: str, patterns: list[str]) -> bool:
    return any(fnmatchcase(prefix + "part-0000.parquet", pattern) for pattern in patterns)


def test_the_job_role_writes_exactly_where_the_rendered_jobs_write_and_reads_what_they_read() -> None:
    """The SageMaker jobs as the SDK renders them (jobs.json): the role the state machine hands them may put
    (and, for the ETL's overwrite, delete) under each job's outputs and nowhere else, and may read every input."""
    from test_template import etl_output_prefix, rendered_jobs

    jobs = rendered_jobs()
    etl_arguments = [str(a) for a in jobs["etl"]["AppSpecification"]["ContainerArguments"]]
    etl_inputs = [etl_arguments[i + 1] for i, a in enumerate(etl_arguments) if a in ("--lake", "--catalog")]
    outputs = {_s3_prefix(etl_output_prefix(jobs)),
               *(_s3_prefix(o["S3Output"]["S3Uri"]) for o in jobs["embeddings"]["ProcessingOutputConfig"]["Outputs"]),
               _s3_prefix(jobs["training"]["OutputDataConfig"]["S3OutputPath"])}
    inputs = {*(_s3_prefix(u) for u in etl_inputs),
              *(_s3_prefix(i["S3Input"]["S3Uri"]) for kind in ("etl", "embeddings")
                for i in jobs[kind].get("ProcessingInputs", [])),
              *(_s3_prefix(c["DataSource"]["S3DataSource"]["S3Uri"]) for c in jobs["training"]["InputDataConfig"])}
    role = GRANTS["TrainingJobRole"]
    assert {f"{prefix}*" for prefix in outputs} == set(role["s3:PutObject"]), (sorted(outputs), role["s3:PutObject"])
    assert set(role["s3:DeleteObject"]) == {f"{_s3_prefix(etl_output_prefix(jobs))}*"}
    unreadable = sorted(prefix for prefix in inputs if not _covered(prefix, role["s3:GetObject"]))
    assert not unreadable, f"inputs the job role may not read: {unreadable}"
