"""One contract for every FeatureStore: the embedded user table and DynamoDB (moto), fed the same history.

The DynamoDB side is written the way production writes it: events through ``HistoryWriter`` (the ingest
function's code), profiles as items; the read side must then agree with the user table built from the
same positives (rows most recent first, graded weights summed, preferences mapped to their rows).
"""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import numpy as np
import pytest
from aws_doubles import create_feature_tables
from botocore.stub import Stubber
from moto import mock_aws

from tastebud.adapters.aws.dynamodb_features import HISTORY_RECENCY_INDEX, DynamoFeatureStore, HistoryWriter
from tastebud.adapters.embedded.user_table import UserTable
from tastebud.domain import InteractionEvent
from tastebud.errors import DependencyError
from tastebud.features.history import REPEAT_COLUMNS
from tastebud.ports import FeatureStore

from factories import NOW, make_catalog

CATALOG = make_catalog(20)
TERMS = ["sushi", "vegan", "spicy"]
# (user, item row, event, seconds ago); u1 clicked i3 then purchased it, and more.
EVENTS = [("u1", 3, "click", 500), ("u1", 5, "purchase", 400), ("u1", 3, "purchase", 100), ("u1", 8, "view", 50),
          ("u1", 7, "add_to_cart", 300), ("u2", 1, "click", 10)]
EXPECTED = {"u1": ([3, 7, 5], [4.0, 2.0, 3.0]), "u2": ([1], [1.0])}


def region_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")


def user_table() -> UserTable:
    users = sorted(EXPECTED)
    rows = [np.asarray(EXPECTED[u][0], np.int64) for u in users]
    weights = [np.asarray(EXPECTED[u][1], np.float32) for u in users]
    offsets = np.concatenate([[0], np.cumsum([r.size for r in rows])]).astype(np.int64)
    return UserTable(user_ids=np.asarray(users), offsets=offsets, history_rows=np.concatenate(rows),
                     history_weights=np.concatenate(weights), history_last_ts=np.zeros(int(offsets[-1]), np.float32),
                     preference_offsets=np.asarray([0, 2, 2]), preference_rows=np.asarray([0, 2]),
                     home_lat=np.asarray([52.5, np.nan]), home_lon=np.asarray([13.4, np.nan]))


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    region_env(monkeypatch)
    with mock_aws():
        client = boto3.client("dynamodb")
        create_feature_tables(client)
        writer = HistoryWriter("history", client=client, clock=lambda: NOW)
        for user, row, kind, ago in EVENTS:
            writer.record(InteractionEvent(user, CATALOG.item_ids[row], kind, NOW - ago))
        client.put_item(TableName="profiles", Item={
            "user_id": {"S": "u1"}, "preferences": {"L": [{"S": "sushi"}, {"S": "unknown-term"}, {"S": "spicy"}]},
            "home_lat": {"N": "52.5"}, "home_lon": {"N": "13.4"}})
        yield client


@pytest.fixture(params=["user_table", "dynamodb"])
def store(request: pytest.FixtureRequest) -> FeatureStore:
    if request.param == "user_table":
        return user_table()
    client = request.getfixturevalue("dynamodb")
    return DynamoFeatureStore("profiles", "history", CATALOG, preference_terms=TERMS, client=client)


def test_is_a_feature_store(store: FeatureStore) -> None:
    assert isinstance(store, FeatureStore)


def test_history_is_most_recent_first_with_graded_weights(store: FeatureStore) -> None:
    for user_id, (rows, weights) in EXPECTED.items():
        profile = store.user(user_id)
        assert profile.known and profile.history_rows.dtype == np.int64
        assert profile.history_rows.tolist() == rows
        assert profile.history_weights.tolist() == weights


def test_profile_attributes(store: FeatureStore) -> None:
    profile = store.user("u1")
    assert profile.preference_rows.tolist() == [0, 2]  # unknown terms are skipped
    assert (profile.home_lat, profile.home_lon) == (52.5, 13.4)
    assert np.isnan(store.user("u2").home_lat)


def test_unknown_user_is_cold_never_an_error(store: FeatureStore) -> None:
    profile = store.user("nobody")
    assert profile.known is False and not profile.has_history and profile.user_id == "nobody"


def test_dynamodb_reads_are_one_get_and_one_recency_query(dynamodb: object) -> None:
    stubber = Stubber(dynamodb)
    stubber.add_response("get_item", {}, {"TableName": "profiles", "Key": {"user_id": {"S": "u9"}},
                                          "ConsistentRead": False})
    stubber.add_response("query", {"Items": [{"item_id": {"S": "i2"}, "weight": {"N": "3"},
                                              "last_ts": {"N": "5"}}]}, {
        "TableName": "history", "IndexName": HISTORY_RECENCY_INDEX, "ScanIndexForward": False,
        "KeyConditionExpression": "user_id = :u", "ExpressionAttributeValues": {":u": {"S": "u9"}},
        "ProjectionExpression": ", ".join(("item_id", "weight", "last_ts", *REPEAT_COLUMNS)), "Limit": 200})
    with stubber:
        profile = DynamoFeatureStore("profiles", "history", CATALOG, client=dynamodb).user("u9")
    assert profile.history_rows.tolist() == [2] and profile.known


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException",
                                  "ResourceNotFoundException", "InternalServerError"])
def test_dynamodb_errors_become_dependency_errors(dynamodb: object, code: str) -> None:
    stubber = Stubber(dynamodb)
    stubber.add_client_error("get_item", service_error_code=code, http_status_code=400)
    with stubber, pytest.raises(DependencyError, match="features"):
        DynamoFeatureStore("profiles", "history", CATALOG, client=dynamodb).user("u1")


def test_history_writer_ignores_non_positives_and_keeps_last_ts_monotonic(dynamodb: object) -> None:
    writer = HistoryWriter("history", client=dynamodb, clock=lambda: NOW)
    assert writer.record(InteractionEvent("u3", "i4", "impression", NOW)) is False
    assert writer.record(InteractionEvent("u3", "i4", "purchase", NOW)) is True
    assert writer.record(InteractionEvent("u3", "i4", "click", NOW - 999)) is True  # late event: weight only
    item = dynamodb.get_item(TableName="history", Key={"user_id": {"S": "u3"}, "item_id": {"S": "i4"}})["Item"]  # type: ignore[attr-defined]
    assert item["weight"] == {"N": "4"} and float(item["last_ts"]["N"]) == NOW
    assert int(item["expires_at"]["N"]) == int(NOW + 180 * 86400)
