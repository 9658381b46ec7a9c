"""Deploy preflight: what an AWS account must have before the first `sam deploy` and the first nightly rebuild.

Each check is a small function over one boto3 client that returns a :class:`CheckResult` (ok / warn / fail, what
was found, and the fix to apply; tastebud_training.preflight_result). ``tastebud aws preflight`` (tastebud_cli/aws.py)
runs them all; docs/DEPLOY.md §2 runs it first. What the checks know about the stack (parameter names, instance types,
name limits) comes from the template's and the job definitions' defaults; tests/aws/test_aws_preflight.py keeps them
equal.

- the OpenSearch service-linked role: a VPC domain needs it, a fresh account lacks it, and creating it where it
  exists fails; the answer is the value of the template parameter ``CreateOpenSearchServiceLinkedRole``;
- the stack name: every per-version SageMaker endpoint is ``<stack>-user-tower-<version>``, 63 characters at most;
- Lambda concurrency: a reservation may not leave fewer than 100 unreserved executions, and new accounts start far
  below what the stack uses;
- SageMaker instance quotas (Service Quotas) for the endpoint, processing and training instance types;
- the Deep Learning Container images the jobs and the endpoint pull, in the region's DLC registry
  (tastebud_training.preflight_dlc_images).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from tastebud_training.preflight_dlc_images import DlcImage, check_dlc_images, dlc_images
from tastebud_training.preflight_result import CheckResult, access_denied, error_code
from tastebud_training.sagemaker_jobs import build_jobs

OPENSEARCH_SERVICE_LINKED_ROLE = "AWSServiceRoleForAmazonOpenSearchService"
SERVICE_LINKED_ROLE_PARAMETER = "CreateOpenSearchServiceLinkedRole"  # template.yaml parameter
SERVICE_LINKED_ROLE_RESOURCE = "OpenSearchServiceLinkedRole"  # template.yaml logical id (created when "true")

# Lambda refuses a reservation that leaves fewer than 100 unreserved concurrent executions in the account.
LAMBDA_MIN_UNRESERVED = 100
LAMBDA_CONCURRENCY_QUOTA_CODE = "L-B99A9384"
# Below this account limit the stack's functions throttle each other: the API's default rate limit is 100
# requests/s, the hot swap's bulk load runs 4 at a time, and ingest one per Kinesis shard.
LAMBDA_RECOMMENDED_CONCURRENCY = 100

# Per-version SageMaker names: control_tasks.endpoint_name(<stack>-user-tower, <version>) cuts at 63 characters;
# a longer stack name would cut the version off and give every version the same endpoint name.
SAGEMAKER_NAME_LIMIT = 63
ENDPOINT_PREFIX_SUFFIX = "-user-tower"
VERSION_LENGTH = len("20261206T020000-0123abcd")  # `tastebud train`: %Y%m%dT%H%M%S-<8 hex of the data fingerprint>
MAX_STACK_NAME_LENGTH = SAGEMAKER_NAME_LIMIT - len(ENDPOINT_PREFIX_SUFFIX) - 1 - VERSION_LENGTH
STACK_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")  # CloudFormation's stack name rule

# template.yaml defaults (UserTowerInstanceType, UserTowerInstanceCount, ReservedConcurrency).
USER_TOWER_INSTANCE_TYPE = "ml.c7i.large"
USER_TOWER_INSTANCE_COUNT = 1
RESERVED_CONCURRENCY = 0
_JOB_DEFAULTS = {name: p.default for name, p in inspect.signature(build_jobs).parameters.items()}
TRAINING_INSTANCE_TYPE: str = _JOB_DEFAULTS["training_instance"]
ETL_INSTANCE_TYPE: str = _JOB_DEFAULTS["etl_instance"]
ETL_INSTANCE_COUNT: int = _JOB_DEFAULTS["etl_instances"]


@dataclass(frozen=True)
class QuotaNeed:
    """A SageMaker quota (Service Quotas' QuotaName) and the instances the stack runs at once under it."""

    quota_name: str
    count: int
    why: str


# ---------------------------------------------------------------- IAM: the OpenSearch service-linked role
def stack_owns_service_linked_role(cloudformation: Any, stack_name: str) -> bool:
    """Whether the stack itself created the role (an update then keeps "true")."""
    try:
        detail = cloudformation.describe_stack_resource(
            StackName=stack_name, LogicalResourceId=SERVICE_LINKED_ROLE_RESOURCE)["StackResourceDetail"]
    except ClientError as error:
        # CloudFormation answers ValidationError both for a stack that does not exist and a resource it lacks.
        if error_code(error) == "ValidationError" or access_denied(error):
            return False
        raise
    return not str(detail["ResourceStatus"]).startswith("DELETE")


def check_opensearch_service_linked_role(iam: Any, cloudformation: Any = None, stack_name: str = "") -> CheckResult:
    name = "opensearch service-linked role"
    try:
        iam.get_role(RoleName=OPENSEARCH_SERVICE_LINKED_ROLE)
    except ClientError as error:
        if error_code(error) == "NoSuchEntity":
            return CheckResult(name, "ok", f"{OPENSEARCH_SERVICE_LINKED_ROLE} is absent: the stack must create it",
                               f"pass {SERVICE_LINKED_ROLE_PARAMETER}=true (the default)",
                               {SERVICE_LINKED_ROLE_PARAMETER: "true"})
        if access_denied(error):
            return CheckResult(name, "warn", f"iam:GetRole denied ({error_code(error)}): cannot tell whether "
                               f"{OPENSEARCH_SERVICE_LINKED_ROLE} exists",
                               f"aws iam get-role --role-name {OPENSEARCH_SERVICE_LINKED_ROLE} as an admin: found -> "
                               f"{SERVICE_LINKED_ROLE_PARAMETER}=false, NoSuchEntity -> true")
        raise
    if cloudformation is not None and stack_name and stack_owns_service_linked_role(cloudformation, stack_name):
        return CheckResult(name, "ok", f"{OPENSEARCH_SERVICE_LINKED_ROLE} exists, created by stack {stack_name}",
                           f"keep {SERVICE_LINKED_ROLE_PARAMETER}=true (false only drops it from the stack)",
                           {SERVICE_LINKED_ROLE_PARAMETER: "true"})
    return CheckResult(name, "warn", f"{OPENSEARCH_SERVICE_LINKED_ROLE} exists: creating it again would roll the "
                       "deploy back", f"pass {SERVICE_LINKED_ROLE_PARAMETER}=false",
                       {SERVICE_LINKED_ROLE_PARAMETER: "false"})


# ---------------------------------------------------------------- the stack name and the names built from it
def check_stack_name(stack_name: str) -> CheckResult:
    name = "stack name"
    if not STACK_NAME_PATTERN.match(stack_name) or len(stack_name) > 128:
        return CheckResult(name, "fail", f"{stack_name!r} is not a CloudFormation stack name",
                           "letters, digits and hyphens, starting with a letter")
    if len(stack_name) > MAX_STACK_NAME_LENGTH:
        return CheckResult(name, "fail", f"{stack_name!r} has {len(stack_name)} characters: the per-version "
                           f"endpoint names <stack>{ENDPOINT_PREFIX_SUFFIX}-<version> would exceed SageMaker's "
                           f"{SAGEMAKER_NAME_LIMIT} and lose the version",
                           f"a stack name of at most {MAX_STACK_NAME_LENGTH} characters")
    return CheckResult(name, "ok", f"{stack_name!r}: every name built from it fits its service's limit")


# ---------------------------------------------------------------- Lambda concurrency
def check_lambda_concurrency(lambda_client: Any, reserved: int, region: str) -> CheckResult:
    name = "lambda concurrency"
    try:
        limits = lambda_client.get_account_settings()["AccountLimit"]
    except ClientError as error:
        if access_denied(error):
            return CheckResult(name, "warn", f"lambda:GetAccountSettings denied ({error_code(error)})",
                               "run the preflight with a principal allowed lambda:GetAccountSettings")
        raise
    total = int(limits["ConcurrentExecutions"])
    unreserved = int(limits["UnreservedConcurrentExecutions"])
    increase = (f"aws service-quotas request-service-quota-increase --service-code lambda --quota-code "
                f"{LAMBDA_CONCURRENCY_QUOTA_CODE} --region {region} --desired-value")
    if reserved and unreserved - reserved < LAMBDA_MIN_UNRESERVED:
        wanted = total + LAMBDA_MIN_UNRESERVED - (unreserved - reserved)
        return CheckResult(name, "fail", f"ReservedConcurrency={reserved} would leave {unreserved - reserved} of "
                           f"{total} unreserved (Lambda keeps at least {LAMBDA_MIN_UNRESERVED}): the deploy fails",
                           f"{increase} {max(wanted, LAMBDA_RECOMMENDED_CONCURRENCY)}, or reserve less")
    if total < LAMBDA_RECOMMENDED_CONCURRENCY:
        return CheckResult(name, "warn", f"account limit {total} concurrent executions (new accounts start low): "
                           "serving, ingest and the hot swap's bulk load would throttle each other",
                           f"{increase} {LAMBDA_RECOMMENDED_CONCURRENCY * 10}")
    return CheckResult(name, "ok", f"{unreserved} of {total} unreserved; the stack reserves {reserved}")


# ---------------------------------------------------------------- SageMaker instance quotas
def sagemaker_quota_needs(*, user_tower_instance_type: str = USER_TOWER_INSTANCE_TYPE,
                          user_tower_instance_count: int = USER_TOWER_INSTANCE_COUNT,
                          etl_instance_type: str = ETL_INSTANCE_TYPE, etl_instance_count: int = ETL_INSTANCE_COUNT,
                          training_instance_type: str = TRAINING_INSTANCE_TYPE) -> list[QuotaNeed]:
    """What the stack runs at once: during a hot swap the old and the new version's endpoints both serve."""
    return [
        QuotaNeed(f"{user_tower_instance_type} for endpoint usage", 2 * user_tower_instance_count,
                  "user tower endpoints of the live and the new version during a hot swap"),
        QuotaNeed(f"{etl_instance_type} for processing job usage", etl_instance_count, "Spark ETL job"),
        QuotaNeed(f"{training_instance_type} for processing job usage", 1, "embeddings job"),
        QuotaNeed(f"{training_instance_type} for training job usage", 1, "training job"),
    ]


def _quotas(pages: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {quota["QuotaName"]: quota for page in pages for quota in page.get("Quotas", [])}


def check_sagemaker_quotas(quotas_client: Any, needs: list[QuotaNeed], region: str) -> list[CheckResult]:
    """Applied quota values (ListServiceQuotas); a quota with no applied value has its default
    (ListAWSDefaultServiceQuotas, which is what Service Quotas documents for quotas it lists no applied value of)."""
    try:
        applied = _quotas(quotas_client.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker"))
        missing = [need for need in needs if need.quota_name not in applied]
        defaults = _quotas(quotas_client.get_paginator("list_aws_default_service_quotas").paginate(
            ServiceCode="sagemaker")) if missing else {}
    except ClientError as error:
        if access_denied(error):
            return [CheckResult("sagemaker quotas", "warn", f"servicequotas denied ({error_code(error)})",
                                "run the preflight with servicequotas:ListServiceQuotas and "
                                "ListAWSDefaultServiceQuotas, or check the quotas in the console")]
        raise
    results = []
    for need in sorted(needs, key=lambda n: n.quota_name):
        name = f"quota {need.quota_name}"
        quota = applied.get(need.quota_name) or defaults.get(need.quota_name)
        if quota is None:
            results.append(CheckResult(name, "fail", f"no such SageMaker quota in {region} ({need.why}): the "
                                       "instance type is not offered here", "choose an instance type the region has"))
            continue
        value = float(quota.get("Value", 0.0))
        if value < need.count:
            results.append(CheckResult(
                name, "fail", f"{value:g} < {need.count} needed ({need.why})",
                f"aws service-quotas request-service-quota-increase --service-code sagemaker --quota-code "
                f"{quota['QuotaCode']} --desired-value {need.count} --region {region}"))
        else:
            results.append(CheckResult(name, "ok", f"{value:g} >= {need.count} ({need.why})"))
    return results


# ---------------------------------------------------------------- all of it
@dataclass(frozen=True)
class PreflightClients:
    iam: Any
    lambda_: Any
    service_quotas: Any
    ecr: Any
    cloudformation: Any = None

    @classmethod
    def from_session(cls, session: Any) -> PreflightClients:
        return cls(iam=session.client("iam"), lambda_=session.client("lambda"),
                   service_quotas=session.client("service-quotas"), ecr=session.client("ecr"),
                   cloudformation=session.client("cloudformation"))


def run_preflight(clients: PreflightClients, *, region: str, stack_name: str,
                  reserved_concurrency: int = RESERVED_CONCURRENCY,
                  quota_needs: list[QuotaNeed] | None = None,
                  images: list[DlcImage] | None = None) -> list[CheckResult]:
    return [
        check_stack_name(stack_name),
        check_opensearch_service_linked_role(clients.iam, clients.cloudformation, stack_name),
        check_lambda_concurrency(clients.lambda_, reserved_concurrency, region),
        *check_sagemaker_quotas(clients.service_quotas,
                                sagemaker_quota_needs() if quota_needs is None else quota_needs, region),
        *check_dlc_images(clients.ecr, region, dlc_images() if images is None else images),
    ]


def parameter_overrides(results: list[CheckResult]) -> dict[str, str]:
    return {key: value for result in results for key, value in result.parameters.items()}


def failed(results: list[CheckResult]) -> bool:
    return any(result.status == "fail" for result in results)


def deploy_command(overrides: dict[str, str], *, config_env: str = "default", samconfig: str = "") -> str:
    """The `sam deploy` to run: SAM CLI REPLACES the config file's parameter_overrides with the command line's,
    so the profile's own overrides (samconfig.toml) are repeated before the preflight's."""
    import shlex
    import tomllib

    profile = tomllib.loads(samconfig).get(config_env, {}) if samconfig else {}
    configured = profile.get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
    merged = dict(token.split("=", 1) for token in shlex.split(configured))
    merged.update(overrides)
    values = " ".join(f"{key}={value}" for key, value in merged.items())
    return f"sam deploy --config-env {config_env} --parameter-overrides {shlex.quote(values)}"
