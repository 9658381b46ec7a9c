"""The ASGI application of the local server: each HTTP request -> an API Gateway v2 event -> the Lambda handler.

The handler is built once per worker process, at ASGI lifespan start-up, by calling ``handler_factory`` (the
worker accepts connections only after that). The handler is called inline on the event loop: it is CPU-bound
(~1–2 ms), so a worker is one request at a time on one core, as a Lambda execution environment is; threads would
only add GIL contention. Run one worker per core.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tastebud.api.http import LambdaHandler
from tastebud.api.request_guard import MAX_BODY_BYTES
from tastebud.heap import freeze_startup_heap
from tastebud.http_server.balance import ConnectionBalance
from tastebud.http_server.timeline import WorkerTimeline
from tastebud.local_server import LocalLambdaContext, http_api_event

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
HandlerFactory = Callable[[], LambdaHandler]

access_logger = logging.getLogger("tastebud.access")
error_logger = logging.getLogger("tastebud.server")

# A caller's X-Request-Id is kept (one id across a proxy and this server) when it looks like an id.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:=+/-]{1,128}")


class BodyTooLargeError(Exception):
    """The request body passed the size limit while it was being read."""


def _json_error(status: int, code: str, message: str, request_id: str,
                extra_headers: tuple[tuple[bytes, bytes], ...] = ()) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode()), *extra_headers]
    return status, headers, body


class LambdaAsgiApp:
    """ASGI 3 application around a Lambda handler (API Gateway HTTP API payload v2.0)."""

    def __init__(self, handler_factory: HandlerFactory, *, max_body_bytes: int = MAX_BODY_BYTES,
                 access_log: bool = True, balance: ConnectionBalance | None = None,
                 timeline: WorkerTimeline | None = None) -> None:
        self._handler_factory = handler_factory
        self._handler: LambdaHandler | None = None
        self._max_body_bytes = max_body_bytes
        self._access_log = access_log
        self._pid = os.getpid()
        self._draining = False
        self._balance = balance
        self._open_connections: Callable[[], int] | None = None
        self._timeline = timeline

    def count_connections_with(self, open_connections: Callable[[], int]) -> None:
        """The server tells how many connections this worker has open (for :class:`ConnectionBalance`)."""
        self._open_connections = open_connections

    def publish_connections(self) -> None:
        """Tell the other workers how many connections this one holds (the server calls this on every tick)."""
        if self._balance is not None and self._open_connections is not None:
            self._balance.publish(self._open_connections())

    def begin_draining(self) -> None:
        """The worker is stopping: from now on every response closes its connection (see draining.py)."""
        self._draining = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        # websocket scopes are not served (the server runs with ws="none")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self._handler = self._handler_factory()
                    self._pid = os.getpid()
                except Exception as exc:  # any start-up failure: report it and let the worker exit
                    error_logger.exception("worker start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                    return
                freeze_startup_heap()  # before the first request: no full collection walks the start-up heap
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._timeline is not None:
                    self._timeline.write()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _handler_or_build(self) -> LambdaHandler:
        if self._handler is None:  # a server that runs without lifespan events
            self._handler = self._handler_factory()
        return self._handler

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body_bytes:
                raise BodyTooLargeError
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _request_id(self, headers: dict[str, str]) -> str:
        given = headers.get("x-request-id", "")
        return given if _REQUEST_ID.fullmatch(given) else str(uuid.uuid4())

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        at_enter = self._timeline.readings() if self._timeline is not None else None
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value  # API Gateway joins repeats
        request_id = self._request_id(headers)
        method = scope["method"]
        target = scope.get("raw_path") or scope["path"].encode()
        raw_path = target.decode("latin-1")
        if scope.get("query_string"):
            raw_path += "?" + scope["query_string"].decode("latin-1")
        body = b""
        read = converted = handled = started  # the request timeline's marks (a 413 has no handler call)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body_bytes:
            response = self._too_large(request_id)
        else:
            try:
                body = await self._read_body(receive)
            except BodyTooLargeError:
                response = self._too_large(request_id)
            else:
                read = time.perf_counter()
                response, converted = self._call_handler(method, raw_path, headers, body, request_id)
                handled = time.perf_counter()
        status, response_headers, payload = response
        response_headers.append((b"content-length", str(len(payload)).encode()))
        if all(name != b"connection" for name, _ in response_headers) and (self._draining or self._over_fair_share()):
            response_headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})
        if self._timeline is not None and at_enter is not None:
            self._timeline.record(request_id, scope["path"], status,
                                  (started, read, converted, handled, time.perf_counter()), at_enter,
                                  self._timeline.readings(), payload)
        if self._access_log:
            access_logger.info(json.dumps({
                "level": "INFO", "message": "access", "request_id": request_id, "method": method,
                "path": scope["path"], "status": status, "duration_ms": round((time.perf_counter() - started) * 1e3, 3),
                "bytes_in": len(body), "bytes_out": len(payload), "pid": self._pid,
                "client": (scope.get("client") or ("", 0))[0], "timestamp": round(time.time(), 3)}))

    def _over_fair_share(self) -> bool:
        if self._balance is None or self._open_connections is None:
            return False
        return self._balance.over_fair_share(self._open_connections())

    def _too_large(self, request_id: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        # The unread body stays in the stream, so the connection cannot be reused.
        return _json_error(413, "too_large", f"request body over {self._max_body_bytes} bytes", request_id,
                           ((b"connection", b"close"),))

    def _call_handler(self, method: str, raw_path: str, headers: dict[str, str], body: bytes,
                      request_id: str) -> tuple[tuple[int, list[tuple[bytes, bytes]], bytes], float]:
        """The response, and when the handler was called (after the event conversion)."""
        event = http_api_event(method, raw_path, headers, body, request_id)
        converted = time.perf_counter()
        return self._handled(event, request_id), converted

    def _handled(self, event: dict[str, Any], request_id: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        try:
            result = self._handler_or_build()(event, LocalLambdaContext(aws_request_id=request_id))
            status = int(result.get("statusCode", 200))
            payload = result.get("body") or ""
            data = base64.b64decode(payload) if result.get("isBase64Encoded") else str(payload).encode()
        except Exception:  # the handler maps every error itself; this is the last line of defence
            error_logger.exception("handler raised", extra={"request_id": request_id})
            return _json_error(500, "internal", "internal error; it has been logged", request_id)
        response_headers = [(name.lower().encode("latin-1"), str(value).encode("latin-1"))
                            for name, value in (result.get("headers") or {}).items()
                            if name.lower() not in ("content-length", "x-request-id")]
        response_headers.append((b"x-request-id", request_id.encode()))
        response_headers.extend((b"set-cookie", cookie.encode("latin-1")) for cookie in result.get("cookies") or ())
        return status, response_headers, data
