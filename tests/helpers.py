"""One place that loads the sample events in events/ (the same files `sam local invoke -e` uses)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


@cache
def _read(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / f"{name}.json").read_text())


def load_event(name: str, **body_overrides: Any) -> dict[str, Any]:
    """A fresh copy of ``events/<name>.json``; keyword arguments replace fields of its JSON body."""
    event = copy.deepcopy(_read(name))
    if body_overrides:
        body = json.loads(event.get("body") or "{}")
        body.update(body_overrides)
        event["body"] = json.dumps(body)
    return event


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])
