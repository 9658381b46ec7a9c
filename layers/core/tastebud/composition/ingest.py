"""The ingest function's composition root: its DynamoDB client, its history writer, and the deployed handler.

Apart from ``aws_composition`` (the API's), so that the ingest function's cold start imports only what it uses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tastebud.adapters.aws.dynamodb_features import HistoryWriter
from tastebud.adapters.aws.ingest import create_ingest_handler
from tastebud.adapters.aws.local_endpoints import use_local_endpoints
from tastebud.settings import IngestSettings


def build_history_writer(settings: IngestSettings) -> HistoryWriter:
    """A writer over a DynamoDB client with bounded waits: a batch is retried by Lambda, not held by the SDK."""
    import boto3
    from botocore.config import Config

    client = boto3.client("dynamodb", config=Config(connect_timeout=1, read_timeout=2,
                                                    retries={"total_max_attempts": 3, "mode": "standard"}))
    return HistoryWriter(settings.history_table, ttl_days=settings.history_ttl_days, client=client)


def deployed_ingest_handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The ingest function's handler: the writer is built on the first batch (settings from the environment),
    with EMF metrics and X-Ray tracing."""
    from aws_lambda_powertools import Metrics, Tracer

    use_local_endpoints()
    lock = threading.Lock()
    built: list[HistoryWriter] = []

    def provide() -> HistoryWriter:
        with lock:
            if not built:
                built.append(build_history_writer(IngestSettings.from_env()))
        return built[0]

    return create_ingest_handler(provide, metrics=Metrics(namespace="Tastebud"),
                                 tracer=Tracer(service="tastebud-ingest"))
