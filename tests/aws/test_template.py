"""Static checks of template.yaml, samconfig.toml and docs/DEPLOY.md that cfn-lint does not make.

- Defect 1: a circular dependency that exists only after the SAM transform (scripts/sam_graph.py, run in
  .venv-sam where samtranslator lives; also `make lint-sam-graph`).
- Defect 4: `sam deploy --config-env <env>` needs every parameter without a Default.
- Defects 2 and 9: who may write to the k-NN domain, and what the stock function may do.
- Defect 9: the runbook uploads CURRENT after everything else.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import sam_graph  # noqa: E402

from helpers import load_template  # noqa: E402

SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"


def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


# ---------------------------------------------------------------- defect 1: cycles after the transform
def test_graph_follows_ref_getatt_sub_and_depends_on() -> None:
    resources = {"A": {"Properties": {"X": {"Fn::Sub": "arn:${B.Arn}/${AWS::Region}/${Local}"},
                                      "Y": {"Fn::Sub": ["${Local}", {"Local": {"Ref": "C"}}]}}},
                 "B": {"Properties": {"P": {"Fn::GetAtt": ["C", "Arn"]}}},
                 "C": {"DependsOn": "A", "Properties": {}},
                 "D": {"Properties": {"Q": {"Ref": "A"}}}}
    graph = sam_graph.dependency_graph({"Resources": resources})
    assert graph == {"A": {"B", "C"}, "B": {"C"}, "C": {"A"}, "D": {"A"}}
    assert sam_graph.cycles(graph) == [["A", "B", "C"]]
    assert sam_graph.cycles({"A": {"B"}, "B": set()}) == []


CYCLIC = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: functions/recommend
      Policies:
        - Statement:
            - Effect: Allow
              Action: es:ESHttpGet
              Resource: !Sub ${Domain.Arn}/*
  Domain:
    Type: AWS::OpenSearchService::Domain
    Properties:
      AccessPolicies:
        Statement:
          - Effect: Allow
            Principal: {AWS: !GetAtt FnRole.Arn}
            Action: es:ESHttpGet
            Resource: "*"
"""


def run_sam_graph(path: Path) -> subprocess.CompletedProcess[str]:
    if not SAM_PYTHON.exists():
        pytest.skip("samtranslator lives in .venv-sam (pins pydantic 2.13; the dev venv pins 2.14): "
                    "`make .venv-sam/.installed` or `make lint`")
    return subprocess.run([str(SAM_PYTHON), str(ROOT / "scripts" / "sam_graph.py"), str(path)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_sam_graph_reports_a_cycle_only_the_transform_creates(tmp_path: Path) -> None:
    path = tmp_path / "cyclic.yaml"
    path.write_text(CYCLIC)
    result = run_sam_graph(path)
    assert result.returncode == 1, result.stderr
    assert "Domain <-> FnRole" in result.stdout  # FnRole exists only after the transform


def test_template_has_no_circular_dependency_after_the_transform() -> None:
    result = run_sam_graph(ROOT / "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- defect 4: samconfig profiles
def test_every_deploy_profile_sets_the_parameters_without_default() -> None:
    parameters = template()["Parameters"]
    required = {name for name, spec in parameters.items() if "Default" not in spec}
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    profiles = {env: sections["deploy"]["parameters"] for env, sections in config.items()
                if isinstance(sections, dict) and "deploy" in sections}
    assert {"default", "prod"} <= set(profiles)
    for env, deploy in profiles.items():
        overrides = dict(token.split("=", 1) for token in shlex.split(deploy.get("parameter_overrides", "")))
        assert required <= set(overrides), f"{env}: sam deploy would ask for/fail on {required - set(overrides)}"
        assert set(overrides) <= set(parameters), f"{env}: unknown parameters {set(overrides) - set(parameters)}"
        for name, value in overrides.items():
            allowed = parameters[name].get("AllowedValues")
            assert allowed is None or value in [str(a) for a in allowed], (env, name, value)


# ---------------------------------------------------------------- defects 2 and 9: IAM
def statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for policy in resource["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            out.extend(policy["Statement"])
    return out


def es_grants(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """(action, resource Sub string) pairs of the es:ESHttp* grants of a function."""
    grants = []
    for statement in statements(resource):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            if action.startswith("es:"):
                grants.extend((action, str(target.get("Fn::Sub", target))) for target in targets)
    return grants


def test_only_the_index_builder_may_create_load_swap_or_delete_indices() -> None:
    resources = template()["Resources"]
    writers = {name for name, resource in resources.items()
               if resource["Type"] == "AWS::Serverless::Function"
               and any(a in ("es:ESHttpPut", "es:ESHttpDelete") for a, _ in es_grants(resource))}
    assert writers == {"IndexTaskFunction"}  # defect 2: somebody can PUT an index; nobody else can
    for name in ("RecommendFunction", "StockFunction"):
        for action, target in es_grants(resources[name]):
            assert not re.search(r"_bulk|_aliases|[.]Arn}/[*]$", target), (name, action, target)
    assert {t for _, t in es_grants(resources["RecommendFunction"])} == {
        "${SearchDomain.Arn}/${IndexAlias}-*/_search", "${SearchDomain.Arn}/${IndexAlias}/_search"}


def test_the_stock_function_has_only_stock_permissions() -> None:
    stock = statements(template()["Resources"]["StockFunction"])
    actions = {a for s in stock for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert actions == {"s3:GetObject", "s3:ListBucket", "es:ESHttpPost", "secretsmanager:GetSecretValue"}


def test_the_domain_policy_names_no_role_of_this_stack() -> None:
    domain = template()["Resources"]["SearchDomain"]["Properties"]["AccessPolicies"]
    assert "GetAtt" not in repr(domain) and "Role" not in repr(domain)


# ---------------------------------------------------------------- defect 9: the runbook's upload order
def test_deploy_runbook_uploads_current_last() -> None:
    text = (ROOT / "docs" / "DEPLOY.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    # Syncs of an artifact version (not of the ETL's catalog input): CURRENT must go last.
    syncs = [block for block in blocks if "aws s3 sync" in block and "ArtifactsS3Uri" in block]
    assert syncs, "DEPLOY.md has no `aws s3 sync` of the artifacts"
    for block in syncs:
        lines = [line for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]
        sync = next(i for i, line in enumerate(lines) if "aws s3 sync" in line)
        assert "--exclude CURRENT" in lines[sync] or "--exclude 'CURRENT'" in lines[sync], lines[sync]
        assert any("aws s3 cp" in line and "CURRENT" in line for line in lines[sync + 1:]), block
