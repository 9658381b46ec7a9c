"""The HTTP API as one Powertools resolver; the Lambda function and the local server call the same handler.

``create_app(provide_service)`` builds the resolver. The service is provided lazily so that the Lambda
init phase (or the local server's start) loads artifacts once, and tests inject a ready service.
Errors are mapped to 4xx by exception type; anything unexpected is a logged 500 with no internals.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam

from tastebud.api.models import (
    ErrorResponse,
    HealthResponse,
    RecommendationRequest,
    RecommendationResponse,
    StockResponse,
    StockUpdate,
)
from tastebud.api.request_guard import Rejection, allowed_methods, normalise_event
from tastebud.errors import BadRequestError, DependencyError, NotFoundError, TastebudError
from tastebud.service import RecommendationService

ServiceProvider = Callable[[], RecommendationService]
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

logger = Logger(service="tastebud")


def user_hash(user_id: str) -> str:
    """What logs carry instead of a user id: a short, stable, non-reversible digest."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]


def record_metrics(metrics: Any, result: Any) -> None:
    """Per-stage latency, degraded stages and page size as CloudWatch EMF metrics (Powertools Metrics)."""
    from aws_lambda_powertools.metrics import MetricUnit

    for stage, ms in result.stage_ms.items():
        metrics.add_metric(name=f"{stage}_ms", unit=MetricUnit.Milliseconds, value=ms)
    for stage in result.degraded:
        metrics.add_metric(name=f"degraded_{stage}", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="degraded_requests", unit=MetricUnit.Count, value=1 if result.degraded else 0)
    metrics.add_metric(name="items_returned", unit=MetricUnit.Count, value=len(result.items))


def error_body(code: str, message: str, field: str | None = None) -> str:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    return json.dumps({"error": error})


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=error_body(code, message, field), headers=headers)


def rejection_result(rejection: Rejection) -> dict[str, Any]:
    """The API Gateway v2 result for a request refused before routing (see request_guard)."""
    return {"statusCode": int(rejection.status), "headers": {"Content-Type": content_types.APPLICATION_JSON},
            "body": error_body(rejection.code, rejection.message, rejection.field), "isBase64Encoded": False}


def _field_of(location: Sequence[Any]) -> str:
    """Pydantic error location -> dotted request field (drops the 'body' prefix and model names)."""
    parts = [str(p) for p in location if p not in ("body", "path", "query")]
    return ".".join(parts) or "body"


def _errors(*statuses: int) -> dict[int, Any]:
    """OpenAPI responses of a route: 200 (its model comes from the route's return annotation, because the entry
    has no "content") and our error body for each of ``statuses`` (replaces Powertools' default 422 shape)."""
    descriptions = {400: "Invalid request; `error.field` names the offending field", 404: "Not found",
                    503: "A backing service is unavailable or the service is not ready"}
    errors = {status: {"description": descriptions[status],
                       "content": {"application/json": {"model": ErrorResponse}}} for status in statuses}
    return {200: {"description": "Success"}, **errors}


def create_app(provide_service: ServiceProvider, *, metrics: Any = None) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)

    @app.post("/v1/recommendations", summary="Recommend items for a user", tags=["recommendations"],
              responses=_errors(400, 503))
    def recommend(request: RecommendationRequest) -> RecommendationResponse:
        location = request.location
        result = provide_service().recommend(
            user_id=request.user_id,
            k=request.k,
            domain=request.domain,
            lat=None if location is None else float(location.lat),
            lon=None if location is None else float(location.lon),
            exclude_item_ids=tuple(request.exclude_item_ids),
            request_id=app.current_event.request_context.request_id or None,
        )
        logger.info("recommended", extra={"user_hash": user_hash(request.user_id), "items": len(result.items),
                                          "stage_ms": result.stage_ms, "degraded": result.degraded})
        if metrics is not None:
            record_metrics(metrics, result)
        return RecommendationResponse.model_validate(asdict(result))

    @app.put("/v1/stock/<item_id>", summary="Set an item's stock", tags=["stock"], responses=_errors(400, 404, 503))
    def put_stock(item_id: Annotated[str, PathParam(min_length=1, max_length=128)],
                  update: StockUpdate) -> StockResponse:
        provide_service().set_stock(item_id, update.in_stock, update.quantity)
        return StockResponse(item_id=item_id, in_stock=update.in_stock, quantity=update.quantity)

    @app.get("/health", summary="Liveness and the versions being served", tags=["ops"], responses=_errors(503))
    def health() -> HealthResponse:
        service = provide_service()
        versions = service.versions
        return HealthResponse(status="ok", model_version=versions.model_version, index_version=versions.index_version,
                              feature_version=versions.feature_version, items=service.catalog.size)

    @app.exception_handler(RequestValidationError)
    def on_validation_error(exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "invalid"}
        kind = str(first.get("type", "invalid"))
        if kind.startswith("json"):
            return error_response(HTTPStatus.BAD_REQUEST, "invalid_json", "request body is not valid JSON", "body")
        field = _field_of(first.get("loc", ()))
        message = f"{field}: {first.get('msg', 'invalid value')}"
        return error_response(HTTPStatus.BAD_REQUEST, "invalid_request", message, field)

    @app.exception_handler(BadRequestError)
    def on_bad_request(exc: BadRequestError) -> Response:
        return error_response(HTTPStatus.BAD_REQUEST, exc.code, exc.message, exc.field)

    @app.exception_handler(NotFoundError)
    def on_not_found(exc: NotFoundError) -> Response:
        return error_response(HTTPStatus.NOT_FOUND, "not_found", exc.message, exc.field)

    @app.exception_handler(DependencyError)
    def on_dependency_error(exc: DependencyError) -> Response:
        logger.exception("backing service failed")
        return error_response(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable", f"{exc.stage} is unavailable; retry")

    @app.exception_handler(TastebudError)
    def on_not_ready(exc: TastebudError) -> Response:
        # Missing/mismatched artifacts or settings: the deployment is broken, not the request.
        logger.exception("service not ready")
        return error_response(HTTPStatus.SERVICE_UNAVAILABLE, "not_ready", "the recommendation service is not ready")

    @app.exception_handler(Exception)
    def on_unexpected(exc: Exception) -> Response:
        logger.exception("unexpected error")
        return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal", "internal error; it has been logged")

    @app.not_found
    def on_unknown_route(exc: Exception) -> Response:
        event = app.current_event
        allowed = allowed_methods(app, event.path)
        if allowed:
            return error_response(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed",
                                  f"{event.http_method} is not allowed here; use {', '.join(allowed)}",
                                  headers={"Allow": ", ".join(allowed)})
        return error_response(HTTPStatus.NOT_FOUND, "not_found", "no such route")

    return app


def create_handler(provide_service: ServiceProvider, *, metrics: Any = None, tracer: Any = None) -> LambdaHandler:
    """The Lambda entry point: a Powertools resolver with the Lambda context injected into logs.

    With ``metrics`` (Powertools ``Metrics``) every recommendation emits per-stage latency and degraded-stage
    counts, flushed as EMF at the end of the invocation; with ``tracer`` the invocation is an X-Ray segment.
    The local server passes neither (no EMF lines on stdout, no X-Ray daemon).
    """
    app = create_app(provide_service, metrics=metrics)

    def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
        normalised = normalise_event(event)
        if isinstance(normalised, Rejection):
            return rejection_result(normalised)
        return app.resolve(normalised, context)

    wrapped: Callable[[dict[str, Any], Any], dict[str, Any]] = resolve
    if tracer is not None:
        wrapped = tracer.capture_lambda_handler(wrapped, capture_response=False)
    if metrics is not None:
        wrapped = metrics.log_metrics(wrapped, capture_cold_start_metric=True)
    handler = logger.inject_lambda_context(wrapped, clear_state=True)
    handler.app = app  # type: ignore[attr-defined]  # tests and the OpenAPI export reach the resolver here
    return handler


def create_lambda_handler(provide_service: ServiceProvider | None = None) -> LambdaHandler:
    """The deployed functions' handler: Powertools Logger + Metrics + Tracer around the resolver."""
    from aws_lambda_powertools import Metrics, Tracer

    from tastebud.composition import lazy_service
    from tastebud.settings import Settings

    return create_handler(provide_service or lazy_service(Settings.from_env), metrics=Metrics(namespace="Tastebud"),
                          tracer=Tracer(service="tastebud"))


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
