"""Any input gets a 4xx JSON error, never a 5xx: the Lambda handler with API Gateway events (events/*.json).

Bodies are JSON whatever the content type says (DESIGN §3); a body that is not UTF-8 JSON is a 400, an oversize
one a 413, JSON nested deeper than any request of this API a 400; an undeclared method is a 405 with `Allow`.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tastebud.api.request_guard import MAX_BODY_BYTES, MAX_JSON_DEPTH, json_depth_exceeds

from factories import MemoryStock
from helpers import invoke, load_event, response_json


def with_method(event: dict[str, Any], method: str) -> dict[str, Any]:
    event["requestContext"]["http"]["method"] = method
    event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
    return event


def assert_error(response: dict[str, Any], status: int, code: str) -> dict[str, Any]:
    assert response["statusCode"] == status, response["body"]
    assert response["headers"]["Content-Type"] == "application/json"
    error = response_json(response)["error"]
    assert error["code"] == code and error["message"]
    return dict(error)


@pytest.mark.parametrize("name", ["recommend", "stock_update"])
def test_a_body_that_is_not_utf8_is_a_400(handler: Any, name: str) -> None:
    event = load_event(name)
    event["body"] = base64.b64encode(b'{"user_id": "u\xe9\xff", "in_stock": false}').decode()
    event["isBase64Encoded"] = True
    assert assert_error(invoke(handler, event), 400, "invalid_json")["field"] == "body"


def test_a_base64_body_that_is_utf8_json_is_served(handler: Any) -> None:
    event = load_event("stock_update")
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    assert invoke(handler, event)["statusCode"] == 200


def test_a_body_flagged_base64_that_is_not_base64_is_a_400(handler: Any) -> None:
    event = load_event("stock_update")
    event["isBase64Encoded"] = True  # body is plain JSON text
    assert_error(invoke(handler, event), 400, "invalid_body")


@pytest.mark.parametrize("body", ["[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000,
                                  '{"user_id": ' + "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1) + "}"])
def test_deeply_nested_json_is_a_400(handler: Any, body: str) -> None:
    event = load_event("recommend")
    event["body"] = body
    assert assert_error(invoke(handler, event), 400, "invalid_json")["field"] == "body"


def test_brackets_inside_strings_are_not_nesting(handler: Any) -> None:
    response = invoke(handler, load_event("recommend", user_id='[{"[' * 30))
    assert response["statusCode"] == 200  # an unknown (cold-start) user, not a nesting error


def test_json_depth_counts_only_brackets_outside_strings() -> None:
    assert not json_depth_exceeds('{"a": [1, {"b": "[[[[[[[[[["}]}', limit=3)
    assert json_depth_exceeds('{"a": [1, {"b": [[]]}]}', limit=3)
    assert not json_depth_exceeds('{"a": "\\"[[[[[[[\\"", "b": []}', limit=2)


def test_the_readme_stock_command_without_a_json_content_type_works(handler: Any, stock: MemoryStock) -> None:
    """`curl -X PUT .../v1/stock/ID -d '{"in_stock": false}'` sends application/x-www-form-urlencoded."""
    event = load_event("stock_update")
    event["headers"]["content-type"] = "application/x-www-form-urlencoded"  # what curl -d declares
    response = invoke(handler, event)
    assert response["statusCode"] == 200, response["body"]
    assert response_json(response) == {"item_id": "i000001", "in_stock": False, "quantity": None}
    assert "i000001" in stock.out


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/octet-stream", "multipart/form-data"])
def test_bodies_are_json_whatever_the_content_type(handler: Any, content_type: str | None) -> None:
    event = load_event("recommend")
    if content_type is None:
        del event["headers"]["content-type"]
    else:
        event["headers"]["content-type"] = content_type
    assert invoke(handler, event)["statusCode"] == 200


def test_an_oversize_body_is_a_413(handler: Any) -> None:
    event = load_event("recommend")
    event["body"] = json.dumps({"user_id": "u00001", "exclude_item_ids": ["x" * 1000] * (MAX_BODY_BYTES // 1000)})
    assert assert_error(invoke(handler, event), 413, "too_large")["field"] == "body"


@pytest.mark.parametrize(
    ("event_name", "method", "allowed"),
    [("stock_update", "TRACE", "PUT"), ("stock_update", "GET", "PUT"), ("health", "DELETE", "GET"),
     ("recommend", "GET", "POST"), ("recommend", "OPTIONS", "POST"), ("health", "POST", "GET")],
)
def test_an_undeclared_method_is_a_405_with_allow(handler: Any, event_name: str, method: str, allowed: str) -> None:
    response = invoke(handler, with_method(load_event(event_name), method))
    assert_error(response, 405, "method_not_allowed")
    assert response["headers"]["Allow"] == allowed


def test_an_unknown_route_is_a_json_404_whatever_the_method(handler: Any) -> None:
    event = with_method(load_event("health"), "TRACE")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/v2/nothing"
    response = invoke(handler, event)
    assert_error(response, 404, "not_found")
    assert "Allow" not in response["headers"]


@pytest.mark.parametrize(("quantity", "expected"), [(314.0, 314), (0.0, 0), (7, 7)])
def test_a_whole_float_is_an_integer(handler: Any, quantity: float, expected: int) -> None:
    response = invoke(handler, load_event("stock_update", in_stock=True, quantity=quantity))
    assert response["statusCode"] == 200, response["body"]
    assert response_json(response)["quantity"] == expected


@pytest.mark.parametrize("quantity", [3.5, "3", True, -1.0, float("inf")])
def test_integers_stay_strict(handler: Any, quantity: Any) -> None:
    response = invoke(handler, load_event("stock_update", in_stock=True, quantity=quantity))
    assert assert_error(response, 400, "invalid_request")["field"] == "quantity"


def test_k_as_a_whole_float(handler: Any) -> None:
    response = invoke(handler, load_event("recommend", k=5.0))
    assert response["statusCode"] == 200 and len(response_json(response)["items"]) == 5


def test_percent_escaped_utf8_ids_reach_the_route_decoded(handler) -> None:  # type: ignore[no-untyped-def]
    from tastebud.local_server import http_api_event

    event = http_api_event("PUT", "/v1/stock/caf%C3%A9-1", {"content-type": "application/json"},
                           b'{"in_stock": false}', "r1")
    body = response_json(invoke(handler, event))
    assert body["error"]["message"] == "unknown item_id 'café-1'"  # decoded, then looked up
