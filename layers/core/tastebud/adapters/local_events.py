"""EventSink for one machine: interaction events appended to a JSON Lines file, plus the event codec that the
Kinesis adapter and the ingest function share (one JSON object per event, the data contract's columns)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tastebud.domain import InteractionEvent
from tastebud.errors import BadRequestError

EVENT_TYPES = ("impression", "view", "click", "add_to_cart", "purchase")


def encode_event(event: InteractionEvent) -> bytes:
    document = {key: value for key, value in asdict(event).items() if value is not None}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def decode_event(data: bytes | str) -> InteractionEvent:
    """Parse and validate one event; a malformed one raises BadRequestError naming the field."""
    try:
        document: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"event is not JSON: {exc}", field="body", code="invalid_json") from exc
    if not isinstance(document, dict):
        raise BadRequestError("event must be a JSON object", field="body")
    for name in ("user_id", "item_id"):
        if not isinstance(document.get(name), str) or not document[name].strip():
            raise BadRequestError(f"{name} must be a non-empty string", field=name)
    if document.get("event_type") not in EVENT_TYPES:
        raise BadRequestError(f"event_type must be one of {', '.join(EVENT_TYPES)}", field="event_type")
    timestamp = document.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise BadRequestError("timestamp must be epoch seconds", field="timestamp")
    position = document.get("position")
    return InteractionEvent(
        user_id=document["user_id"], item_id=document["item_id"], event_type=document["event_type"],
        timestamp=float(timestamp), request_id=document.get("request_id"), session_id=document.get("session_id"),
        position=int(position) if isinstance(position, int) and not isinstance(position, bool) else None,
    )


class JsonlEventSink:
    """Appends events to ``path`` (one JSON object per line); thread-safe within a process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def put(self, events: Sequence[InteractionEvent]) -> None:
        if not events:
            return
        payload = b"".join(encode_event(event) + b"\n" for event in events)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("ab") as handle:
                handle.write(payload)

    def read(self) -> list[InteractionEvent]:
        if not self.path.is_file():
            return []
        return [decode_event(line) for line in self.path.read_bytes().splitlines() if line.strip()]
