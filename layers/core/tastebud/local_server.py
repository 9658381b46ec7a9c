"""An HTTP request as an API Gateway HTTP API (payload v2.0) event, and the Lambda context of a local call.

The local server (``tastebud.http_server``) turns each request into such an event and calls the very same Lambda
handler the cloud runs; tests call the handler with these events too. Standard library only.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


@dataclass(frozen=True)
class LocalLambdaContext:
    """The attributes Powertools reads from a Lambda context object."""

    aws_request_id: str
    function_name: str = "tastebud-local"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:tastebud-local"
    memory_limit_in_mb: int = 1769
    log_group_name: str = "local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def http_api_event(method: str, raw_path: str, headers: dict[str, str], body: bytes, request_id: str) -> dict[str, Any]:
    """An API Gateway HTTP API payload v2.0 event for one request.

    ``raw_path`` is the request target (path and query string, as sent); header names are lower-cased, as API
    Gateway does. A body that is not UTF-8 travels base64-encoded with ``isBase64Encoded`` set, as binary bodies do
    through API Gateway; the handler answers it with a 400.
    """
    parts = urlsplit(raw_path)
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        text: str | None = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            # Like API Gateway: rawPath stays percent-encoded, the routed path (and so path parameters) is decoded
            # as UTF-8, so /v1/items/%C3%A9 names the item "é".
            "http": {"method": method, "path": unquote(parts.path), "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": lowered.get("user-agent", "")},
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": text is None,
    }
    if parts.query:
        event["queryStringParameters"] = dict(parse_qsl(parts.query))
    if body:
        event["body"] = text if text is not None else base64.b64encode(body).decode()
    return event
