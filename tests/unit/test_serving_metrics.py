"""Serving metrics (tastebud.metrics.serving_metrics), sub-stage timing in retrieve, and `explain` through the
handler."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tastebud.api.http import create_handler
from tastebud.local_server import LocalLambdaContext
from tastebud.metrics.serving_metrics import LATENCY_STAGES, ServingMetrics, observations
from tastebud.recommendation import RequestState, StageTrace

from factories import FailingRanker, MemoryStock, context, make_service
from helpers import load_event, response_json


def invoke(handler: Any, event: dict[str, Any]) -> dict[str, Any]:
    return handler(event, LocalLambdaContext(aws_request_id="test"))


EVENTS = {"/dashboard": "dashboard", "/": "dashboard_root", "/static/cytoscape.min.js": "dashboard_static",
          "/metrics": "metrics", "/metrics.json": "metrics_json"}


def get(handler: Any, path: str) -> dict[str, Any]:
    """The sample event of ``path`` (events/), or one made from the health event for other paths."""
    if path in EVENTS:
        return invoke(handler, load_event(EVENTS[path]))
    event = load_event("health")
    event["rawPath"] = path
    event["requestContext"]["http"]["path"] = path
    return invoke(handler, event)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def stock() -> MemoryStock:
    return MemoryStock()


@pytest.fixture
def handler(stock: MemoryStock) -> Any:
    service = make_service(stock=stock, histories={"u00001": [0, 3, 6]}, item_id_format="i{:06d}")
    return create_handler(lambda: service)


def test_retriever_times_the_user_tower_and_the_knn_search_apart() -> None:
    service = make_service()
    trace = StageTrace()
    candidates = service.retriever.run(RequestState(service.features.user("u1"), context(), trace=trace))
    assert len(candidates) and set(trace.timings) == {"user_tower", "knn"}
    assert all(ms >= 0 for ms in trace.timings.values())
    # Untraced, nothing changes for the other callers (evaluation, training).
    assert service.retriever.run(RequestState(service.features.user("u1"), context())).rows.tolist() == \
        candidates.rows.tolist()


def test_trace_feeds_observations_for_every_stage_and_source() -> None:
    service = make_service()
    trace = StageTrace()
    result = service.recommend("u1", k=5, trace=trace)
    obs = observations(result, trace)
    latency = {o.label for o in obs if o.metric.prometheus == "tastebud_stage_latency_seconds"}
    assert latency == set(LATENCY_STAGES)
    sources = {o.label: o.value for o in obs if o.metric.prometheus == "tastebud_retrieved_candidates"}
    assert sources["history"] == 3 and sources["ann"] > 0 and sources["fresh"] == 0
    counts = {o.label: o.value for o in obs if o.metric.prometheus == "tastebud_stage_candidates"}
    assert counts["retrieve"] == len(trace.retrieved) and counts["stock"] == 5  # type: ignore[arg-type]


def test_prometheus_text_comes_from_the_client_library(handler: Any) -> None:
    for _ in range(3):
        assert invoke(handler, load_event("recommend"))["statusCode"] == 200
    assert invoke(handler, load_event("recommend_bad_k"))["statusCode"] == 400
    response = get(handler, "/metrics")
    assert response["statusCode"] == 200 and response["headers"]["Content-Type"].startswith("text/plain")
    values = samples(response["body"])
    assert values[("tastebud_stage_latency_seconds_count", (("stage", "knn"),))] == 3
    assert values[("tastebud_stage_latency_seconds_count", (("stage", "total"),))] == 3
    assert values[("tastebud_recommendations_total", ())] == 3
    assert values[("tastebud_http_requests_total", (("route", "/v1/recommendations"), ("status", "200")))] == 3
    assert values[("tastebud_http_requests_total", (("route", "/v1/recommendations"), ("status", "400")))] == 1
    assert values[("tastebud_stage_degraded_total", (("stage", "stock"),))] == 0
    assert ("tastebud_retrieved_candidates_count", (("source", "history"),)) in values


def test_metrics_json_has_percentiles_and_says_no_data_as_null(handler: Any, stock: MemoryStock) -> None:
    empty = response_json(get(handler, "/metrics.json"))
    assert empty["stages"]["retrieve"]["p50_ms"] is None and empty["degraded_rate"] is None
    assert empty["stages"]["retrieve"]["target_ms"] == 70 and empty["stages"]["rerank"]["target_ms"] == 25
    invoke(handler, load_event("recommend"))
    stock.fail = True
    invoke(handler, load_event("recommend"))
    body = response_json(get(handler, "/metrics.json"))
    assert body["requests"] == 2
    for stage in LATENCY_STAGES:
        numbers = body["stages"][stage]
        assert numbers["count"] == 2 and 0 <= numbers["p50_ms"] <= numbers["p99_ms"]
    assert body["stages"]["stock"]["degraded_rate"] == 0.5 and body["degraded_rate"] == 0.5
    assert body["stages"]["rerank"]["degraded_rate"] == 0.0
    assert body["sources"]["history"] == 3
    assert body["versions"]["model_version"] == "m-test"


def test_window_forgets_old_samples() -> None:
    now = [1000.0]
    telemetry = ServingMetrics(window_s=60, clock=lambda: now[0])
    service = make_service()
    trace = StageTrace()
    telemetry.record(observations(service.recommend("u1", trace=trace), trace))
    assert telemetry.snapshot()["stages"]["total"]["count"] == 1
    now[0] += 61
    assert telemetry.snapshot()["stages"]["total"]["p99_ms"] is None


def test_powertools_gets_the_same_observations() -> None:
    from tastebud.metrics.serving_metrics import emit_powertools, observations

    class Recorder:
        def __init__(self) -> None:
            self.names: dict[str, float] = {}

        def add_metric(self, name: str, unit: Any, value: float) -> None:
            self.names[name] = value

    service = make_service(ranker=FailingRanker())
    trace = StageTrace()
    result = service.recommend("u1", k=4, trace=trace)
    recorder = Recorder()
    emit_powertools(recorder, observations(result, trace))
    assert {f"{stage}_ms" for stage in LATENCY_STAGES} <= set(recorder.names)
    assert recorder.names["degraded_rerank"] == 1 and recorder.names["degraded_requests"] == 1
    assert recorder.names["candidates_stock"] == 4 and "candidates_source_ann" in recorder.names


def test_explain_shows_each_stage(handler: Any, stock: MemoryStock) -> None:
    stock.out = {"i000001"}
    plain = response_json(invoke(handler, load_event("recommend")))
    assert "explain" not in plain and "stage_scores" not in plain["items"][0]  # nothing unasked for
    body = response_json(invoke(handler, load_event("recommend", explain=True, k=5)))
    explain = body["explain"]
    assert set(explain["stage_ms"]) >= {"retrieve", "user_tower", "knn", "rerank", "fairness", "stock", "total"}
    assert explain["candidates"]["by_source"]["history"] == 3 and explain["candidates"]["returned"] == 5
    assert explain["user"] == {"known": True, "history_items": 3, "cold_start": False,
                               "location": {"lat": 52.52, "lon": 13.4}}
    assert [r["item_id"] for r in explain["stock"]["removed"]] == ["i000001"]
    for move in explain["fairness"]["moves"]:
        assert move["from_rank"] != move["to_rank"] and move["why"]
    for rank, item in enumerate(body["items"], start=1):
        assert item["stage_scores"]["final_rank"] == rank
        assert item["category"] and item["price"] is not None and item["distance_km"] is not None
        assert item["item_id"] != "i000001"


def test_explain_for_an_unknown_user_is_a_cold_start(handler: Any) -> None:
    body = response_json(invoke(handler, load_event("recommend_cold_user", explain=True)))
    assert body["explain"]["user"]["cold_start"] is True
    assert body["explain"]["candidates"]["by_source"]["ann"] == 0 or body["items"]


def test_explain_must_be_a_boolean(handler: Any) -> None:
    response = invoke(handler, load_event("recommend", explain="yes"))
    assert response["statusCode"] == 400 and response_json(response)["error"]["field"] == "explain"


def test_dashboard_page_and_its_files_are_served(handler: Any) -> None:
    page = get(handler, "/dashboard")
    assert page["statusCode"] == 200 and "text/html" in page["headers"]["Content-Type"]
    assert "/static/cytoscape.min.js" in page["body"]
    root = get(handler, "/")
    assert root["statusCode"] == 200 and root["body"] == get(handler, "/dashboard")["body"]
    script = get(handler, "/static/cytoscape.min.js")
    assert script["statusCode"] == 200 and "javascript" in script["headers"]["Content-Type"]
    assert get(handler, "/static/..%2Fhttp.py")["statusCode"] == 404  # decoded: not a route
    refused = json.loads(get(handler, "/static/nope.js")["body"])["error"]  # not one of the named files
    assert refused["code"] == "invalid_request" and refused["field"] == "name"


CYTOSCAPE_VERSION = "3.35.0"


def test_vendored_cytoscape_is_the_pinned_release_with_its_license() -> None:
    import hashlib

    from tastebud.api.ops_routes import STATIC_DIR

    script = (STATIC_DIR / "cytoscape.min.js").read_bytes()
    assert f'"{CYTOSCAPE_VERSION}"'.encode() in script
    notes = (STATIC_DIR / "VENDORED.md").read_text()
    assert CYTOSCAPE_VERSION in notes and hashlib.sha256(script).hexdigest() in notes
    assert "Permission is hereby granted" in (STATIC_DIR / "cytoscape.LICENSE").read_text()


def test_explain_reads_the_catalog_the_request_ran_on() -> None:
    """A hot swap between the request and its explain must not explain rows against the next version's catalog."""
    from tastebud.pipeline.explain import explain_request

    before = make_service()
    trace = StageTrace()
    result = before.recommend("u1", k=5, trace=trace)
    after = make_service(item_id_format="x{}")  # the next version: other ids, rows mean other items
    assert trace.catalog is before.catalog and trace.catalog is not after.catalog
    shown, _ = explain_request(result, trace)
    rows = [before.catalog.row_of(item.item_id) for item in result.items]
    assert [s["category"] for s in shown] == [str(before.catalog.categories[before.catalog.item_category[r]])
                                             for r in rows]
