"""What each role of template.yaml may do: the declared table that tests/aws/test_iam_against_code.py keeps true
against the template (exactly these statements) and against the code (every AWS call the tests see the code make is
granted to the function that makes it, and every grant of a function is used or has a stated reason).

Resources are written as in the template, intrinsics in ``${...}`` form; ``LambdaInvoke(X)`` is SAM's
LambdaInvokePolicy policy template for function X."""

from __future__ import annotations

ARTIFACTS = "${ArtifactsBucket.Arn}/${ArtifactsPrefix}/*"
BUCKET = "${ArtifactsBucket.Arn}"
SAGEMAKER = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}"
USER_TOWER = [f"{SAGEMAKER}:{kind}/${{AWS::StackName}}-user-tower-*"
              for kind in ("endpoint-config", "endpoint", "model")]
JOBS = [f"{SAGEMAKER}:processing-job/tastebud-*", f"{SAGEMAKER}:training-job/tastebud-*"]
SAGEMAKER_LOGS = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/sagemaker/*"
ECR_REPOSITORIES = "arn:${AWS::Partition}:ecr:*:*:repository/*"
# Step Functions' vended log delivery to CloudWatch Logs (the machines' Logging): documented to need these on "*".
LOG_DELIVERY = {action: ["*"] for action in (
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups")}
# A SageMaker job or endpoint container's own needs (pull its image, write its logs and metrics).
SAGEMAKER_CONTAINER = {
    "ecr:BatchGetImage": [ECR_REPOSITORIES], "ecr:GetDownloadUrlForLayer": [ECR_REPOSITORIES],
    "ecr:GetAuthorizationToken": ["*"],
    "logs:CreateLogGroup": [SAGEMAKER_LOGS], "logs:CreateLogStream": [SAGEMAKER_LOGS],
    "logs:PutLogEvents": [SAGEMAKER_LOGS], "cloudwatch:PutMetricData": ["*"],
}

GRANTS: dict[str, dict[str, list[str]]] = {
    "RecommendFunction": {
        "s3:GetObject": [ARTIFACTS],
        "s3:ListBucket": [BUCKET],
        "dynamodb:GetItem": ["${HistoryTable.Arn}", "${HistoryTable.Arn}/index/by_recency", "${ProfilesTable.Arn}"],
        "dynamodb:Query": ["${HistoryTable.Arn}", "${HistoryTable.Arn}/index/by_recency", "${ProfilesTable.Arn}"],
        "sagemaker:InvokeEndpoint": [f"{SAGEMAKER}:endpoint/${{AWS::StackName}}-user-tower-*"],
        "es:ESHttpPost": ["${SearchDomain.Arn}/${IndexAlias}-*/_search", "${SearchDomain.Arn}/${IndexAlias}/_search"],
        "secretsmanager:GetSecretValue": ["${RedisAuthSecret}"],
    },
    "StockFunction": {
        "s3:GetObject": [ARTIFACTS],
        "s3:ListBucket": [BUCKET],
        "es:ESHttpPost": ["${SearchDomain.Arn}/${IndexAlias}/_update/*"],
        "secretsmanager:GetSecretValue": ["${RedisAuthSecret}"],
    },
    "IngestFunction": {
        "dynamodb:UpdateItem": ["${HistoryTable.Arn}"],
        "dynamodb:PutItem": ["${HistoryTable.Arn}"],
        "sqs:SendMessage": ["${IngestFailureQueue.Arn}"],
    },
    "IndexTaskFunction": {
        "s3:GetObject": [ARTIFACTS],
        "s3:PutObject": ["${ArtifactsBucket.Arn}/${ArtifactsPrefix}/LIVE.json"],
        "s3:DeleteObject": ["${ArtifactsBucket.Arn}/${ArtifactsPrefix}/LIVE.json"],
        "s3:ListBucket": [BUCKET],
        **{f"es:ESHttp{method}": ["${SearchDomain.Arn}/*"] for method in ("Get", "Head", "Put", "Post", "Delete")},
    },
    "ControlTaskFunction": {
        "s3:GetObject": [ARTIFACTS, "${ArtifactsBucket.Arn}/training/*"],
        "s3:PutObject": ["${ArtifactsBucket.Arn}/${ArtifactsPrefix}/CURRENT",
                         "${ArtifactsBucket.Arn}/${ArtifactsPrefix}/versions/*"],
        "s3:ListBucket": [BUCKET],
        **{f"sagemaker:{action}": USER_TOWER for action in (
            "CreateModel", "CreateEndpointConfig", "CreateEndpoint", "DescribeEndpoint", "DeleteModel",
            "DeleteEndpointConfig", "DeleteEndpoint", "AddTags")},
        "sagemaker:ListEndpoints": ["*"],
        "sagemaker:DescribeTrainingJob": [f"{SAGEMAKER}:training-job/tastebud-*"],
        "iam:PassRole": ["${UserTowerRole.Arn}"],
        "states:StartExecution": [
            "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-index-hot-swap"],
        "states:DescribeExecution": [
            "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}-index-hot-swap:*"],
    },
    "IndexHotSwapStateMachine": {
        "lambda:InvokeFunction": ["LambdaInvoke(${ControlTaskFunction})", "LambdaInvoke(${IndexTaskFunction})"],
        **LOG_DELIVERY,
    },
    "TrainingStateMachine": {
        "lambda:InvokeFunction": ["LambdaInvoke(${ControlTaskFunction})"],
        **{f"sagemaker:{action}": JOBS for action in (
            "CreateProcessingJob", "DescribeProcessingJob", "CreateTrainingJob", "DescribeTrainingJob", "AddTags")},
        "iam:PassRole": ["${TrainingJobRole.Arn}"],
        **LOG_DELIVERY,
    },
    "TrainingJobRole": {
        "s3:GetObject": ["${ArtifactsBucket.Arn}/lake/*", "${ArtifactsBucket.Arn}/training/*"],
        "s3:PutObject": [f"${{ArtifactsBucket.Arn}}/training/{output}/*" for output in ("tables", "cache", "output")],
        "s3:DeleteObject": ["${ArtifactsBucket.Arn}/training/tables/*"],
        "s3:ListBucket": [BUCKET],
        **SAGEMAKER_CONTAINER,
    },
    "UserTowerRole": {
        "s3:GetObject": ["${ArtifactsBucket.Arn}/${ArtifactsPrefix}/versions/*/user_tower/model.tar.gz"],
        **SAGEMAKER_CONTAINER,
    },
    "EventsToLakeRole": {
        **{f"kinesis:{action}": ["${EventsStream.Arn}"] for action in (
            "DescribeStream", "GetShardIterator", "GetRecords", "ListShards")},
        "kms:Decrypt": ["arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"],
        "s3:PutObject": ["${ArtifactsBucket.Arn}/lake/*"],
        "s3:AbortMultipartUpload": ["${ArtifactsBucket.Arn}/lake/*"],
        "s3:GetBucketLocation": [BUCKET],
        "s3:ListBucket": [BUCKET],
        "s3:ListBucketMultipartUploads": [BUCKET],
        "logs:PutLogEvents": ["${EventsToLakeLogGroup.Arn}"],
    },
}

# Which function's role a call runs under: the first rule that matches a frame of the call's chain, outermost
# frame first (so the entry point decides; the adapter rules cover contract tests that call adapters directly).
# "operator" is a person's own credentials (the CLI: seed, preflight, replay), not a role of the stack.
PRINCIPAL_RULES: list[tuple[str, tuple[str, ...]]] = [
    # `sam local`'s stand-ins seed a moto server and the OpenSearch stand-in on this machine: no role, no AWS.
    ("tastebud_sam_local.*", ()),
    ("tastebud.lifecycle.control_tasks:*", ("ControlTaskFunction",)),
    ("tastebud.lifecycle.endpoint_tasks:*", ("ControlTaskFunction",)),
    ("tastebud.lifecycle.control_deps:*", ("ControlTaskFunction",)),
    ("tastebud.lifecycle.index_tasks:*", ("IndexTaskFunction",)),
    ("tastebud.adapters.aws.ingest:*", ("IngestFunction",)),
    ("tastebud_cli.*", ("operator",)),
    ("tastebud_training.*", ("operator",)),
    ("tastebud.api.http:create_app.<locals>.put_stock", ("StockFunction",)),
    ("tastebud.api.http:create_app.<locals>.*", ("RecommendFunction",)),  # POST /v1/recommendations, GET /health
    ("tastebud.composition.aws:*", ("RecommendFunction", "StockFunction")),  # the init phase builds the service
    ("tastebud.adapters.aws.dynamodb_seed:*", ("operator",)),
    ("tastebud.adapters.aws.kinesis_events:*", ("operator",)),
    ("tastebud.adapters.aws.s3_artifacts:S3ArtifactStore.publish", ("operator",)),  # `aws s3 sync` in the runbook
    ("tastebud.adapters.aws.live_pointer:write_live", ("IndexTaskFunction",)),
    ("tastebud.adapters.aws.dynamodb_features:HistoryWriter.*", ("IngestFunction",)),
    ("tastebud.adapters.aws.dynamodb_features:DynamoFeatureStore.*", ("RecommendFunction",)),
    ("tastebud.adapters.aws.sagemaker_encoder:*", ("RecommendFunction",)),
    ("tastebud.adapters.aws.opensearch_index:OpenSearchIndex.*", ("RecommendFunction",)),
    ("tastebud.adapters.aws.opensearch_admin:OpenSearchIndexAdmin.set_in_stock*", ("StockFunction",)),
    ("tastebud.adapters.aws.opensearch_admin:OpenSearchIndexAdmin.*", ("IndexTaskFunction",)),
    ("tastebud.adapters.aws.stock:*", ("RecommendFunction", "StockFunction")),
    ("tastebud.adapters.aws.s3_artifacts:*", ("RecommendFunction", "StockFunction")),
    ("tastebud.adapters.aws.live_pointer:read_live", ("RecommendFunction", "StockFunction")),
]

# What the operator's own credentials need for the CLI (docs/DEPLOY.md lists it).
OPERATOR = {"dynamodb:BatchWriteItem", "kinesis:PutRecords", "s3:PutObject", "s3:GetObject", "s3:ListBucket",
            "iam:GetRole", "lambda:GetAccountSettings", "servicequotas:ListServiceQuotas",
            "servicequotas:ListAWSDefaultServiceQuotas", "ecr:DescribeImages", "cloudformation:DescribeStackResource"}

# Grants of a function that no code path calls, and why they stay.
NOT_CALLED_BY_CODE = {
    ("IndexTaskFunction", "s3:ListBucket"): "S3 answers a GetObject of a missing key (LIVE.json before the first "
                                            "flip) with 403 AccessDenied instead of 404 NoSuchKey unless the role may "
                                            "list the bucket; read_live needs the 404",
    ("IngestFunction", "sqs:SendMessage"): "Lambda itself sends a failed Kinesis batch's record to the on-failure "
                                           "destination (the event source mapping), with the function's role",
}
