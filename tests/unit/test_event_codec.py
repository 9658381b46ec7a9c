"""The event codec shared by POST /v1/events, the Kinesis ingest function and replay files."""

from __future__ import annotations

import json

import pytest

from tastebud.errors import BadRequestError
from tastebud.event_codec import decode_event, encode_event, parse_event

NOW = 1_764_000_000.0
GOOD = {"event_id": "e1", "user_id": "u1", "item_id": "i1", "event_type": "purchase", "timestamp": NOW - 60}


def test_round_trip_keeps_every_field() -> None:
    event = parse_event({**GOOD, "session_id": "s", "request_id": "r", "position": 3.0, "quantity": 2},
                        now=NOW, require_event_id=True)
    assert decode_event(encode_event(event)) == event
    assert (event.position, event.quantity, event.event_id) == (3, 2, "e1")


def test_iso_timestamps_with_a_zone_are_epoch_seconds() -> None:
    assert parse_event({**GOOD, "timestamp": "2025-11-24T16:00:00Z"}).timestamp == 1_764_000_000.0


@pytest.mark.parametrize(("change", "field"), [
    ({"event_id": None}, "event_id"),
    ({"event_id": "x" * 129}, "event_id"),
    ({"user_id": " "}, "user_id"),
    ({"item_id": 7}, "item_id"),
    ({"event_type": "like"}, "event_type"),
    ({"timestamp": float("nan")}, "timestamp"),
    ({"timestamp": NOW + 3600}, "timestamp"),
    ({"timestamp": "2025-11-24T16:00:00"}, "timestamp"),
    ({"timestamp": True}, "timestamp"),
    ({"position": -1}, "position"),
    ({"quantity": 1.5}, "quantity"),
    ({"quantity": 0}, "quantity"),
    ({"session_id": 5}, "session_id"),
])
def test_each_bad_field_is_named(change: dict[str, object], field: str) -> None:
    with pytest.raises(BadRequestError) as raised:
        parse_event({**GOOD, **change}, now=NOW, require_event_id=True)
    assert raised.value.field == field and raised.value.message


def test_not_json_and_not_an_object_are_body_errors() -> None:
    with pytest.raises(BadRequestError, match="not JSON"):
        decode_event(b"\xff{")
    with pytest.raises(BadRequestError) as raised:
        decode_event(json.dumps([GOOD]))
    assert raised.value.field == "body"


def test_kinesis_records_may_omit_the_event_id() -> None:
    assert parse_event({k: v for k, v in GOOD.items() if k != "event_id"}).event_id is None
