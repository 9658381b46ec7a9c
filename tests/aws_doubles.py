"""Offline doubles for the AWS services moto cannot run faithfully (OpenSearch k-NN, SageMaker runtime).

They sit at the HTTP level, UNDER the real SDKs, so the adapters' requests go through opensearch-py's
transport (with SigV4 signing) and botocore's serializer/parser (rest-json protocol) exactly as in AWS:
  - ``FakeOpenSearchDomain`` (``tastebud_sam_local.opensearch_domain``, which `sam local` also serves
    over HTTP) replaces the urllib3 pool of ``opensearchpy.Urllib3HttpConnection``: the OpenSearch REST API
    subset the adapters use, with its documented bodies, exact k-NN, and recorded requests.
  - ``sagemaker_runtime_client`` is a real botocore client whose ``before-send`` hook answers instead of
    the network, with the raw status/headers/body SageMaker sends (``x-amzn-ErrorType`` + JSON body for
    ModelError / ValidationError / ThrottlingException).
Neither proves anything about the real model or the real HNSW graph; they prove the wire contract.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import urllib3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.session import get_session
from opensearchpy import OpenSearch, Urllib3AWSV4SignerAuth, Urllib3HttpConnection

from tastebud.features.history import REPEAT_COLUMNS
from tastebud.features.schema import FEATURE_NAMES
from tastebud_sam_local.opensearch_domain import FakeOpenSearchDomain
from tastebud_sam_local.opensearch_replies import Reply, json_reply, opensearch_error
from tastebud_sam_local.sagemaker_endpoint import ENDPOINT_PATH, model_error, sagemaker_error, sagemaker_reply

__all__ = ["ENDPOINT_PATH", "FakeOpenSearchDomain", "json_reply", "model_error", "opensearch_error", "sagemaker_error",
           "sagemaker_reply"]

REGION = "eu-west-1"
ACCOUNT = "123456789012"
OPENSEARCH_HOST = "vpc-tastebud-abc123.eu-west-1.es.amazonaws.com"
CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def opensearch_client(domain: FakeOpenSearchDomain, *, timeout: float = 0.08) -> OpenSearch:
    """An opensearch-py client configured like production (HTTPS, SigV4, no retries) over ``domain``."""

    class DomainConnection(Urllib3HttpConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.pool = domain  # type: ignore[assignment]

    return OpenSearch(hosts=[{"host": OPENSEARCH_HOST, "port": 443}], use_ssl=True, verify_certs=True,
                      http_auth=Urllib3AWSV4SignerAuth(CREDENTIALS, REGION, "es"), connection_class=DomainConnection,
                      timeout=timeout, max_retries=0, retry_on_timeout=False)


# ---------------------------------------------------------------- SageMaker runtime
SageMakerResponder = Callable[[AWSPreparedRequest], "Reply | Exception"]


def sagemaker_runtime_client(respond: SageMakerResponder) -> tuple[Any, list[AWSPreparedRequest]]:
    """A real ``sagemaker-runtime`` client whose HTTP layer is ``respond`` (SDK retries off)."""
    client = get_session().create_client(
        "sagemaker-runtime", region_name=REGION, aws_access_key_id=CREDENTIALS.access_key,
        aws_secret_access_key=CREDENTIALS.secret_key,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=0.2, read_timeout=0.06))
    sent: list[AWSPreparedRequest] = []

    def before_send(request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse:
        sent.append(request)
        reply = respond(request)
        if isinstance(reply, Exception):
            raise reply
        status, headers, payload = reply
        raw = urllib3.HTTPResponse(body=io.BytesIO(payload), status=status, headers=headers, preload_content=False)
        return AWSResponse(request.url, status, headers, raw)

    # First in line: inside ``mock_aws`` moto's own before-send handler would answer with a canned body.
    client.meta.events.register_first("before-send.sagemaker-runtime.InvokeEndpoint", before_send)
    return client, sent




# ---------------------------------------------------------------- DynamoDB tables as template.yaml declares them
def create_feature_tables(client: Any, profiles: str = "profiles", history: str = "history") -> None:
    client.create_table(
        TableName=profiles, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}])
    client.create_table(
        TableName=history, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}, {"AttributeName": "item_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"},
                              {"AttributeName": "item_id", "AttributeType": "S"},
                              {"AttributeName": "last_ts", "AttributeType": "N"}],
        LocalSecondaryIndexes=[{"IndexName": "by_recency",
                                "Projection": {"ProjectionType": "INCLUDE",
                                               "NonKeyAttributes": ["weight", *REPEAT_COLUMNS]},
                                "KeySchema": [{"AttributeName": "user_id", "KeyType": "HASH"},
                                              {"AttributeName": "last_ts", "KeyType": "RANGE"}]}])


def tiny_ranker(path: Path) -> None:
    """An ONNX 'ranker' scoring by the log-popularity feature (what the XGBoost export looks like to serving)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.zeros((len(FEATURE_NAMES), 1), np.float32)
    weights[FEATURE_NAMES.index("log_popularity"), 0] = 1.0
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["variable"])], "ranker",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, len(FEATURE_NAMES)])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(weights, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), path)
