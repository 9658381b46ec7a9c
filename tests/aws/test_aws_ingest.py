"""The ingest function with the sample Kinesis events: positives land in DynamoDB history (moto), malformed
records are skipped (never retried forever), and a DynamoDB failure is reported as a batch item failure."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from tastebud.adapters.aws.dynamodb_features import HistoryWriter
from tastebud.adapters.aws.ingest import create_ingest_handler
from tastebud.local_server import LocalLambdaContext
from tastebud.settings import IngestSettings, SettingsError

from helpers import load_event


def run(client: Any, event_name: str) -> dict[str, Any]:
    writer = HistoryWriter("history", client=client, clock=lambda: 1_764_140_000.0)
    handler = create_ingest_handler(lambda: writer)
    return handler(load_event(event_name), LocalLambdaContext(aws_request_id="t"))


def history(client: Any, user_id: str) -> dict[str, str]:
    items = client.query(TableName="history", KeyConditionExpression="user_id = :u",
                         ExpressionAttributeValues={":u": {"S": user_id}})["Items"]
    return {item["item_id"]["S"]: item["weight"]["N"] for item in items if "weight" in item}  # not dedupe markers


def test_positives_are_folded_into_history(dynamodb: Any) -> None:
    assert run(dynamodb, "ingest_kinesis") == {"batchItemFailures": []}
    assert history(dynamodb, "u00001") == {"i000001": "3", "i000002": "1"}  # purchase 3, click 1
    assert history(dynamodb, "u00002") == {}  # impressions are not history


def test_malformed_records_are_skipped_not_retried(dynamodb: Any) -> None:
    assert run(dynamodb, "ingest_kinesis_malformed") == {"batchItemFailures": []}
    assert history(dynamodb, "u00001") == {"i000001": "3"}
    assert history(dynamodb, "u00003") == {}


def test_a_failed_write_is_reported_for_retry(dynamodb: Any) -> None:
    stubber = Stubber(dynamodb)
    stubber.add_client_error("transact_write_items", service_error_code="ProvisionedThroughputExceededException",
                             http_status_code=400)
    stubber.add_response("transact_write_items", {})
    with stubber:
        response = run(dynamodb, "ingest_kinesis")
    first = load_event("ingest_kinesis")["Records"][0]["kinesis"]["sequenceNumber"]
    assert response == {"batchItemFailures": [{"itemIdentifier": first}]}


def test_ingest_settings_require_the_table() -> None:
    with pytest.raises(SettingsError, match="TASTEBUD_HISTORY_TABLE"):
        IngestSettings.from_env({})
    assert IngestSettings.from_env({"TASTEBUD_HISTORY_TABLE": "h"}).history_ttl_days == 180.0
    with pytest.raises(SettingsError):
        IngestSettings.from_env({"TASTEBUD_HISTORY_TABLE": "h", "TASTEBUD_HISTORY_TTL_DAYS": "-1"})


def test_a_redelivered_batch_is_not_counted_twice(dynamodb: Any) -> None:
    """Kinesis retries / bisection re-deliver the same records (same eventID): weights stay exact."""
    assert run(dynamodb, "ingest_kinesis") == {"batchItemFailures": []}
    assert run(dynamodb, "ingest_kinesis") == {"batchItemFailures": []}  # the whole batch again
    assert history(dynamodb, "u00001") == {"i000001": "3", "i000002": "1"}


def test_a_partially_failed_batch_retried_counts_each_event_once(dynamodb: Any) -> None:
    stubber = Stubber(dynamodb)
    stubber.add_client_error("transact_write_items", service_error_code="ProvisionedThroughputExceededException",
                             http_status_code=400)
    with stubber:  # first record fails, the stubber then runs dry: the second fails too
        first = run(dynamodb, "ingest_kinesis")
    assert len(first["batchItemFailures"]) >= 1
    assert run(dynamodb, "ingest_kinesis") == {"batchItemFailures": []}  # Lambda's retry: all records again
    assert run(dynamodb, "ingest_kinesis") == {"batchItemFailures": []}  # and a bisection re-delivery
    assert history(dynamodb, "u00001") == {"i000001": "3", "i000002": "1"}


def test_out_of_order_events_keep_the_newest_timestamp(dynamodb: Any) -> None:
    from tastebud.domain import InteractionEvent

    writer = HistoryWriter("history", client=dynamodb, clock=lambda: 1_764_140_000.0)
    assert writer.record(InteractionEvent("u9", "i1", "purchase", 200.0), delivery_id="a")
    assert writer.record(InteractionEvent("u9", "i1", "click", 100.0), delivery_id="b")  # older, still adds
    assert not writer.record(InteractionEvent("u9", "i1", "click", 100.0), delivery_id="b")  # duplicate
    item = dynamodb.get_item(TableName="history", Key={"user_id": {"S": "u9"}, "item_id": {"S": "i1"}})["Item"]
    assert item["weight"]["N"] == "4" and item["last_ts"]["N"] == "200.0"


def test_the_dynamodb_history_folds_like_training(dynamodb: Any) -> None:
    """Events written by the ingest side and read by the request side == tastebud.features.history's fold of them."""
    import numpy as np

    from tastebud.adapters.aws.dynamodb_features import DynamoFeatureStore
    from tastebud.domain import InteractionEvent, UserProfile
    from tastebud.features.history import with_events

    from factories import make_catalog

    day = 86400.0
    events = [("i3", "purchase", 1_760_000_000.0 - 10 * day), ("i3", "click", 1_760_000_000.0 - 8 * day),
              ("i4", "purchase", 1_760_000_000.0 - 7 * day - 3600), ("i3", "purchase", 1_760_000_000.0 - 2 * day),
              ("i4", "add_to_cart", 1_760_000_000.0 - day), ("i5", "view", 1_760_000_000.0)]
    writer = HistoryWriter("history", client=dynamodb, clock=lambda: 1_764_140_000.0)
    for n, (item, kind, ts) in enumerate(events):
        writer.record(InteractionEvent("u7", item, kind, ts), delivery_id=f"d{n}")
    catalog = make_catalog(12)
    stored = DynamoFeatureStore("profiles", "history", catalog, client=dynamodb).user("u7")
    folded = with_events(UserProfile.cold("u7"), catalog.rows_of([e[0] for e in events]), [e[1] for e in events],
                         np.asarray([e[2] for e in events]))
    assert stored.history_rows.tolist() == folded.history_rows.tolist() == [4, 3]
    np.testing.assert_allclose(stored.history_weights, folded.history_weights)
    np.testing.assert_allclose(stored.history_last_ts, folded.history_last_ts)
    np.testing.assert_allclose(stored.history_repeat, folded.history_repeat)


def test_the_recency_index_projects_every_history_attribute_the_request_reads() -> None:
    from tastebud.features.history import REPEAT_COLUMNS

    from helpers import load_template

    table = load_template()["Resources"]["HistoryTable"]["Properties"]
    (index,) = table["LocalSecondaryIndexes"]
    assert set(index["Projection"]["NonKeyAttributes"]) == {"weight", *REPEAT_COLUMNS}
