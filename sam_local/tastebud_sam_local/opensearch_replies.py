"""What an OpenSearch domain answers: a JSON body, or the error body every REST endpoint uses."""

from __future__ import annotations

import json
from typing import Any

Reply = tuple[int, dict[str, str], bytes]


def json_reply(status: int, document: Any) -> Reply:
    return status, {"content-type": "application/json; charset=UTF-8"}, json.dumps(document).encode()


def opensearch_error(status: int, kind: str, reason: str, **extra: Any) -> Reply:
    """The error body every OpenSearch REST endpoint uses."""
    cause = {"type": kind, "reason": reason, **extra}
    return json_reply(status, {"error": {"root_cause": [cause], **cause}, "status": status})
