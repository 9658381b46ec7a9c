"""What every request goes through before routing, identically on Lambda and on the local server.

DESIGN §3: request bodies are JSON whatever the content type says; a body that is not UTF-8 JSON is a 400;
a bad request never yields a 5xx. Powertools alone answers 500 for a base64 body that is not UTF-8 (it decodes
it inside the route), 500 for JSON nested deeper than Python's recursion limit, and parses
``application/x-www-form-urlencoded`` as a form (so ``curl -d '{"in_stock": false}'`` without a content type
was answered ``in_stock: Field required``). :func:`normalise_event` turns the event into one with a plain UTF-8
JSON body, or into a :class:`Rejection` that the handler answers with our error body.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

MAX_BODY_BYTES = 1 << 20  # API Gateway's own payload limit is 10 MB; no request of this API needs more than 1 MB
MAX_JSON_DEPTH = 32  # our deepest body (events -> event -> field) is 3 levels deep

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


@dataclass(frozen=True)
class Rejection:
    """A request refused before routing: HTTP status and the fields of our error body."""

    status: int
    code: str
    message: str
    field: str | None = None


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether brackets outside JSON strings nest deeper than ``limit`` (no parsing, no recursion)."""
    if text.count("[") + text.count("{") <= limit:  # fast path: too few brackets to nest that deep
        return False
    depth = 0
    for bracket in _BRACKETS.findall(_JSON_STRING.sub('""', text)):
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return True
    return False


def _body_bytes(event: dict[str, Any]) -> bytes | Rejection:
    body = event.get("body")
    if body is None:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return Rejection(HTTPStatus.BAD_REQUEST, "invalid_body", "request body is not valid base64", "body")
    return str(body).encode("utf-8", "surrogatepass")


def normalise_event(event: dict[str, Any], max_body_bytes: int = MAX_BODY_BYTES) -> dict[str, Any] | Rejection:
    """A copy of an API Gateway v2 event whose body is UTF-8 JSON text, or why the request is refused.

    Only events that carry a body change: the body becomes plain text (``isBase64Encoded`` false) and the
    content type ``application/json``, so the route parses it as JSON whatever the client declared.
    """
    event = _decoded_path(event)
    raw = _body_bytes(event)
    if isinstance(raw, Rejection):
        return raw
    if not raw:
        return event
    if len(raw) > max_body_bytes:
        return Rejection(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large",
                         f"request body is {len(raw)} bytes; the limit is {max_body_bytes}", "body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(HTTPStatus.BAD_REQUEST, "invalid_json",
                         f"request body is not UTF-8 (byte {exc.start}); send UTF-8 JSON", "body")
    if json_depth_exceeds(text):
        return Rejection(HTTPStatus.BAD_REQUEST, "invalid_json",
                         f"request body nests deeper than {MAX_JSON_DEPTH} levels", "body")
    headers = {name: value for name, value in (event.get("headers") or {}).items() if name.lower() != "content-type"}
    headers["content-type"] = "application/json"
    return {**event, "headers": headers, "body": text, "isBase64Encoded": False}


def _decoded_path(event: dict[str, Any]) -> dict[str, Any]:
    """Route on the UTF-8 decoded path: API Gateway's rawPath keeps percent-escapes, and the resolver reads path
    parameters from it, so /v1/items/%C3%A9 must name the item "é", not "%C3%A9"."""
    raw_path = event.get("rawPath")
    if not isinstance(raw_path, str) or "%" not in raw_path:
        return event
    decoded = unquote(raw_path, errors="strict") if _is_utf8_escaped(raw_path) else raw_path
    return {**event, "rawPath": decoded}


def _is_utf8_escaped(path: str) -> bool:
    try:
        unquote(path, errors="strict")
    except UnicodeDecodeError:
        return False  # not UTF-8 escapes: leave the path as sent (no route will match an invalid id anyway)
    return True


def allowed_methods(app: Any, path: str) -> list[str]:
    """The methods routed for ``path`` on a Powertools resolver (empty: the path itself is unknown).

    Powertools calls the not-found handler for a known path with an undeclared method too; this tells a 405
    from a 404. It reads the resolver's route tables (``aws-lambda-powertools~=3.37``, pinned in the layer).
    """
    routes = [*getattr(app, "_static_routes", ()), *getattr(app, "_dynamic_routes", ())]
    return sorted({route.method for route in routes if route.rule.match(path)})
