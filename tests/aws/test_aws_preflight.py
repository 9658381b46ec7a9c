"""`tastebud aws preflight` (training/tastebud_training/aws_preflight.py) against moto where moto models the API
(IAM roles, ECR registries and images) and botocore's Stubber where it does not (Lambda GetAccountSettings,
Service Quotas ListServiceQuotas for SageMaker): the Stubber checks every request and every canned response
against botocore's service model, so the responses have the shape, pagination and errors the real APIs give."""

from __future__ import annotations

import json
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from typer.testing import CliRunner

from tastebud.lifecycle.control_tasks import endpoint_name
from tastebud_training import aws_preflight
from tastebud_training.aws_preflight import (
    PreflightClients,
    QuotaNeed,
    check_lambda_concurrency,
    check_opensearch_service_linked_role,
    check_sagemaker_quotas,
    check_stack_name,
)
from tastebud_training.dlc_registries import DLC_REGISTRIES
from tastebud_training.preflight_dlc_images import DlcImage, check_dlc_images, dlc_images
from tastebud_training.sagemaker_jobs import SPARK_VERSION, TF_VERSION

from helpers import load_template

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
SAGEMAKER_VENV = ROOT / ".venv-sagemaker"
ROLE_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "opensearchservice.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def create_service_linked_role(iam: Any) -> None:
    # As IAM names it (moto's create_service_linked_role derives another name for this service).
    iam.create_role(RoleName=aws_preflight.OPENSEARCH_SERVICE_LINKED_ROLE, AssumeRolePolicyDocument=ROLE_POLICY,
                    Path="/aws-service-role/opensearchservice.amazonaws.com/")


# ---------------------------------------------------------------- the OpenSearch service-linked role
def test_a_fresh_account_is_told_to_let_the_stack_create_the_service_linked_role(aws: None) -> None:
    result = check_opensearch_service_linked_role(boto3.client("iam"))
    assert result.status == "ok" and "absent" in result.detail
    assert result.parameters == {"CreateOpenSearchServiceLinkedRole": "true"}


def test_an_account_with_the_role_is_told_not_to_create_it_again(aws: None) -> None:
    iam = boto3.client("iam")
    create_service_linked_role(iam)
    result = check_opensearch_service_linked_role(iam)
    assert result.status == "warn" and result.parameters == {"CreateOpenSearchServiceLinkedRole": "false"}
    assert "CreateOpenSearchServiceLinkedRole=false" in result.fix


def cloudformation_stub(answer: str) -> tuple[Any, Stubber]:
    client = boto3.client("cloudformation", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    request = {"StackName": "tastebud-dev", "LogicalResourceId": aws_preflight.SERVICE_LINKED_ROLE_RESOURCE}
    if answer == "owned":
        stub.add_response("describe_stack_resource", {"StackResourceDetail": {
            "StackName": "tastebud-dev", "LogicalResourceId": aws_preflight.SERVICE_LINKED_ROLE_RESOURCE,
            "PhysicalResourceId": aws_preflight.OPENSEARCH_SERVICE_LINKED_ROLE,
            "ResourceType": "AWS::IAM::ServiceLinkedRole", "LastUpdatedTimestamp": "2026-12-06T17:00:00Z",
            "ResourceStatus": "CREATE_COMPLETE"}}, request)
    else:  # what CloudFormation answers for a missing stack and for a stack without that resource alike
        stub.add_client_error("describe_stack_resource", "ValidationError", "Stack 'tastebud-dev' does not exist",
                              http_status_code=400, expected_params=request)
    return client, stub


def test_an_update_of_the_stack_that_created_the_role_keeps_creating_it(aws: None) -> None:
    iam = boto3.client("iam")
    create_service_linked_role(iam)
    cloudformation, stub = cloudformation_stub("owned")
    with stub:
        result = check_opensearch_service_linked_role(iam, cloudformation, "tastebud-dev")
    assert result.status == "ok" and result.parameters == {"CreateOpenSearchServiceLinkedRole": "true"}
    cloudformation, stub = cloudformation_stub("absent")
    with stub:
        result = check_opensearch_service_linked_role(iam, cloudformation, "tastebud-dev")
    assert result.parameters == {"CreateOpenSearchServiceLinkedRole": "false"}


def test_the_resource_the_preflight_looks_for_is_the_templates() -> None:
    resource = load_template(ROOT / "template.yaml")["Resources"][aws_preflight.SERVICE_LINKED_ROLE_RESOURCE]
    assert resource["Type"] == "AWS::IAM::ServiceLinkedRole"


def test_a_principal_without_iam_get_role_gets_a_warning_not_a_guess() -> None:
    iam = boto3.client("iam", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(iam) as stub:
        stub.add_client_error("get_role", "AccessDenied", http_status_code=403,
                              expected_params={"RoleName": aws_preflight.OPENSEARCH_SERVICE_LINKED_ROLE})
        result = check_opensearch_service_linked_role(iam)
    assert result.status == "warn" and not result.parameters


def test_the_parameter_the_preflight_names_is_the_templates() -> None:
    parameters = load_template(ROOT / "template.yaml")["Parameters"]
    spec = parameters[aws_preflight.SERVICE_LINKED_ROLE_PARAMETER]
    assert set(spec["AllowedValues"]) == {"true", "false"}


# ---------------------------------------------------------------- Lambda concurrency (GetAccountSettings)
def lambda_with_limits(total: int, unreserved: int) -> tuple[Any, Stubber]:
    client = boto3.client("lambda", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    # GetAccountSettings as Lambda answers it (every AccountLimit member; the Stubber validates the shape).
    stub.add_response("get_account_settings", {
        "AccountLimit": {"TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000, "CodeSizeZipped": 52428800,
                         "ConcurrentExecutions": total, "UnreservedConcurrentExecutions": unreserved},
        "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0}}, {})
    return client, stub


def test_a_reservation_that_leaves_fewer_than_100_unreserved_fails() -> None:
    client, stub = lambda_with_limits(total=1000, unreserved=950)
    with stub:
        result = check_lambda_concurrency(client, reserved=900, region=REGION)
    assert result.status == "fail" and "L-B99A9384" in result.fix and "--desired-value 1050" in result.fix


def test_a_new_accounts_low_limit_is_a_warning_and_any_reservation_fails() -> None:
    client, stub = lambda_with_limits(total=10, unreserved=10)  # what new accounts get
    with stub:
        assert check_lambda_concurrency(client, reserved=0, region=REGION).status == "warn"
    client, stub = lambda_with_limits(total=10, unreserved=10)
    with stub:
        assert check_lambda_concurrency(client, reserved=5, region=REGION).status == "fail"


def test_enough_concurrency_is_ok() -> None:
    client, stub = lambda_with_limits(total=1000, unreserved=1000)
    with stub:
        assert check_lambda_concurrency(client, reserved=50, region=REGION).status == "ok"


# ---------------------------------------------------------------- SageMaker quotas (Service Quotas)
def quota(name: str, code: str, value: float) -> dict[str, Any]:
    return {"ServiceCode": "sagemaker", "ServiceName": "Amazon SageMaker", "QuotaCode": code, "QuotaName": name,
            "QuotaArn": f"arn:aws:servicequotas:{REGION}:123456789012:sagemaker/{code}", "Value": value,
            "Unit": "None", "Adjustable": True, "GlobalQuota": False}


def test_quotas_are_read_across_pages_and_a_quota_of_zero_fails_with_the_increase_to_request() -> None:
    client = boto3.client("service-quotas", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    needs = aws_preflight.sagemaker_quota_needs()
    with Stubber(client) as stub:
        stub.add_response("list_service_quotas", {
            "Quotas": [quota("ml.c7i.large for endpoint usage", "L-1", 0.0),
                       quota("ml.m5.2xlarge for processing job usage", "L-2", 4.0)],
            "NextToken": "page-2"}, {"ServiceCode": "sagemaker"})
        stub.add_response("list_service_quotas", {
            "Quotas": [quota("ml.c7i.4xlarge for training job usage", "L-3", 1.0)]},
            {"ServiceCode": "sagemaker", "NextToken": "page-2"})
        # A quota with no applied value is not listed; its default is.
        stub.add_response("list_aws_default_service_quotas", {
            "Quotas": [quota("ml.c7i.4xlarge for processing job usage", "L-4", 1.0)]}, {"ServiceCode": "sagemaker"})
        results = {r.name: r for r in check_sagemaker_quotas(client, needs, REGION)}
        stub.assert_no_pending_responses()
    endpoint = results["quota ml.c7i.large for endpoint usage"]
    assert endpoint.status == "fail" and "0 < 2" in endpoint.detail
    assert "--quota-code L-1 --desired-value 2" in endpoint.fix
    assert results["quota ml.m5.2xlarge for processing job usage"].status == "ok"
    assert results["quota ml.c7i.4xlarge for processing job usage"].status == "ok"
    assert results["quota ml.c7i.4xlarge for training job usage"].status == "ok"


def test_an_instance_type_the_region_does_not_list_fails() -> None:
    client = boto3.client("service-quotas", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("list_service_quotas", {"Quotas": []}, {"ServiceCode": "sagemaker"})
        stub.add_response("list_aws_default_service_quotas", {"Quotas": []}, {"ServiceCode": "sagemaker"})
        [result] = check_sagemaker_quotas(client, [QuotaNeed("ml.x9.huge for endpoint usage", 2, "test")], REGION)
    assert result.status == "fail" and "not offered" in result.detail


def test_the_quota_needs_are_the_templates_and_the_jobs_instance_types() -> None:
    parameters = load_template(ROOT / "template.yaml")["Parameters"]
    assert parameters["UserTowerInstanceType"]["Default"] == aws_preflight.USER_TOWER_INSTANCE_TYPE
    assert parameters["UserTowerInstanceCount"]["Default"] == aws_preflight.USER_TOWER_INSTANCE_COUNT
    assert parameters["ReservedConcurrency"]["Default"] == aws_preflight.RESERVED_CONCURRENCY
    names = {need.quota_name: need.count for need in aws_preflight.sagemaker_quota_needs()}
    assert names["ml.c7i.large for endpoint usage"] == 2  # old + new endpoint during the hot swap's drain


# ---------------------------------------------------------------- DLC images (ECR in the region's DLC registry)
def publish_dlc_images(images: list[DlcImage], skip: str = "") -> None:
    ecr = boto3.client("ecr")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {}, "layers": []})
    for image in images:
        ecr.create_repository(repositoryName=image.repository,
                              registryId=DLC_REGISTRIES[image.repository][REGION])
        if image.repository != skip:
            ecr.put_image(repositoryName=image.repository, registryId=DLC_REGISTRIES[image.repository][REGION],
                          imageManifest=manifest, imageTag=image.tag)


def test_every_dlc_image_is_found_in_the_regions_registry(aws: None) -> None:
    images = dlc_images()
    publish_dlc_images(images)
    results = check_dlc_images(boto3.client("ecr"), REGION, images)
    assert [r.status for r in results] == ["ok"] * 3
    assert "571004829621" in results[2].detail  # the Spark image's registry is not 763104351884


def test_a_missing_image_tag_fails(aws: None) -> None:
    images = dlc_images()
    publish_dlc_images(images, skip="tensorflow-inference")
    results = {r.name: r for r in check_dlc_images(boto3.client("ecr"), REGION, images)}
    assert results["image tensorflow-inference:2.19-cpu"].status == "fail"


def test_a_region_without_a_dlc_registry_fails_and_a_denied_describe_warns() -> None:
    ecr = boto3.client("ecr", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    [absent] = check_dlc_images(ecr, "xx-nowhere-1", dlc_images()[:1])
    assert absent.status == "fail" and "UserTowerImageUri" in absent.fix
    with Stubber(ecr) as stub:
        stub.add_client_error("describe_images", "AccessDeniedException", http_status_code=400)
        [denied] = check_dlc_images(ecr, REGION, dlc_images()[:1])
    assert denied.status == "warn"


def sdk_registries() -> dict[str, dict[str, str]]:
    config = next(SAGEMAKER_VENV.glob("lib/python3*/site-packages/sagemaker/image_uri_config"), None)
    if config is None:
        pytest.skip("the SageMaker SDK lives in .venv-sagemaker (`make .venv-sagemaker/.installed`; `make test` "
                    "builds it)")
    tensorflow = json.loads((config / "tensorflow.json").read_text())
    spark = json.loads((config / "spark.json").read_text())

    def registries(scope: dict[str, Any], version: str) -> dict[str, str]:
        full = scope.get("version_aliases", {}).get(version, version)
        return dict(scope["versions"][full]["registries"])

    return {"tensorflow-inference": registries(tensorflow["inference"], TF_VERSION),
            "tensorflow-training": registries(tensorflow["training"], TF_VERSION),
            "sagemaker-spark-processing": registries(spark["processing"], SPARK_VERSION)}


def test_the_dlc_registry_table_is_the_sagemaker_sdks() -> None:
    assert sdk_registries() == DLC_REGISTRIES, "regenerate tastebud_training/dlc_registries.py from the SDK's config"


# ---------------------------------------------------------------- the stack name
def test_the_longest_stack_name_allowed_keeps_the_whole_version_in_endpoint_names() -> None:
    version = "20261206T020000-0123abcd"
    assert len(version) == aws_preflight.VERSION_LENGTH
    longest = "s" * aws_preflight.MAX_STACK_NAME_LENGTH
    assert endpoint_name(f"{longest}{aws_preflight.ENDPOINT_PREFIX_SUFFIX}", version).endswith(version.lower())
    too_long = longest + "s"
    assert not endpoint_name(f"{too_long}{aws_preflight.ENDPOINT_PREFIX_SUFFIX}", version).endswith(version.lower())
    assert check_stack_name(longest).status == "ok"
    assert check_stack_name(too_long).status == "fail"
    assert check_stack_name("1-starts-with-a-digit").status == "fail"


def test_every_samconfig_stack_name_passes() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    names = [sections["global"]["parameters"]["stack_name"] for sections in config.values()
             if isinstance(sections, dict) and "global" in sections]
    assert names and all(check_stack_name(name).status == "ok" for name in names)


def test_the_deploy_command_keeps_the_profiles_overrides_which_the_command_line_replaces() -> None:
    samconfig = (ROOT / "samconfig.toml").read_text()
    command = aws_preflight.deploy_command({"CreateOpenSearchServiceLinkedRole": "false"}, config_env="prod",
                                           samconfig=samconfig)
    profile = tomllib.loads(samconfig)["prod"]["deploy"]["parameters"]["parameter_overrides"]
    assert command.startswith("sam deploy --config-env prod --parameter-overrides '")
    assert f"{profile} CreateOpenSearchServiceLinkedRole=false'" in command


# ---------------------------------------------------------------- the command
def stubbed_clients(monkeypatch: pytest.MonkeyPatch, *, role_exists: bool, endpoint_quota: float) -> None:
    """moto for IAM and ECR; Stubbers for the two APIs moto does not model. Replaces the session's clients."""
    iam, ecr = boto3.client("iam"), boto3.client("ecr")
    if role_exists:
        create_service_linked_role(iam)
    publish_dlc_images(dlc_images())
    lambda_client, lambda_stub = lambda_with_limits(total=1000, unreserved=1000)
    lambda_stub.activate()
    quotas = boto3.client("service-quotas", region_name=REGION)
    quota_stub = Stubber(quotas)
    codes = iter(f"L-{i}" for i in range(10))
    quota_stub.add_response("list_service_quotas", {"Quotas": [
        quota(need.quota_name, next(codes), endpoint_quota if "endpoint" in need.quota_name else 4.0)
        for need in aws_preflight.sagemaker_quota_needs()]}, {"ServiceCode": "sagemaker"})
    quota_stub.activate()
    cloudformation, cloudformation_stubber = cloudformation_stub("absent")
    cloudformation_stubber.activate()
    clients = PreflightClients(iam=iam, lambda_=lambda_client, service_quotas=quotas, ecr=ecr,
                               cloudformation=cloudformation)
    monkeypatch.setattr(PreflightClients, "from_session", classmethod(lambda cls, session: clients))


def run_cli(*args: str) -> Any:
    from tastebud_cli.app import app

    return CliRunner().invoke(app, ["aws", "preflight", "--region", REGION, *args])


def test_the_command_prints_json_with_the_parameter_to_pass(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    stubbed_clients(monkeypatch, role_exists=False, endpoint_quota=2.0)
    result = run_cli("--stack-name", "tastebud-dev", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and report["parameter_overrides"] == {"CreateOpenSearchServiceLinkedRole": "true"}
    assert report["deploy"].endswith("CreateOpenSearchServiceLinkedRole=true'")
    assert {c["status"] for c in report["checks"]} == {"ok"}


def test_the_command_exits_1_on_a_zero_quota_and_prints_the_table(aws: None,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    stubbed_clients(monkeypatch, role_exists=True, endpoint_quota=0.0)
    result = run_cli("--stack-name", "tastebud-dev")
    assert result.exit_code == 1, result.output
    assert "fail" in result.output and "CreateOpenSearchServiceLinkedRole=false" in result.output


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
