"""The open-loop load generator of `tastebud bench --http` against a real local HTTP/1.1 server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from tastebud_bench.open_loop import open_loop_load, request_bytes


class _ClosingHandler(BaseHTTPRequestHandler):
    """Slow enough that requests queue on their connection; every second answer says ``Connection: close``."""

    protocol_version = "HTTP/1.1"
    answered: ClassVar[int] = 0
    methods: ClassVar[list[str]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        type(self).methods.append(self.command)
        time.sleep(0.01)
        type(self).answered += 1
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        if type(self).answered % 2 == 0:
            self.send_header("connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def closing_server() -> Iterator[str]:
    _ClosingHandler.answered = 0
    _ClosingHandler.methods = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ClosingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_connection_the_server_closes_is_never_reused(closing_server: str) -> None:
    # One connection, a request every 5 ms against 10 ms answers: the next request is always waiting when the
    # answer arrives. Writing it on a connection answered with ``Connection: close`` would be reset by the server.
    result = open_loop_load(closing_server, [b'{"user_id": "u1", "k": 5}'], rate=200.0, duration_s=0.4,
                            connections=1, path="/v1/recommendations")
    assert result.errors == 0, result.error_detail
    assert result.completed == result.scheduled == 80
    assert _ClosingHandler.answered == 80


def test_get_requests_have_no_body(closing_server: str) -> None:
    result = open_loop_load(closing_server, [None], rate=50.0, duration_s=0.2, connections=2, path="/health/live")
    assert result.errors == 0 and result.completed == 10
    assert set(_ClosingHandler.methods) == {"GET"}
    assert request_bytes("h:1", "/health/live", None) == b"GET /health/live HTTP/1.1\r\nHost: h:1\r\n\r\n"
