"""The interaction-event codec: ONE parser for the HTTP events route, the Kinesis ingest function and replay files.

An event is one JSON object with the data contract's interaction columns plus ``event_id``. A malformed event
raises BadRequestError naming the field, so a batch can report it per record and apply the rest.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from datetime import datetime
from typing import Any

from tastebud.domain import InteractionEvent
from tastebud.errors import BadRequestError
from tastebud.event_types import EVENT_TYPES

MAX_ID_LENGTH = 128
# Clocks disagree a little; an event from further ahead than this is a bug upstream, not the future.
MAX_CLOCK_SKEW_S = 300.0
_OPTIONAL_TEXT = ("session_id", "request_id")


def encode_event(event: InteractionEvent) -> bytes:
    document = {key: value for key, value in asdict(event).items() if value is not None}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def decode_event(data: bytes | str, *, now: float | None = None, require_event_id: bool = False) -> InteractionEvent:
    """Parse and validate one JSON-encoded event (a Kinesis record, a line of a replay file)."""
    try:
        document: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"event is not JSON: {exc}", field="body", code="invalid_json") from exc
    return parse_event(document, now=now, require_event_id=require_event_id)


def _identifier(document: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = document.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequestError(f"{name} must be a non-empty string", field=name)
    if len(value) > MAX_ID_LENGTH:
        raise BadRequestError(f"{name} is {len(value)} characters long; at most {MAX_ID_LENGTH}", field=name)
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise BadRequestError(f"{name} contains control characters", field=name)
    return value


def parse_timestamp(value: Any) -> float:
    """Epoch seconds (a number) or an ISO-8601 string with a time zone -> finite epoch seconds."""
    if isinstance(value, bool):
        raise BadRequestError("timestamp must be epoch seconds or ISO-8601, not a boolean", field="timestamp")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise BadRequestError(f"timestamp {value!r} is not ISO-8601 (e.g. 2026-12-01T12:30:00Z)",
                                  field="timestamp") from exc
        if parsed.tzinfo is None:
            raise BadRequestError(f"timestamp {value!r} has no time zone; add Z or +hh:mm", field="timestamp")
        seconds = parsed.timestamp()
    else:
        raise BadRequestError("timestamp must be epoch seconds or an ISO-8601 string", field="timestamp")
    if not math.isfinite(seconds) or seconds < 0:
        raise BadRequestError(f"timestamp {value!r} is not a valid time", field="timestamp")
    return seconds


def _count(document: dict[str, Any], name: str, minimum: int) -> int | None:
    value = document.get(name)
    if value is None:
        return None
    # 3.0 is an integer value; 3.5, true and "3" are not.
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        raise BadRequestError(f"{name} must be an integer", field=name)
    if value < minimum:
        raise BadRequestError(f"{name} must be >= {minimum}", field=name)
    return int(value)


def parse_event(document: Any, *, now: float | None = None, require_event_id: bool = False) -> InteractionEvent:
    """Validate one decoded event; ``now`` rejects events from the future, ``require_event_id`` ids for dedup."""
    if not isinstance(document, dict):
        raise BadRequestError("event must be a JSON object", field="body")
    event_id = _identifier(document, "event_id", required=require_event_id)
    user_id = _identifier(document, "user_id", required=True)
    item_id = _identifier(document, "item_id", required=True)
    event_type = document.get("event_type")
    if event_type not in EVENT_TYPES:
        raise BadRequestError(f"event_type must be one of {', '.join(EVENT_TYPES)}", field="event_type")
    if "timestamp" not in document:
        raise BadRequestError("timestamp is required (epoch seconds or ISO-8601)", field="timestamp")
    timestamp = parse_timestamp(document["timestamp"])
    if now is not None and timestamp > now + MAX_CLOCK_SKEW_S:
        raise BadRequestError(f"timestamp is {timestamp - now:.0f} s in the future", field="timestamp")
    optional: dict[str, str | None] = {}
    for name in _OPTIONAL_TEXT:
        value = document.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_ID_LENGTH):
            raise BadRequestError(f"{name} must be a string of at most {MAX_ID_LENGTH} characters", field=name)
        optional[name] = value
    assert user_id is not None and item_id is not None
    return InteractionEvent(
        user_id=user_id, item_id=item_id, event_type=event_type, timestamp=timestamp,
        request_id=optional["request_id"], session_id=optional["session_id"],
        position=_count(document, "position", 0), quantity=_count(document, "quantity", 1), event_id=event_id,
    )
