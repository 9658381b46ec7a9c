"""EventSink for one machine: interaction events appended to a JSON Lines file (codec: tastebud.event_codec)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from tastebud.domain import InteractionEvent
from tastebud.event_codec import decode_event, encode_event

__all__ = ["JsonlEventSink", "decode_event", "encode_event"]



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
