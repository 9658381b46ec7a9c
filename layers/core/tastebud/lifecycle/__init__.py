"""The AWS lifecycle: the task logic behind the Step Functions state machines (statemachines/*.asl.json).

``index_tasks`` run inside the VPC (OpenSearch + S3 through the gateway endpoint); ``control_tasks`` run
outside it (SageMaker control plane, S3, the evaluation gate). Each task is idempotent, so re-running an
execution for the same version is harmless.
"""
