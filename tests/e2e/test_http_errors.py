"""Any input through the real HTTP stack (uvicorn + httptools + LambdaAsgiApp) gets a 4xx JSON error, never a 5xx."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tastebud.api.http import create_handler
from tastebud.api.request_guard import MAX_BODY_BYTES

from factories import MemoryStock, make_service
from servers import threaded_server


@pytest.fixture(scope="module")
def address() -> Iterator[tuple[str, int]]:
    service = make_service(stock=MemoryStock(), histories={"u00001": [0, 3, 6]}, item_id_format="i{:06d}")
    with threaded_server(lambda: create_handler(lambda: service)) as url:
        parts = urlsplit(url)
        yield str(parts.hostname), int(parts.port or 0)


def request(address: tuple[str, int], method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(payload)
    finally:
        connection.close()


def assert_json_error(result: tuple[int, dict[str, str], Any], status: int, code: str) -> dict[str, str]:
    got_status, headers, body = result
    assert got_status == status, body
    assert headers["content-type"] == "application/json" and body["error"]["code"] == code
    return headers


def test_a_body_that_is_not_utf8_is_a_400(address: tuple[str, int]) -> None:
    result = request(address, "POST", "/v1/recommendations", b'{"user_id": "\xff\xfe"}',
                     {"content-type": "application/json"})
    assert_json_error(result, 400, "invalid_json")


def test_deep_nesting_is_a_400(address: tuple[str, int]) -> None:
    assert_json_error(request(address, "PUT", "/v1/stock/i000001", b"[" * 100_000 + b"]" * 100_000), 400,
                      "invalid_json")


@pytest.mark.parametrize(("method", "path", "allowed"),
                         [("TRACE", "/health", "GET"), ("DELETE", "/v1/recommendations", "POST"),
                          ("PATCH", "/v1/stock/i000001", "PUT"), ("OPTIONS", "/health", "GET")])
def test_undeclared_methods_are_405_with_allow(address: tuple[str, int], method: str, path: str, allowed: str) -> None:
    headers = assert_json_error(request(address, method, path), 405, "method_not_allowed")
    assert headers["allow"] == allowed


def test_unknown_routes_are_json_404(address: tuple[str, int]) -> None:
    assert_json_error(request(address, "GET", "/v1/nothing?x=1"), 404, "not_found")


def test_a_json_body_without_a_content_type_is_json(address: tuple[str, int]) -> None:
    for headers in ({}, {"content-type": "application/x-www-form-urlencoded"}, {"content-type": "text/plain"}):
        status, _, body = request(address, "PUT", "/v1/stock/i000002", b'{"in_stock": false}', headers)
        assert (status, body) == (200, {"item_id": "i000002", "in_stock": False, "quantity": None}), headers


def raw_exchange(address: tuple[str, int], data: bytes) -> tuple[int, dict[str, str], Any]:
    """Send raw bytes, read the whole answer until the server closes the connection."""
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, payload = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, json.loads(payload)


def test_an_oversize_body_is_a_413_before_it_is_read(address: tuple[str, int]) -> None:
    declared = (f"POST /v1/recommendations HTTP/1.1\r\nhost: x\r\ncontent-length: {MAX_BODY_BYTES + 1}\r\n\r\n"
                .encode())
    headers = assert_json_error(raw_exchange(address, declared), 413, "too_large")
    assert headers["connection"] == "close"  # the unread body is never parsed as a next request


def test_an_oversize_chunked_body_is_a_413(address: tuple[str, int]) -> None:
    chunk = b"x" * (MAX_BODY_BYTES // 2 + 1)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    data = b"POST /v1/recommendations HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n" + frame * 2
    assert_json_error(raw_exchange(address, data + b"0\r\n\r\n"), 413, "too_large")


def test_a_whole_float_quantity_is_an_integer(address: tuple[str, int]) -> None:
    status, _, body = request(address, "PUT", "/v1/stock/i000003", b'{"in_stock": true, "quantity": 314.0}')
    assert (status, body["quantity"]) == (200, 314)


def test_keep_alive_connection_serves_many_requests_with_request_ids(address: tuple[str, int]) -> None:
    connection = http.client.HTTPConnection(*address, timeout=30)
    ids = set()
    try:
        for _ in range(20):
            connection.request("POST", "/v1/recommendations", body=b'{"user_id": "u00001", "k": 3}')
            response = connection.getresponse()
            body = json.loads(response.read())
            assert response.status == 200 and len(body["items"]) == 3
            assert response.getheader("x-request-id") == body["request_id"]
            ids.add(body["request_id"])
        connection.request("GET", "/health", headers={"x-request-id": "trace-abc.1"})
        response = connection.getresponse()
        response.read()
        assert response.getheader("x-request-id") == "trace-abc.1"  # a caller's id is kept
    finally:
        connection.close()
    assert len(ids) == 20
