"""The sample events (events/*.json) match template.yaml: API Gateway HTTP API payload v2.0 events for the
routes, Kinesis batches for the ingest function. Every function has events; every event a function.

The same files feed `sam local invoke -e events/NAME.json` and the handler tests, so they must stay
faithful to what API Gateway and the Kinesis event source mapping send.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tastebud.api.live_routes import EMBEDDED_ONLY_ROUTES

from helpers import load_template

ROOT = Path(__file__).resolve().parents[2]
EVENTS_DIR = ROOT / "events"
TEMPLATE = ROOT / "template.yaml"


def load_event(name: str) -> dict[str, Any]:
    """One sample event by file stem, e.g. ``load_event("recommend")``."""
    return json.loads((EVENTS_DIR / f"{name}.json").read_text())


ALL_EVENTS = sorted(path.stem for path in EVENTS_DIR.glob("*.json"))
KINESIS_EVENTS = [name for name in ALL_EVENTS if name.startswith("ingest_")]
# Step Functions task input for the lifecycle functions (ControlTaskFunction, `sam local invoke`).
TASK_EVENTS = [name for name in ALL_EVENTS if name.startswith("control_")]
EVENT_NAMES = [name for name in ALL_EVENTS if name not in KINESIS_EVENTS + TASK_EVENTS]  # HTTP API events


def template_routes() -> set[str]:
    """Route keys ("METHOD /path") of every HttpApi event of every function in template.yaml."""
    routes = set()
    for resource in load_template()["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                routes.add(f"{event['Properties']['Method'].upper()} {event['Properties']['Path']}")
    return routes


def test_there_are_events() -> None:
    assert len(EVENT_NAMES) >= 8, EVENT_NAMES
    assert KINESIS_EVENTS == ["ingest_kinesis", "ingest_kinesis_malformed"]
    assert TASK_EVENTS == ["control_prepare"] and load_event("control_prepare") == {"action": "prepare"}


def function_events(kind: str) -> dict[str, list[str]]:
    """Function logical id -> its event names of ``kind`` (HttpApi, Kinesis) in template.yaml."""
    found: dict[str, list[str]] = {}
    for name, resource in load_template()["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            events = resource["Properties"].get("Events", {})
            found[name] = [e for e, spec in events.items() if spec["Type"] == kind]
    return found


def test_every_function_has_sample_events() -> None:
    http = function_events("HttpApi")
    kinesis = function_events("Kinesis")
    assert set(http) == {"RecommendFunction", "StockFunction", "IngestFunction", "IndexTaskFunction",
                         "ControlTaskFunction"}
    assert http["IngestFunction"] == [] and kinesis["IngestFunction"] == ["Interactions"]
    # Step Functions task functions: invoked by the state machines, never through the API.
    assert http["IndexTaskFunction"] == [] and http["ControlTaskFunction"] == []
    routes = {load_event(name)["routeKey"] for name in EVENT_NAMES}
    assert {"POST /v1/recommendations", "GET /health"} <= routes  # RecommendFunction
    assert "PUT /v1/stock/{item_id}" in routes  # StockFunction


@pytest.mark.parametrize("name", KINESIS_EVENTS)
def test_kinesis_events_are_what_the_event_source_mapping_sends(name: str) -> None:
    import base64

    records = load_event(name)["Records"]
    assert records
    for record in records:
        assert record["eventSource"] == "aws:kinesis" and record["eventName"] == "aws:kinesis:record"
        assert record["eventSourceARN"].startswith("arn:aws:kinesis:") and ":stream/" in record["eventSourceARN"]
        assert record["eventID"].endswith(record["kinesis"]["sequenceNumber"])
        base64.b64decode(record["kinesis"]["data"], validate=True)


@pytest.mark.parametrize("name", EVENT_NAMES)
def test_event_is_http_api_v2(name: str) -> None:
    event = load_event(name)
    context = event["requestContext"]
    assert event["version"] == "2.0"
    assert event["isBase64Encoded"] is False
    assert context["routeKey"] == event["routeKey"]
    assert context["stage"] == "$default"  # the template's HttpApi has no named stage: no prefix in rawPath
    assert context["http"]["path"] == event["rawPath"]
    assert context["requestId"]
    assert all(header == header.lower() for header in event["headers"])  # API Gateway lower-cases them

    method, template_path = event["routeKey"].split(" ", 1)
    assert method == context["http"]["method"]
    parameters = event.get("pathParameters", {})
    assert set(re.findall(r"{(\w+)}", template_path)) == set(parameters)
    assert re.sub(r"{(\w+)}", lambda m: parameters[m.group(1)], template_path) == event["rawPath"]

    if method in ("POST", "PUT"):
        assert isinstance(event["body"], str)
        assert event["headers"]["content-type"] == "application/json"
    else:
        assert "body" not in event


def test_every_template_route_has_an_event_and_every_event_a_route() -> None:
    routes = template_routes()
    event_routes = {load_event(name)["routeKey"] for name in EVENT_NAMES}
    assert routes == {"POST /v1/recommendations", "PUT /v1/stock/{item_id}", "GET /health", "GET /dashboard", "GET /",
                      "GET /static/{name}", "GET /metrics", "GET /metrics.json"}
    assert routes - event_routes == set(), "routes without a sample event"
    embedded_only = {f"{method} {path}" for method, path in EMBEDDED_ONLY_ROUTES}
    assert event_routes - routes - embedded_only == set(), "sample events for routes no server declares"


def test_request_bodies_say_what_the_file_names_say() -> None:
    assert json.loads(load_event("recommend")["body"]) == {"user_id": "u00001", "k": 10}
    assert json.loads(load_event("recommend_cold_user")["body"])["user_id"] != "u00001"
    assert json.loads(load_event("recommend_bad_k")["body"])["k"] == 0
    assert "user_id" not in json.loads(load_event("recommend_missing_user")["body"])
    with pytest.raises(json.JSONDecodeError):
        json.loads(load_event("recommend_invalid_json")["body"])
    stock = load_event("stock_update")
    assert stock["pathParameters"] == {"item_id": "i000001"}
    assert json.loads(stock["body"]) == {"in_stock": False}


def test_template_functions_and_layer_are_laid_out_for_sam_build() -> None:
    template = load_template()
    resources = template["Resources"]
    runtime = template["Globals"]["Function"]["Runtime"]
    layer = resources["CoreLayer"]
    assert runtime == "python3.12"
    # Built from its lock by layers/core/Makefile (build-CoreLayer puts the wheels and the package under python/).
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["CompatibleRuntimes"] == [runtime]
    content = ROOT / layer["Properties"]["ContentUri"]
    assert "build-CoreLayer:" in (content / "Makefile").read_text()
    assert (content / "tastebud" / "__init__.py").is_file()
    assert (content / "requirements-lambda.lock").is_file()
    assert not (content / "python").exists()
    for resource in resources.values():
        if resource["Type"] == "AWS::Serverless::Function":
            handler = resource["Properties"]["Handler"]
            module, _, attribute = handler.rpartition(".")
            source = (ROOT / resource["Properties"]["CodeUri"] / f"{module}.py").read_text()
            assert re.search(rf"^(def\s+{attribute}\b|{attribute}\s*=)", source, re.MULTILINE), handler
            assert {"Ref": "CoreLayer"} in resource["Properties"]["Layers"]
