"""The HTTP API as one Powertools resolver; the Lambda function and the local server call the same handler.

``create_app(provide_service)`` builds the resolver. The service is provided lazily so that the Lambda
init phase (or the local server's start) loads artifacts once, and tests inject a ready service.
Errors are mapped to 4xx by exception type; anything unexpected is a logged 500 with no internals.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam

from tastebud.api.models import (
    ID_PATTERN,
    ErrorResponse,
    EventBatch,
    EventBatchResponse,
    HealthResponse,
    ItemResponse,
    ItemUpsert,
    LiveResponse,
    MerchantResponse,
    MerchantUpdate,
    RecommendationRequest,
    RecommendationResponse,
    ReloadRequest,
    ReloadResponse,
    StockResponse,
    StockUpdate,
)
from tastebud.api.request_guard import Rejection, allowed_methods, normalise_event
from tastebud.domain import ItemDraft
from tastebud.errors import BadRequestError, DependencyError, NotFoundError, TastebudError
from tastebud.metrics import ServingMetrics, emit_powertools, observations, service_state
from tastebud.runtime import VersionRefusedError
from tastebud.service import StageTrace
from tastebud.serving_port import LiveChanges, Serving

ServiceProvider = Callable[[], Serving]
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]

logger = Logger(service="tastebud")


# Routes of the embedded runtime only: on AWS, events arrive through Kinesis and catalog/version changes through
# the index hot-swap state machine, so template.yaml does not route these to the recommend function.
EMBEDDED_ONLY_ROUTES = frozenset({("POST", "/v1/events"), ("PUT", "/v1/items/{item_id}"),
                                  ("DELETE", "/v1/items/{item_id}"), ("PUT", "/v1/merchants/{merchant_id}"),
                                  ("POST", "/v1/admin/reload"), ("GET", "/health/live"),
                                  ("GET", "/health/ready")})


class UnsupportedError(TastebudError):
    """The route exists, but not on this backend."""


def user_hash(user_id: str) -> str:
    """What logs carry instead of a user id: a short, stable, non-reversible digest."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]


STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# The page's files (served from the package, so the page works offline): name -> content type.
STATIC_FILES = {"cytoscape.min.js": "application/javascript; charset=utf-8",
                "dashboard.js": "application/javascript; charset=utf-8",
                "dashboard.css": "text/css; charset=utf-8",
                "dashboard.html": content_types.TEXT_HTML}
# The spec names the files (a client, or a fuzzer, can only ask for these).
STATIC_NAME_PATTERN = "^(" + "|".join(re.escape(name) for name in sorted(STATIC_FILES)) + ")$"
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def route_label(path: str) -> str:
    """A bounded label for a request path (ids are not labels): /v1/stock/{id} -> /v1/stock."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "/"
    if parts[0] == "v1" and len(parts) > 1:
        return f"/v1/{parts[1]}"
    return f"/{parts[0]}" if parts[0] in {"health", "metrics", "metrics.json", "dashboard", "static"} else "other"


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
                    409: "The artifact version was refused (failed to load or its smoke test); the old one serves",
                    501: "Not available on this backend",
                    503: "A backing service is unavailable or the service is not ready"}
    errors = {status: {"description": descriptions[status],
                       "content": {"application/json": {"model": ErrorResponse}}} for status in statuses}
    return {200: {"description": "Success"}, **errors}


def create_app(provide_service: ServiceProvider, *, metrics: Any = None,
               telemetry: ServingMetrics | None = None) -> APIGatewayHttpResolver:
    """``metrics``: Powertools Metrics (AWS, EMF). ``telemetry``: the in-process metrics (default: a new one)."""
    app = APIGatewayHttpResolver(enable_validation=True)
    telemetry = telemetry or ServingMetrics()
    telemetry.set_state(lambda: service_state(provide_service()))
    app.telemetry = telemetry  # type: ignore[attr-defined]  # create_handler counts each response here

    # The 200 model is declared in ``responses``, not by a return annotation: the route answers pre-serialised JSON.
    # Re-validating and re-serialising our own document through pydantic and Powertools was a measurable share of
    # every request (docs/BENCHMARKS.md, session 4); conformance to RecommendationResponse is tested instead.
    @app.post("/v1/recommendations", summary="Recommend items for a user", tags=["recommendations"],
              responses={**_errors(400, 503), 200: {"description": "Success", "content": {
                  content_types.APPLICATION_JSON: {"model": RecommendationResponse}}}})
    def recommend(request: RecommendationRequest):  # no return annotation: Powertools would re-validate the body
        location = request.location
        serving = provide_service()
        trace = StageTrace()
        result = serving.recommend(
            user_id=request.user_id,
            k=request.k,
            domain=request.domain,
            lat=None if location is None else float(location.lat),
            lon=None if location is None else float(location.lon),
            exclude_item_ids=tuple(request.exclude_item_ids),
            request_id=app.current_event.request_context.request_id or None,
            trace=trace,
        )
        logger.info("recommended", extra={"user_hash": user_hash(request.user_id), "items": len(result.items),
                                          "stage_ms": result.stage_ms, "degraded": result.degraded})
        observed = observations(result, trace)
        telemetry.record(observed)
        if metrics is not None:
            emit_powertools(metrics, observed)
        response = result.document()  # without stage_errors (internal): the contract lists degraded stages only
        if request.explain:
            from tastebud.explain import explain_request

            extras, response["explain"] = explain_request(result, trace)
            for item, extra in zip(response["items"], extras, strict=True):
                item.update(extra)
            body = RecommendationResponse.model_validate(response).model_dump_json()  # explain values need the model
        else:
            body = json.dumps(response)  # plain str/int/float/list values: json.dumps is the whole serialisation
        return Response(status_code=HTTPStatus.OK, content_type=content_types.APPLICATION_JSON, body=body)

    @app.put("/v1/stock/<item_id>", summary="Set an item's stock", tags=["stock"], responses=_errors(400, 404, 503))
    def put_stock(item_id: Annotated[str, PathParam(min_length=1, max_length=128)],
                  update: StockUpdate) -> StockResponse:
        provide_service().set_stock(item_id, update.in_stock, update.quantity)
        return StockResponse(item_id=item_id, in_stock=update.in_stock, quantity=update.quantity)

    def live_changes() -> LiveChanges:
        live = provide_service().live
        if live is None:
            raise UnsupportedError("this route is served by the embedded backend; on AWS, events go through Kinesis "
                                   "and catalog changes through the index hot-swap pipeline")
        return live

    @app.post("/v1/events", summary="Record interaction events (applied to the next recommendation)",
              tags=["events"], responses=_errors(400, 501, 503))
    def post_events(batch: EventBatch) -> EventBatchResponse:
        received = time.time()
        result = live_changes().ingest_events(batch.events)
        telemetry.record_event_lags(received - event.timestamp for event in result.accepted_events)
        return EventBatchResponse.model_validate({"accepted": result.accepted, "duplicates": result.duplicates,
                                                  "failures": [asdict(failure) for failure in result.failures]})

    @app.put("/v1/items/<item_id>", summary="Add or change an item (recommendable within seconds)", tags=["catalog"],
             responses=_errors(400, 404, 501, 503))
    def put_item(item_id: Annotated[str, PathParam(min_length=1, max_length=128, pattern=ID_PATTERN)],
                 item: ItemUpsert) -> ItemResponse:
        draft = ItemDraft(item_id=item_id, merchant_id=item.merchant_id, title=item.title, category=item.category,
                          description=item.description, price=float("nan") if item.price is None else item.price,
                          image_uri=item.image_uri or None)
        seq = live_changes().upsert_items([draft])
        return ItemResponse(item_id=item_id, status="upserted", catalog_seq=seq)

    @app.delete("/v1/items/<item_id>", summary="Remove an item (never served again)", tags=["catalog"],
                responses=_errors(400, 404, 501, 503))
    def delete_item(item_id: Annotated[str, PathParam(min_length=1, max_length=128, pattern=ID_PATTERN)],
                    ) -> ItemResponse:
        seq = live_changes().delete_item(item_id)
        return ItemResponse(item_id=item_id, status="deleted", catalog_seq=seq)

    @app.put("/v1/merchants/<merchant_id>", summary="Open or close a merchant, set its delivery radius",
             tags=["catalog"], responses=_errors(400, 404, 501, 503))
    def put_merchant(merchant_id: Annotated[str, PathParam(min_length=1, max_length=128, pattern=ID_PATTERN)],
                     update: MerchantUpdate) -> MerchantResponse:
        state = live_changes().set_merchant(merchant_id, update.open, update.delivery_radius_km)
        return MerchantResponse(merchant_id=merchant_id, open=state["open"],
                                delivery_radius_km=state["delivery_radius_km"])

    @app.post("/v1/admin/reload", summary="Load, smoke-test and swap to an artifact version", tags=["ops"],
              responses=_errors(400, 409, 501, 503))
    def reload(request: ReloadRequest) -> ReloadResponse:
        result = live_changes().reload(request.version)
        return ReloadResponse.model_validate(asdict(result))

    def health_of(serving: Serving) -> HealthResponse:
        served = serving.state()
        versions = served.versions
        dependencies = serving.dependencies()  # embedded: Redis, artifacts, embedder; AWS: each circuit breaker
        return HealthResponse.model_validate({
            "status": "ok" if all(state == "ok" for state in dependencies.values()) else "degraded",
            "dependencies": dependencies, "version": served.version_name,
            "model_version": versions.model_version, "index_version": versions.index_version,
            "feature_version": versions.feature_version, "items": served.catalog.size})

    @app.get("/health", summary="The versions being served and each dependency's state", tags=["ops"],
             responses=_errors(503))
    def health() -> HealthResponse:
        return health_of(provide_service())

    @app.get("/health/live", summary="Liveness: the process answers (200 even while dependencies are down)",
             tags=["ops"])
    def live() -> LiveResponse:
        return LiveResponse(status="ok")

    @app.get("/health/ready", summary=(
        "Readiness: 200 while a version is loaded and pages are served (status degraded when a dependency is "
        "degraded or down: stages fall back); 503 when no version can be served"), tags=["ops"],
        responses=_errors(503))
    def ready() -> HealthResponse:
        return health_of(provide_service())

    @app.get("/metrics", summary="Prometheus metrics of this process (text exposition format)", tags=["ops"],
             responses={200: {"description": "Prometheus text format 0.0.4",
                              "content": {PROMETHEUS_CONTENT_TYPE: {"schema": {"type": "string"}}}}})
    def prometheus_metrics() -> Response[str]:
        return Response(status_code=200, content_type=PROMETHEUS_CONTENT_TYPE,
                        body=telemetry.prometheus_text().decode())

    @app.get("/metrics.json", summary=(
        "The same metrics over a recent window, for the dashboard: p50/p99 per stage, degraded rates, candidate "
        "counts, versions and their age (null: no data yet)"), tags=["ops"])
    def metrics_json() -> dict[str, Any]:
        return telemetry.snapshot()

    def static_file(name: str) -> Response[str]:
        return Response(status_code=200, content_type=STATIC_FILES[name], body=(STATIC_DIR / name).read_text(),
                        headers={"Cache-Control": "no-cache"})

    @app.get("/dashboard", summary="The live latency graph and request tracer (HTML)", tags=["ops"],
             responses={200: {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}})
    def dashboard() -> Response[str]:
        return static_file("dashboard.html")

    @app.get("/", summary="The dashboard (the same page as /dashboard)", tags=["ops"],
             responses={200: {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}})
    def root() -> Response[str]:
        return static_file("dashboard.html")

    @app.get("/static/<name>", summary="The dashboard's static files (Cytoscape.js is vendored here)",
             tags=["ops"], responses={**_errors(400, 404), 200: {"description": "the file", "content": {
                 media: {"schema": {"type": "string"}} for media in sorted(set(STATIC_FILES.values()))}}})
    def static(name: Annotated[str, PathParam(min_length=1, max_length=64, pattern=STATIC_NAME_PATTERN)],
               ) -> Response[str]:
        if name not in STATIC_FILES:
            raise NotFoundError(f"no static file {name!r}", field="name")
        return static_file(name)

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

    @app.exception_handler(VersionRefusedError)
    def on_version_refused(exc: VersionRefusedError) -> Response:
        return error_response(HTTPStatus.CONFLICT, "version_refused", str(exc), "version")

    @app.exception_handler(UnsupportedError)
    def on_unsupported(exc: UnsupportedError) -> Response:
        return error_response(HTTPStatus.NOT_IMPLEMENTED, "not_implemented", str(exc))

    @app.exception_handler(DependencyError)
    def on_dependency_error(exc: DependencyError) -> Response:
        # An outage, not a bug: one line without a stack. Nothing was applied (a write is acknowledged only once
        # durable), so the client retries after Retry-After: an open circuit's next probe, else a second.
        logger.warning("backing service unavailable: %s", exc)
        retry_after = max(1, math.ceil(exc.retry_after_s or 1))
        return error_response(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable", f"{exc.stage} is unavailable; retry",
                              headers={"Retry-After": str(retry_after)})

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

    The caller (tastebud.aws_composition) supplies the service: the API layer does not compose one itself, which
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
