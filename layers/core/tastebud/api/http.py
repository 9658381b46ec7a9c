"""The HTTP API as one Powertools resolver; the Lambda function and the local server call the same handler.

``create_app(provide_service)`` builds the resolver from one ``Router`` per area (recommend_routes, live_routes,
ops_routes) and the error handlers (tastebud.api.errors). The service is provided lazily so that the Lambda init
phase (or the local server's start) loads artifacts once, and tests inject a ready service.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from tastebud.api.errors import handle_errors, rejection_result
from tastebud.api.live_routes import live_routes
from tastebud.api.ops_routes import ops_routes
from tastebud.api.recommend_routes import recommend_routes
from tastebud.api.request_guard import Rejection, normalise_event
from tastebud.metrics.serving_metrics import ServingMetrics
from tastebud.metrics.state import service_state
from tastebud.serving_port import Serving

__all__ = ["LambdaHandler", "create_app", "create_handler", "create_lambda_handler", "openapi_spec"]

ServiceProvider = Callable[[], Serving]
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

logger = Logger(service="tastebud")


def route_label(path: str) -> str:
    """A bounded label for a request path (ids are not labels): /v1/stock/{id} -> /v1/stock."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "/"
    if parts[0] == "v1" and len(parts) > 1:
        return f"/v1/{parts[1]}"
    return f"/{parts[0]}" if parts[0] in {"health", "metrics", "metrics.json", "dashboard", "static"} else "other"


def create_app(provide_service: ServiceProvider, *, metrics: Any = None,
               telemetry: ServingMetrics | None = None) -> APIGatewayHttpResolver:
    """``metrics``: Powertools Metrics (AWS, EMF). ``telemetry``: the in-process metrics (default: a new one)."""
    app = APIGatewayHttpResolver(enable_validation=True)
    telemetry = telemetry or ServingMetrics()
    telemetry.set_state(lambda: service_state(provide_service()))
    app.telemetry = telemetry  # type: ignore[attr-defined]  # create_handler counts each response here
    app.include_router(recommend_routes(provide_service, telemetry, metrics))
    app.include_router(live_routes(provide_service, telemetry))
    app.include_router(ops_routes(provide_service, telemetry))
    handle_errors(app)
    return app


def create_handler(provide_service: ServiceProvider, *, metrics: Any = None, tracer: Any = None) -> LambdaHandler:
    """The Lambda entry point: a Powertools resolver with the Lambda context injected into logs.

    With ``metrics`` (Powertools ``Metrics``) every recommendation emits per-stage latency and degraded-stage
    counts, flushed as EMF at the end of the invocation; with ``tracer`` the invocation is an X-Ray segment.
    The local server passes neither (no EMF lines on stdout, no X-Ray daemon).
    """
    app = create_app(provide_service, metrics=metrics)
    telemetry: ServingMetrics = app.telemetry  # type: ignore[attr-defined]

    def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
        normalised = normalise_event(event)
        if isinstance(normalised, Rejection):
            response = rejection_result(normalised)
        else:
            response = app.resolve(normalised, context)
        path = event.get("rawPath") or event.get("requestContext", {}).get("http", {}).get("path", "")
        telemetry.record_request(route_label(str(path)), int(response.get("statusCode", 200)))
        return response

    wrapped: Callable[[dict[str, Any], Any], dict[str, Any]] = resolve
    if tracer is not None:
        wrapped = tracer.capture_lambda_handler(wrapped, capture_response=False)
    if metrics is not None:
        wrapped = metrics.log_metrics(wrapped, capture_cold_start_metric=True)
    handler = logger.inject_lambda_context(wrapped, clear_state=True)
    handler.app = app  # type: ignore[attr-defined]  # tests and the OpenAPI export reach the resolver here
    return handler


def create_lambda_handler(provide_service: ServiceProvider) -> LambdaHandler:
    """The deployed functions' handler: Powertools Logger + Metrics + Tracer around the resolver.

    The caller (tastebud.composition.aws) supplies the service: the API layer does not compose one itself, which
    kept an import cycle api.http -> composition -> aws_composition -> api.http."""
    from aws_lambda_powertools import Metrics, Tracer

    return create_handler(provide_service, metrics=Metrics(namespace="Tastebud"), tracer=Tracer(service="tastebud"))


def openapi_spec() -> str:
    """The OpenAPI document of the routes above (docs/openapi.json is generated from it and tested)."""
    from tastebud import __version__

    app = create_app(lambda: None)  # type: ignore[arg-type, return-value]  # routes only; never called
    spec = json.loads(app.get_openapi_json_schema(
        title="Tastebud API", version=__version__,
        description="Personalised recommendations for a food-delivery marketplace."))
    # Validation errors are answered as 400 with ErrorResponse (on_validation_error), never Powertools' 422.
    # Bodies are checked before routing (request_guard): any route with a body can answer 413.
    too_large = {"description": "Request body over the size limit",
                 "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    for operations in spec["paths"].values():
        for operation in operations.values():
            operation["responses"].pop("422", None)
            if "requestBody" in operation:
                operation["responses"].setdefault("413", too_large)
    for name in ("HTTPValidationError", "ValidationError"):
        spec.get("components", {}).get("schemas", {}).pop(name, None)
    return json.dumps(spec, indent=2, sort_keys=True)
