"""The Lambda handler with the sample events of events/: routes, validation errors, error mapping by type."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tastebud.api.http import create_handler
from tastebud.api.models import RecommendationResponse
from tastebud.errors import DependencyError

from factories import MemoryStock, make_service
from helpers import invoke, load_event, response_json


def test_recommend_event_returns_the_contract(handler: Any) -> None:
    response = invoke(handler, load_event("recommend"))
    assert response["statusCode"] == 200
    body = response_json(response)
    assert body["user_id"] == "u00001" and len(body["items"]) == 10
    assert set(body["stage_ms"]) == {"retrieve", "rerank", "fairness", "stock", "total"}
    assert {"item_id", "merchant_id", "domain", "score", "rank", "reasons"} <= set(body["items"][0])
    assert body["model_version"] == "m-test" and body["index_version"] == "i-test" and body["degraded"] == []
    assert body["request_id"] == "Kq2ZbjXeDoEEJ1A="  # API Gateway's request id is propagated


@pytest.mark.parametrize("explain", [False, True])
def test_recommend_body_is_exactly_the_documented_model(handler: Any, explain: bool) -> None:
    """The route answers pre-serialised JSON (no response validation at run time): it must still be the declared
    model, field for field, with no extra or missing keys, with and without ``explain``."""
    body = response_json(invoke(handler, load_event("recommend", explain=explain)))
    model = RecommendationResponse.model_validate(body)
    assert json.loads(model.model_dump_json()) == body
    assert ("explain" in body) is explain and ("stage_scores" in body["items"][0]) is explain


def test_unknown_user_is_a_cold_start_not_a_404(handler: Any) -> None:
    response = invoke(handler, load_event("recommend_cold_user"))
    assert response["statusCode"] == 200 and len(response_json(response)["items"]) > 0


@pytest.mark.parametrize(
    ("event", "field"),
    [("recommend_bad_k", "k"), ("recommend_missing_user", "user_id")],
)
def test_bad_request_events_name_the_field(handler: Any, event: str, field: str) -> None:
    response = invoke(handler, load_event(event))
    assert response["statusCode"] == 400
    assert response_json(response)["error"]["field"] == field


def test_invalid_json_is_a_400(handler: Any) -> None:
    response = invoke(handler, load_event("recommend_invalid_json"))
    assert response["statusCode"] == 400
    assert response_json(response)["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"k": 101}, "k"),
        ({"k": "5"}, "k"),
        ({"k": True}, "k"),
        ({"k": 2.5}, "k"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "   "}, "user_id"),
        ({"user_id": "x" * 129}, "user_id"),
        ({"user_id": 123}, "user_id"),
        ({"domain": "pets"}, "domain"),
        ({"location": {"lat": 91, "lon": 0}}, "location.lat"),
        ({"location": {"lat": 0, "lon": -181}}, "location.lon"),
        ({"location": {"lat": "north", "lon": 0}}, "location.lat"),
        ({"location": [1, 2]}, "location"),
        ({"exclude_item_ids": "i1"}, "exclude_item_ids"),
        ({"exclude_item_ids": [1]}, "exclude_item_ids.0"),
        ({"kk": 3}, "kk"),
    ],
)
def test_every_bad_field_is_a_4xx_naming_it(handler: Any, overrides: dict[str, Any], field: str) -> None:
    response = invoke(handler, load_event("recommend", **overrides))
    assert response["statusCode"] == 400, response["body"]
    error = response_json(response)["error"]
    assert error["field"] == field and error["code"] == "invalid_request" and error["message"]


@pytest.mark.parametrize("body", ["[]", "null", "42", '"text"', ""])
def test_non_object_bodies_are_400(handler: Any, body: str) -> None:
    event = load_event("recommend")
    event["body"] = body
    assert invoke(handler, event)["statusCode"] == 400


def test_domain_and_location_and_exclusions_are_honoured(handler: Any) -> None:
    first = response_json(invoke(handler, load_event("recommend", k=3)))["items"]
    excluded = [first[0]["item_id"]]
    body = response_json(invoke(handler, load_event("recommend", k=5, domain="grocery", exclude_item_ids=excluded,
                                                    location={"lat": 52.5, "lon": 13.4})))
    assert all(item["domain"] == "grocery" for item in body["items"])
    assert excluded[0] not in {item["item_id"] for item in body["items"]}


def test_stock_update_event_marks_the_item_out(handler: Any, stock: MemoryStock) -> None:
    response = invoke(handler, load_event("stock_update"))
    assert response["statusCode"] == 200
    assert response_json(response) == {"item_id": "i000001", "in_stock": False, "quantity": None}
    assert "i000001" in stock.out


def test_stock_update_for_an_unknown_item_is_404(handler: Any) -> None:
    event = load_event("stock_update")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/v1/stock/nope"
    event["pathParameters"] = {"item_id": "nope"}
    response = invoke(handler, event)
    assert response["statusCode"] == 404 and response_json(response)["error"]["field"] == "item_id"


@pytest.mark.parametrize("body", ['{"in_stock": "no"}', "{}", '{"in_stock": true, "quantity": -1}', "nope"])
def test_bad_stock_bodies_are_400(handler: Any, body: str) -> None:
    event = load_event("stock_update")
    event["body"] = body
    assert invoke(handler, event)["statusCode"] == 400


def test_health_reports_versions(handler: Any) -> None:
    response = invoke(handler, load_event("health"))
    assert response["statusCode"] == 200
    assert response_json(response)["model_version"] == "m-test"


def test_unknown_route_is_a_json_404(handler: Any) -> None:
    event = load_event("health")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/nope"
    response = invoke(handler, event)
    assert response["statusCode"] == 404 and "error" in json.loads(response["body"])


def test_stock_store_outage_on_update_is_503_not_500(stock: MemoryStock) -> None:
    service = make_service(stock=stock, item_id_format="i{:06d}")

    def broken(*args: object, **kwargs: object) -> None:
        raise DependencyError("stock", "redis down")

    service.stock.set_stock = broken  # type: ignore[method-assign]
    response = invoke(create_handler(lambda: service), load_event("stock_update"))
    assert response["statusCode"] == 503 and response_json(response)["error"]["code"] == "unavailable"


def test_missing_artifacts_are_a_json_503_not_a_crash(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tastebud.composition.local import lazy_runtime
    from tastebud.settings import Settings

    handler = create_handler(lazy_runtime(lambda: Settings(artifacts=tmp_path / "nowhere")))
    response = invoke(handler, load_event("health"))
    assert response["statusCode"] == 503 and response_json(response)["error"]["code"] == "not_ready"


def test_an_unexpected_bug_is_a_json_500_without_internals() -> None:
    service = make_service(item_id_format="i{:06d}")
    service.features = None  # type: ignore[assignment]  # any AttributeError deep inside the request path
    response = invoke(create_handler(lambda: service), load_event("recommend"))
    assert response["statusCode"] == 500
    assert response_json(response)["error"] == {"code": "internal", "message": "internal error; it has been logged"}
