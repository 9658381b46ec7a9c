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
from functools import cache
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
    grants: list[tuple[str, str]] = []
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


# ================================================================ issue 20: what only AWS's own semantics reveal
# Rules come from authoritative data where it exists: cfn-lint's bundled CloudFormation resource schemas
# (.venv-sam), botocore's service models, the SageMaker SDK's rendering of the jobs (.venv-sagemaker).
CFN_SCHEMAS = next((ROOT / ".venv-sam").glob("lib/python3*/site-packages/cfnlint/data/schemas"), None)
SAGEMAKER_PYTHON = ROOT / ".venv-sagemaker" / "bin" / "python"
PSEUDO_PARAMETERS = {"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::URLSuffix",
                     "AWS::StackId", "AWS::NoValue", "AWS::NotificationARNs"}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resources_of(kind: str, resources: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    resources = template()["Resources"] if resources is None else resources
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def ref_target(value: Any) -> str | None:
    """The logical id a Ref / GetAtt names, else None."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(as_list(value["Fn::GetAtt"])[0])
    return None


def cfn_schema(kind: str) -> dict[str, Any]:
    if CFN_SCHEMAS is None:
        pytest.skip("cfn-lint's resource schemas live in .venv-sam (`make .venv-sam/.installed`; `make test` "
                    "builds it)")
    import json

    providers = json.loads((CFN_SCHEMAS / "providers" / "us-east-1.json").read_text())
    return dict(json.loads((CFN_SCHEMAS / "resources" / f"{providers[kind]}.json").read_text()))


@cache
def transformed() -> dict[str, Any]:
    """template.yaml after the SAM transform (samtranslator in .venv-sam; scripts/sam_graph.py)."""
    import json

    if not SAM_PYTHON.exists():
        pytest.skip("samtranslator lives in .venv-sam (`make .venv-sam/.installed`; `make test` builds it)")
    code = ("import json, sys; sys.path.insert(0, 'scripts'); import sam_graph; from pathlib import Path; "
            "print(json.dumps(sam_graph.translate(Path('template.yaml'))))")
    result = subprocess.run([str(SAM_PYTHON), "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout))


def depends_on(graph: dict[str, set[str]], source: str, target: str) -> bool:
    seen, todo = set(), [source]
    while todo:
        node = todo.pop()
        if node == target:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


# ---------------------------------------------------------------- #1 the OpenSearch service-linked role
def test_a_vpc_opensearch_domain_waits_for_the_service_linked_role_an_operator_may_have_the_stack_create() -> None:
    tpl = template()
    resources, graph = tpl["Resources"], sam_graph.dependency_graph(tpl)
    roles = {name: r for name, r in resources_of("AWS::IAM::ServiceLinkedRole").items()
             if r["Properties"]["AWSServiceName"] == "opensearchservice.amazonaws.com"}
    domains = {name: r for kind in ("AWS::OpenSearchService::Domain", "AWS::Elasticsearch::Domain")
               for name, r in resources_of(kind).items() if "VPCOptions" in r["Properties"]}
    assert domains
    for domain in domains:
        assert len(roles) == 1, f"{domain} is in a VPC: the account needs AWSServiceRoleForAmazonOpenSearchService"
        (role_name, role), = roles.items()
        # Created where it is absent only: an existing role makes the creation fail, so a parameter decides.
        condition = tpl["Conditions"][role["Condition"]]
        parameter = next(ref_target(v) for v in condition["Fn::Equals"] if ref_target(v))
        assert set(tpl["Parameters"][parameter]["AllowedValues"]) == {"true", "false"}
        assert role.get("DeletionPolicy") == "Retain"  # shared by every domain of the account
        assert depends_on(graph, domain, role_name), f"{domain} may be created before {role_name}"
        assert role_name not in as_list(resources[domain].get("DependsOn", [])), \
            "a DependsOn on a conditional resource fails when the condition is false"


# ---------------------------------------------------------------- #5 the ETL may delete what it overwrites
def iam_allows(statements: list[dict[str, Any]], action: str, arn: str) -> bool:
    from fnmatch import fnmatchcase

    return any(s["Effect"] == "Allow"
               and any(fnmatchcase(action.lower(), a.lower()) for a in as_list(s["Action"]))
               and any(fnmatchcase(arn, r) for r in s["Resource"]) for s in statements)


def role_statements(role: dict[str, Any], values: dict[str, str]) -> list[dict[str, Any]]:
    """The role's inline statements with Fn::Sub resources resolved against ``values``."""
    def resolve(resource: Any) -> str:
        if isinstance(resource, dict) and "Fn::GetAtt" in resource:
            return values[".".join(resource["Fn::GetAtt"])]
        text = resource["Fn::Sub"] if isinstance(resource, dict) else resource
        return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], text)

    return [{**s, "Resource": [resolve(r) for r in as_list(s["Resource"])]}
            for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


@cache
def rendered_jobs() -> dict[str, Any]:
    """jobs.json as the SageMaker SDK renders it (`make sagemaker-jobs`)."""
    import json
    import os
    import tempfile

    if not SAGEMAKER_PYTHON.exists():
        pytest.skip("the SageMaker SDK lives in .venv-sagemaker (`make .venv-sagemaker/.installed`; `make test` "
                    "builds it)")
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers/core'}:{ROOT / 'training'}",
               "SAGEMAKER_SUPPRESS_V2_WARNING": "1", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing"}
        result = subprocess.run([str(SAGEMAKER_PYTHON), "-m", "tastebud_training.sagemaker_jobs", "--region",
                                 "eu-west-1", "--bucket", "tb-artifacts", "--role",
                                 "arn:aws:iam::123456789012:role/tastebud-training", "--out", f"{out}/jobs.json"],
                                env=env, capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        return dict(json.loads(Path(out, "jobs.json").read_text()))


def etl_output_prefix(jobs: dict[str, Any]) -> str:
    arguments = [str(a) for a in jobs["etl"]["AppSpecification"]["ContainerArguments"]]
    joined = " ".join(arguments)  # smspark-submit joins them; the --out value is an s3:// URI either way
    found = re.search(r"--out[= ]+['\"]?(s3://[^\s'\"]+)", joined)
    assert found, f"no --out in the ETL's arguments {arguments}"
    return found.group(1).rstrip("/") + "/"


def test_the_role_that_runs_the_etl_may_delete_under_its_output_prefix_and_nowhere_else() -> None:
    tpl = template()
    resources = tpl["Resources"]
    # The role the state machine hands to the SageMaker jobs (a DefinitionSubstitution).
    substitutions = [v for r in resources.values() if r["Type"] == "AWS::Serverless::StateMachine"
                     for v in r["Properties"].get("DefinitionSubstitutions", {}).values()]
    job_roles = {ref_target(v) for v in substitutions} & set(resources_of("AWS::IAM::Role"))
    assert len(job_roles) == 1, job_roles
    values = {"ArtifactsBucket.Arn": "arn:aws:s3:::tb-artifacts", "AWS::Partition": "aws",
              "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012",
              "ArtifactsPrefix": tpl["Parameters"]["ArtifactsPrefix"]["Default"]}
    statements = role_statements(resources[job_roles.pop()], values)
    output = etl_output_prefix(rendered_jobs())
    assert output.startswith("s3://tb-artifacts/")
    prefix = "arn:aws:s3:::tb-artifacts/" + output.removeprefix("s3://tb-artifacts/")
    # What Spark's overwrite and its output committer delete (the old tables, _temporary/ after the commit).
    for key in ("items.parquet/part-00000-1.snappy.parquet", "interactions.parquet/_SUCCESS",
                "derived/user_history.parquet/_temporary/0/_temporary/attempt_1/part-00000.parquet"):
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            assert iam_allows(statements, action, prefix + key), f"{action} denied on {prefix + key}"
    # Nothing wider: the lake, the job code and definitions, the catalog, the cache, the served artifacts.
    elsewhere = ["lake/events/dt=2026-12-06/x.gz", "training/jobs.json", "training/code/sourcedir.tar.gz",
                 "training/catalog/items.parquet", "training/cache/text.npy", f"{values['ArtifactsPrefix']}/LIVE.json"]
    for key in elsewhere:
        assert not iam_allows(statements, "s3:DeleteObject", f"arn:aws:s3:::tb-artifacts/{key}"), key


# ---------------------------------------------------------------- #6 Firehose record framing
def test_every_s3_delivery_stream_appends_a_newline_to_each_record() -> None:
    import codecs

    import botocore.session

    model = botocore.session.get_session().get_service_model("firehose")
    processor_type = model.shape_for("ProcessorType")
    parameter_name = model.shape_for("ProcessorParameterName")
    parameter_value = model.shape_for("ProcessorParameterValue")
    streams = resources_of("AWS::KinesisFirehose::DeliveryStream")
    assert streams
    for name, stream in streams.items():
        destination = stream["Properties"]["ExtendedS3DestinationConfiguration"]
        processing = destination.get("ProcessingConfiguration", {})
        assert processing.get("Enabled") is True, f"{name}: Firehose concatenates records with no delimiter"
        delimiters = [p for p in processing["Processors"] if p["Type"] == "AppendDelimiterToRecord"]
        assert len(delimiters) == 1, name
        for processor in processing["Processors"]:  # as the Firehose API validates them
            assert processor["Type"] in processor_type.enum
            for parameter in processor.get("Parameters", []):
                assert parameter["ParameterName"] in parameter_name.enum
                value = parameter["ParameterValue"]
                assert parameter_value.metadata["min"] <= len(value) <= parameter_value.metadata["max"]
                assert re.match(parameter_value.metadata["pattern"], value), f"{name}: Firehose rejects {value!r}"
        delimiter = {p["ParameterName"]: p["ParameterValue"] for p in delimiters[0].get("Parameters", [])}
        # Absent = newline; given = an escape sequence Firehose decodes (a real newline fails the pattern).
        assert codecs.decode(delimiter.get("Delimiter", "\\n"), "unicode_escape") == "\n"


# ---------------------------------------------------------------- #9 alarms must be able to publish
def test_every_sns_topic_an_alarm_notifies_uses_a_customer_managed_key_cloudwatch_may_use() -> None:
    from fnmatch import fnmatchcase

    resources = template()["Resources"]
    targets = {ref_target(action) for alarm in resources_of("AWS::CloudWatch::Alarm").values()
               for prop in ("AlarmActions", "OKActions", "InsufficientDataActions")
               for action in alarm["Properties"].get(prop, [])}
    topics = targets & set(resources_of("AWS::SNS::Topic"))
    assert topics
    for topic in topics:
        key_ref = resources[topic]["Properties"].get("KmsMasterKeyId")
        if key_ref is None:
            continue  # unencrypted topics take alarm notifications
        key_name = ref_target(key_ref)
        assert key_name in resources_of("AWS::KMS::Key"), \
            f"{topic}: {key_ref!r} is an AWS managed key; its key policy cannot admit cloudwatch.amazonaws.com"
        key = resources[key_name]["Properties"]
        assert key.get("EnableKeyRotation") is True, key_name
        statements = key["KeyPolicy"]["Statement"]
        cloudwatch = [s for s in statements if s["Effect"] == "Allow"
                      and "cloudwatch.amazonaws.com" in as_list(s.get("Principal", {}).get("Service", []))]
        for action in ("kms:Decrypt", "kms:GenerateDataKey"):
            assert any(fnmatchcase(action, a) for s in cloudwatch for a in as_list(s["Action"])), (key_name, action)
        assert not any("Condition" in s for s in cloudwatch), "CloudWatch calls KMS with no caller context to match"
        admins = [s for s in statements if s["Effect"] == "Allow" and as_list(s["Action"]) == ["kms:*"]]
        assert any(":root" in str(s["Principal"].get("AWS")) for s in admins), \
            f"{key_name}: without the account root statement IAM cannot grant the key to anyone"


# ---------------------------------------------------------------- #13 lifecycle of the lake
def lifecycle_rules(bucket: dict[str, Any]) -> list[dict[str, Any]]:
    rules = []
    for rule in bucket["Properties"].get("LifecycleConfiguration", {}).get("Rules", []):
        if isinstance(rule, dict) and "Fn::If" in rule:
            rule = rule["Fn::If"][1]
        rules.append(rule)
    return [r for r in rules if r.get("Status") == "Enabled"]


def rule_prefix(rule: dict[str, Any]) -> str:
    return str(rule.get("Prefix", rule.get("Filter", {}).get("Prefix", "")))


def test_the_lake_expires_and_the_bucket_cleans_old_versions_and_uploads_but_never_the_served_artifacts() -> None:
    tpl = template()
    parameters, resources = tpl["Parameters"], tpl["Resources"]
    [stream] = resources_of("AWS::KinesisFirehose::DeliveryStream").values()
    destination = stream["Properties"]["ExtendedS3DestinationConfiguration"]
    bucket = resources[ref_target(destination["BucketARN"])]
    rules = lifecycle_rules(bucket)
    for written in (destination["Prefix"], destination["ErrorOutputPrefix"]):
        static = written.split("!{", 1)[0]  # Firehose's prefix up to its first expression
        expiring = [r for r in rules if "ExpirationInDays" in r and static.startswith(rule_prefix(r))]
        assert expiring, f"nothing expires s3://<bucket>/{static}"
        for rule in expiring:
            days = rule["ExpirationInDays"]
            spec = parameters[ref_target(days)] if ref_target(days) else {"MinValue": days}
            assert spec.get("MinValue", 0) >= 1
    if bucket["Properties"]["VersioningConfiguration"]["Status"] == "Enabled":
        assert any("NoncurrentVersionExpiration" in r and not rule_prefix(r) for r in rules)
        assert any(r.get("ExpiredObjectDeleteMarker") for r in rules)
    assert any("AbortIncompleteMultipartUpload" in r and not rule_prefix(r) for r in rules)
    # S3: Standard-IA needs >= 30 days.
    for rule in rules:
        for transition in rule.get("Transitions", []):
            days = transition["TransitionInDays"]
            allowed = parameters[ref_target(days)]["AllowedValues"] if ref_target(days) else [days]
            assert transition["StorageClass"] != "STANDARD_IA" or min(a for a in allowed if a) >= 30
    # The live version and everything the hot swap serves never expire.
    served = f"{parameters['ArtifactsPrefix']['Default']}/LIVE.json"
    assert not any("ExpirationInDays" in r and served.startswith(rule_prefix(r)) for r in rules)


# ---------------------------------------------------------------- network defaults CloudFormation adds
def test_every_security_group_declares_its_egress_inline() -> None:
    groups = resources_of("AWS::EC2::SecurityGroup")
    assert groups
    for name, group in groups.items():
        # EC2 adds allow-all egress to a group created without egress rules; separate
        # AWS::EC2::SecurityGroupEgress resources are added afterwards and do not remove it.
        assert group["Properties"].get("SecurityGroupEgress"), f"{name} gets EC2's allow-all egress rule"


def test_nothing_in_the_vpc_falls_back_to_the_vpcs_default_security_group() -> None:
    # Each of these attaches to the VPC's default security group (allow all within the group, all egress) when it
    # names none; the VPC's default group cannot be emptied by CloudFormation itself.
    security_groups = {"AWS::Serverless::Function": ("VpcConfig", "SecurityGroupIds"),
                       "AWS::OpenSearchService::Domain": ("VPCOptions", "SecurityGroupIds"),
                       "AWS::ElastiCache::ReplicationGroup": (None, "SecurityGroupIds"),
                       "AWS::EC2::VPCEndpoint": (None, "SecurityGroupIds")}
    for name, resource in template()["Resources"].items():
        if resource["Type"] not in security_groups:
            continue
        properties = resource["Properties"]
        block, field = security_groups[resource["Type"]]
        attached = properties.get(block) if block else properties
        if not attached or properties.get("VpcEndpointType") == "Gateway" or (block is None and "VpcId" not in
                                                                               properties and "CacheSubnetGroupName"
                                                                               not in properties):
            continue
        assert attached.get(field), f"{name} would use the VPC's default security group"
        assert "DefaultSecurityGroup" not in repr(attached[field]), name


def test_no_subnet_maps_public_ips_and_no_internet_path_exists() -> None:
    subnets = resources_of("AWS::EC2::Subnet")
    assert subnets
    for name, subnet in subnets.items():
        assert subnet["Properties"].get("MapPublicIpOnLaunch") is False, name
    kinds = {r["Type"] for r in template()["Resources"].values()}
    assert not kinds & {"AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EgressOnlyInternetGateway"}


# ---------------------------------------------------------------- parameters vs the names and intrinsics they feed
def longest_region() -> int:
    if CFN_SCHEMAS is None:
        pytest.skip("cfn-lint's region list lives in .venv-sam")
    return max(len(p.stem) for p in (CFN_SCHEMAS / "providers").glob("*-*-*.json"))


def longest(value: Any, parameters: dict[str, Any], resources: dict[str, Any]) -> int | None:
    """The longest string ``value`` can evaluate to, or None when a part of it is unbounded."""
    from tastebud_training.aws_preflight import MAX_STACK_NAME_LENGTH

    pseudo = {"AWS::StackName": MAX_STACK_NAME_LENGTH, "AWS::Region": longest_region(), "AWS::AccountId": 12,
              "AWS::Partition": len("aws-us-gov"), "AWS::URLSuffix": len("amazonaws.com.cn")}

    def variable(name: str) -> int | None:
        if name in pseudo:
            return pseudo[name]
        spec = parameters.get(name)
        if spec is None:  # a resource's Ref / attribute: not bounded by the template
            return None
        if "AllowedValues" in spec:
            return max(len(str(v)) for v in spec["AllowedValues"])
        if "MaxLength" in spec:
            return int(spec["MaxLength"])
        if spec.get("Type") == "Number" and "MaxValue" in spec:
            return len(str(spec["MaxValue"]))
        return None

    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict) and "Ref" in value:
        return variable(value["Ref"])
    if isinstance(value, dict) and "Fn::Sub" in value:
        text, local = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
        total = len(re.sub(r"\$\{[^}!][^}]*\}", "", text))
        for name in re.findall(r"\$\{([^}!][^}]*)\}", text):
            part = longest(local[name], parameters, resources) if name in local else variable(name)
            if part is None:
                return None
            total += part
        return total
    if isinstance(value, dict) and "Fn::If" in value:
        branches = [longest(v, parameters, resources) for v in value["Fn::If"][1:]
                    if v != {"Ref": "AWS::NoValue"}]
        return None if None in branches else max(b for b in branches if b is not None)
    return None


def test_every_name_built_from_parameters_or_the_stack_name_fits_its_services_limit() -> None:
    tpl = transformed()
    parameters = tpl.get("Parameters", {})
    checked = 0
    for name, resource in tpl["Resources"].items():
        schema = cfn_schema(resource["Type"])["properties"]
        for prop, value in resource.get("Properties", {}).items():
            limit = schema.get(prop, {}).get("maxLength")
            if limit is None or schema[prop].get("type") != "string":
                continue
            size = longest(value, parameters, tpl["Resources"])
            refs = set(re.findall(r"'Ref': '([^']+)'", repr(value))) | set(
                re.findall(r"\$\{([^}.!]+)\}", repr(value)))
            if size is None:
                # Unbounded only through a resource's own Ref/attribute, never through a parameter.
                unbounded = {r for r in refs if r in parameters and longest({"Ref": r}, parameters, {}) is None}
                assert not unbounded, f"{name}.{prop}: parameter(s) {unbounded} have no MaxLength/AllowedValues"
                continue
            checked += 1
            assert size <= limit, f"{name}.{prop} can be {size} characters (limit {limit}): {value!r}"
    assert checked >= 5


def test_the_vpc_cidr_pattern_admits_only_networks_the_subnets_cidr_fits_in() -> None:
    import ipaddress
    import math

    tpl = template()
    spec = tpl["Parameters"]["VpcCidr"]
    pattern = re.compile(spec["AllowedPattern"])
    carves = [v["Fn::Select"][1]["Fn::Cidr"] for v in
              (s["Properties"]["CidrBlock"] for s in resources_of("AWS::EC2::Subnet").values())]
    assert carves and all(c[0] == {"Ref": "VpcCidr"} for c in carves)
    need = max(int(count) for _, count, _ in carves)
    subnet_prefix = 32 - max(int(bits) for _, _, bits in carves)
    for prefix in range(33):
        admitted = bool(pattern.match(f"10.40.0.0/{prefix}"))
        # EC2: a VPC is /16 to /28; Fn::Cidr must fit `count` subnets of /(32 - bits) into it.
        fits = 16 <= prefix <= 28 and prefix + math.ceil(math.log2(need)) <= subnet_prefix
        assert admitted == fits, f"VpcCidr /{prefix}: admitted {admitted}, fits {fits}"
    for bad in ("256.1.1.1/16", "10.40.0/16", "10.40.0.0.0/16"):
        assert not pattern.match(bad), bad
    assert ipaddress.ip_network(spec["Default"]) and pattern.match(spec["Default"])
    assert len(spec["Default"]) <= spec["MaxLength"] and len("255.255.255.255/19") <= spec["MaxLength"]


# ---------------------------------------------------------------- outputs the runbook reads
def test_every_output_the_runbook_reads_is_exported() -> None:
    text = (ROOT / "docs" / "DEPLOY.md").read_text()
    read = set(re.findall(r"\$\(OUT (\w+)\)", text))
    assert {"TrainingJobRoleArn", "ArtifactsBucket"} <= read
    missing = read - set(template()["Outputs"])
    assert not missing, f"DEPLOY.md reads outputs the stack does not export: {missing}"
    assert not re.search(r"=<[A-Za-z]+ ?[A-Za-z]* ARN>", text), "a value the stack knows is left to the operator"


# ---------------------------------------------------------------- the DLC registry is not the same in every region
def test_the_default_user_tower_image_uses_the_regions_dlc_registry() -> None:
    from tastebud_training.dlc_registries import DLC_REGISTRIES

    tpl = template()
    mapping = {region: row["Account"] for region, row in tpl["Mappings"]["DeepLearningContainerRegistry"].items()}
    assert mapping == DLC_REGISTRIES["tensorflow-inference"]  # itself kept equal to the SDK's (test_aws_preflight)
    variables = tpl["Resources"]["ControlTaskFunction"]["Properties"]["Environment"]["Variables"]
    image = variables["TASTEBUD_USER_TOWER_IMAGE"]
    assert "763104351884" not in repr(image) and "DeepLearningContainerRegistry" in repr(image)


def test_the_bucket_name_parameter_admits_only_names_s3_and_virtual_hosted_https_accept() -> None:
    spec = template()["Parameters"]["ArtifactsBucketName"]
    pattern = re.compile(spec["AllowedPattern"])
    s3_name = re.compile(cfn_schema("AWS::S3::Bucket")["properties"]["BucketName"]["pattern"])
    # From S3's bucket naming rules: reserved prefixes/suffixes, IP-like, dots, case, length, edges.
    rejected = ["ab", "a" * 64, "Tastebud", "-tastebud", "tastebud-", "xn--tastebud", "sthree-tastebud",
                "tastebud-s3alias", "tastebud--ol-s3", "tastebud--x-s3", "192.168.5.4", "tastebud..x", "tastebud.x",
                "amzn-s3-demo-tastebud", "tastebud_x"]
    for name in rejected:
        assert not pattern.match(name), name
    for name in ("", "tastebud-artifacts-123456789012", "a" * 63, "abc"):
        assert pattern.match(name) and len(name) <= spec["MaxLength"] and s3_name.match(name), name


def test_every_gateway_endpoint_reaches_only_this_stacks_resources() -> None:
    resources = template()["Resources"]
    gateways = {n: r for n, r in resources_of("AWS::EC2::VPCEndpoint").items()
                if r["Properties"].get("VpcEndpointType") == "Gateway"}
    assert gateways
    for name, endpoint in gateways.items():
        policy = endpoint["Properties"].get("PolicyDocument")
        assert policy, f"{name}: the default endpoint policy reaches every bucket/table of every account"
        for statement in policy["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            for target in as_list(statement["Resource"]):
                named = ref_target(target) or re.match(r"\$\{(\w+)[.]", str(target.get("Fn::Sub", ""))
                                                       if isinstance(target, dict) else "")
                logical = named.group(1) if isinstance(named, re.Match) else named
                assert logical in resources, f"{name}: {target!r} is not a resource of this stack"


def test_the_lake_keeps_the_etls_whole_window_in_standard_storage() -> None:
    from tastebud_training.sagemaker_jobs import LAKE_WINDOW_DAYS

    parameters = template()["Parameters"]
    assert parameters["LakeRetentionDays"]["MinValue"] >= LAKE_WINDOW_DAYS  # else the ETL silently reads less
    # Standard-IA bills every GB the nightly ETL reads again: never inside the window.
    transitions = parameters["LakeInfrequentAccessDays"]["AllowedValues"]
    assert all(days == 0 or days >= LAKE_WINDOW_DAYS for days in transitions)
