"""tastebud.local_server.http_api_event: an HTTP request as the API Gateway HTTP API v2 event the handler gets."""

from __future__ import annotations

import base64

from tastebud.local_server import http_api_event


def test_a_request_becomes_a_v2_event() -> None:
    headers = {"Content-Type": "application/json", "User-Agent": "curl/8"}
    event = http_api_event("PUT", "/v1/stock/i1?dry=1&x=a%20b", headers, b'{"in_stock": false}', "rid")
    assert event["version"] == "2.0" and event["rawPath"] == "/v1/stock/i1"
    assert event["rawQueryString"] == "dry=1&x=a%20b"
    assert event["queryStringParameters"] == {"dry": "1", "x": "a b"}
    assert event["headers"] == {"content-type": "application/json", "user-agent": "curl/8"}  # lower-cased
    context = event["requestContext"]
    assert context["http"]["method"] == "PUT" and context["http"]["userAgent"] == "curl/8"
    assert context["requestId"] == "rid" and event["body"] == '{"in_stock": false}' and not event["isBase64Encoded"]


def test_a_body_that_is_not_utf8_travels_base64_encoded() -> None:
    raw = b'{"user_id": "\xff"}'
    event = http_api_event("POST", "/v1/recommendations", {}, raw, "rid")
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == raw


def test_no_body_no_body_key() -> None:
    event = http_api_event("GET", "/health", {}, b"", "rid")
    assert "body" not in event and "queryStringParameters" not in event
