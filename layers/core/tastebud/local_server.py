"""Local HTTP server: turns each HTTP request into an API Gateway HTTP API (payload v2.0) event and calls the
very same Lambda handler the cloud runs. Standard library only; one thread per connection.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tastebud.api.http import LambdaHandler

MAX_BODY_BYTES = 1 << 20  # API Gateway's own payload limit is 10 MB; nothing here needs more than 1 MB


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
    """An API Gateway HTTP API payload v2.0 event for one request."""
    parts = urlsplit(raw_path)
    is_text = all(32 <= b < 127 or b in (9, 10, 13) for b in body[:4096]) if body else True
    try:
        text = body.decode("utf-8") if is_text else None
    except UnicodeDecodeError:
        text = None
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "http": {"method": method, "path": parts.path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": headers.get("User-Agent", "")},
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": text is None,
    }
    if parts.query:
        event["queryStringParameters"] = dict(parse_qsl(parts.query))
    if body:
        event["body"] = text if text is not None else base64.b64encode(body).decode()
    return event


def make_request_handler(handler: LambdaHandler) -> type[BaseHTTPRequestHandler]:
    class LambdaProxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "tastebud-local"

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._send(413, {"content-type": "application/json"},
                           json.dumps({"error": {"code": "too_large", "message": "request body over 1 MB"}}).encode())
                return
            body = self.rfile.read(length) if length else b""
            request_id = str(uuid.uuid4())
            event = http_api_event(self.command, self.path, dict(self.headers.items()), body, request_id)
            result = handler(event, LocalLambdaContext(aws_request_id=request_id))
            payload = result.get("body") or ""
            data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
            self._send(int(result.get("statusCode", 200)), result.get("headers") or {}, data)

        def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

        def log_message(self, format: str, *args: Any) -> None:
            pass  # Powertools already logs each request as JSON

    return LambdaProxy


def make_server(handler: LambdaHandler, host: str = "127.0.0.1", port: int = 3000) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), make_request_handler(handler))
    server.daemon_threads = True
    return server
