"""End to end through the local HTTP server (uvicorn + LambdaAsgiApp, as in each worker of `tastebud serve`):
real sockets, the same handler as Lambda, real models and Redis."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tastebud.api.http import create_handler

from servers import threaded_server

pytestmark = pytest.mark.slow


@pytest.fixture
def base_url(service) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with threaded_server(lambda: create_handler(lambda: service)) as url:
        yield url


def call(method: str, url: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_recommend_then_stock_out_then_recommend(base_url: str, active_user: str) -> None:
    status, body = call("POST", f"{base_url}/v1/recommendations", {"user_id": active_user, "k": 8})
    assert status == 200 and len(body["items"]) == 8
    assert len({i["item_id"] for i in body["items"]}) == 8
    assert set(body["stage_ms"]) == {"retrieve", "rerank", "fairness", "stock", "total"}
    top = body["items"][0]["item_id"]

    status, stock = call("PUT", f"{base_url}/v1/stock/{top}", {"in_stock": False})
    assert status == 200 and stock == {"item_id": top, "in_stock": False, "quantity": None}

    status, again = call("POST", f"{base_url}/v1/recommendations", {"user_id": active_user, "k": 8})
    assert status == 200 and top not in {i["item_id"] for i in again["items"]} and len(again["items"]) == 8


def test_health_and_errors_over_http(base_url: str) -> None:
    status, health = call("GET", f"{base_url}/health")
    assert status == 200 and health["status"] == "ok" and health["items"] > 0
    status, error = call("POST", f"{base_url}/v1/recommendations", raw=b"{not json")
    assert status == 400 and error["error"]["code"] == "invalid_json"
    status, error = call("POST", f"{base_url}/v1/recommendations", {"user_id": "u", "k": 0})
    assert status == 400 and error["error"]["field"] == "k"
    status, error = call("PUT", f"{base_url}/v1/stock/does-not-exist", {"in_stock": True})
    assert status == 404
    status, error = call("GET", f"{base_url}/nope")
    assert status == 404
