"""One contract for every EventSink: the local JSON Lines file and Kinesis (moto), read back the way the
consumer reads them (``decode_event``); plus PutRecords' partial failures, retried with zero-delay jitter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tastebud.adapters.aws.kinesis_events import KinesisEventSink
from tastebud.adapters.aws.retry import RetryPolicy
from tastebud.adapters.local_events import JsonlEventSink, decode_event, encode_event
from tastebud.domain import InteractionEvent
from tastebud.errors import BadRequestError, DependencyError
from tastebud.ports import EventSink

from helpers import read_kinesis_stream

NO_SLEEP = RetryPolicy(attempts=3, sleep=lambda s: None)
EVENTS = [InteractionEvent("u1", "i1", "click", 1_760_000_000.5, request_id="r1", position=2),
          InteractionEvent("u2", "i9", "purchase", 1_760_000_001.0, session_id="s9"),
          InteractionEvent("u1", "i2", "impression", 1_760_000_002.0)]

Reader = Callable[[], list[InteractionEvent]]


def kinesis_reader(client: Any) -> Reader:
    return lambda: read_kinesis_stream(client)


@pytest.fixture(params=["jsonl", "kinesis"])
def sink(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[EventSink, Reader]:
    if request.param == "jsonl":
        local = JsonlEventSink(tmp_path / "events.jsonl")
        return local, local.read
    client = request.getfixturevalue("kinesis")
    return KinesisEventSink("events", client=client, retry=NO_SLEEP), kinesis_reader(client)


def test_is_an_event_sink(sink: tuple[EventSink, Reader]) -> None:
    assert isinstance(sink[0], EventSink)


def test_events_round_trip(sink: tuple[EventSink, Reader]) -> None:
    put, read = sink
    put.put(EVENTS[:2])
    put.put(EVENTS[2:])
    put.put([])
    assert sorted(read(), key=lambda e: e.timestamp) == EVENTS


def test_more_than_one_put_records_batch(sink: tuple[EventSink, Reader]) -> None:
    put, read = sink
    many = [InteractionEvent(f"u{n % 7}", f"i{n}", "view", float(n)) for n in range(1203)]
    put.put(many)
    assert sorted(read(), key=lambda e: e.timestamp) == many


class PartialFailures:
    """PutRecords answering with per-record failures (HTTP 200, FailedRecordCount > 0), as Kinesis does."""

    def __init__(self, failing_rounds: int) -> None:
        self.failing_rounds = failing_rounds
        self.calls: list[dict[str, Any]] = []

    def put_records(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        fail = len(self.calls) <= self.failing_rounds
        records = [{"ErrorCode": "ProvisionedThroughputExceededException",
                    "ErrorMessage": "Rate exceeded for shard shardId-000000000001 in stream events"}
                   if fail and n % 2 == 0 else {"SequenceNumber": "4959", "ShardId": "shardId-000000000000"}
                   for n in range(len(request["Records"]))]
        return {"FailedRecordCount": sum("ErrorCode" in r for r in records), "Records": records}


def test_only_failed_records_are_resent_keyed_by_user() -> None:
    client = PartialFailures(failing_rounds=1)
    KinesisEventSink("events", client=client, retry=NO_SLEEP).put(EVENTS)
    first, second = client.calls
    assert first["StreamName"] == "events"
    assert [r["PartitionKey"] for r in first["Records"]] == ["u1", "u2", "u1"]
    assert first["Records"][0]["Data"] == encode_event(EVENTS[0])
    assert [r["Data"] for r in second["Records"]] == [encode_event(EVENTS[0]), encode_event(EVENTS[2])]


def test_records_still_failing_after_the_last_attempt_raise() -> None:
    delays: list[float] = []
    client = PartialFailures(failing_rounds=99)
    sink = KinesisEventSink("events", client=client, retry=RetryPolicy(attempts=3, sleep=delays.append))
    with pytest.raises(DependencyError, match="1 of 3 records not written after 3 attempts"):
        sink.put(EVENTS)
    assert len(client.calls) == 3 and len(delays) == 2


def test_a_missing_stream_is_a_dependency_error(kinesis: Any) -> None:
    with pytest.raises(DependencyError, match="ResourceNotFoundException"):
        KinesisEventSink("nope", client=kinesis, retry=NO_SLEEP).put(EVENTS[:1])


@pytest.mark.parametrize(("data", "field"), [
    (b"not json", "body"), (b"[]", "body"), (b'{"item_id": "i1", "event_type": "click", "timestamp": 1}', "user_id"),
    (b'{"user_id": "u", "item_id": "i1", "event_type": "like", "timestamp": 1}', "event_type"),
    (b'{"user_id": "u", "item_id": "i1", "event_type": "click", "timestamp": "yesterday"}', "timestamp"),
])
def test_malformed_events_name_the_field(data: bytes, field: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        decode_event(data)
    assert caught.value.field == field
