"""docs/openapi.json is generated from the routes; it must stay in sync with them and with template.yaml."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tastebud.api.http import openapi_spec
from tastebud.api.live_routes import EMBEDDED_ONLY_ROUTES

ROOT = Path(__file__).resolve().parents[2]


def test_spec_file_matches_the_routes() -> None:
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert committed == json.loads(openapi_spec()), "regenerate with `make openapi`"


def test_routes_match_the_sam_template() -> None:
    spec = json.loads(openapi_spec())
    routes = {(method.upper(), path) for path, operations in spec["paths"].items() for method in operations}
    template = (ROOT / "template.yaml").read_text()
    declared = set(re.findall(r"Method: (\w+)\s+Path: (\S+)", template))
    assert routes - EMBEDDED_ONLY_ROUTES == declared


def test_errors_are_documented_with_our_error_body() -> None:
    responses = json.loads(openapi_spec())["paths"]["/v1/recommendations"]["post"]["responses"]
    assert "400" in responses and "422" not in responses


def test_every_route_documents_its_200_response_model() -> None:
    spec = json.loads(openapi_spec())
    schemas = spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            success = operation["responses"].get("200")
            assert success is not None, f"{method.upper()} {path} documents no 200"
            content = success["content"]
            if "application/json" not in content:  # pages and the Prometheus text: documented as strings
                assert all(c["schema"]["type"] == "string" for c in content.values()), f"{method.upper()} {path}"
                continue
            schema = content["application/json"]["schema"]
            reference = schema.get("$ref") or (schema.get("additionalProperties", {}) and "dict")
            assert reference, f"{method.upper()} {path}: {schema}"
            if reference != "dict":
                assert reference.rsplit("/", 1)[1] in schemas, f"{method.upper()} {path}: {reference}"
            if "requestBody" in operation:
                assert {"400", "413"} <= set(operation["responses"]), f"{method.upper()} {path}"
