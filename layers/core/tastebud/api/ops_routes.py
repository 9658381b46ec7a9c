"""The operators' routes: health and readiness, the metrics, and the dashboard's page and files."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from tastebud.api.errors import error_responses
from tastebud.api.models import HealthResponse, LiveResponse
from tastebud.errors import NotFoundError
from tastebud.metrics.serving_metrics import ServingMetrics
from tastebud.serving_port import Serving

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
# The page's files (served from the package, so the page works offline): name -> content type.
STATIC_FILES = {"cytoscape.min.js": "application/javascript; charset=utf-8",
                "dashboard.js": "application/javascript; charset=utf-8",
                "dashboard.css": "text/css; charset=utf-8",
                "dashboard.html": content_types.TEXT_HTML}
# The spec names the files (a client, or a fuzzer, can only ask for these).
STATIC_NAME_PATTERN = "^(" + "|".join(re.escape(name) for name in sorted(STATIC_FILES)) + ")$"
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HTML_PAGE: dict[int, Any] = {
    200: {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}}


def health_of(serving: Serving) -> HealthResponse:
    served = serving.state()
    versions = served.versions
    dependencies = serving.dependencies()  # embedded: Redis, artifacts, embedder; AWS: each circuit breaker
    return HealthResponse.model_validate({
        "status": "ok" if all(state == "ok" for state in dependencies.values()) else "degraded",
        "dependencies": dependencies, "version": served.version_name,
        "model_version": versions.model_version, "index_version": versions.index_version,
        "feature_version": versions.feature_version, "items": served.catalog.size})


def static_file(name: str) -> Response[str]:
    return Response(status_code=200, content_type=STATIC_FILES[name], body=(STATIC_DIR / name).read_text(),
                    headers={"Cache-Control": "no-cache"})


def ops_routes(provide: Callable[[], Serving], telemetry: ServingMetrics) -> APIGatewayHttpRouter:
    router = APIGatewayHttpRouter()

    @router.get("/health", summary="The versions being served and each dependency's state", tags=["ops"],
                responses=error_responses(503))
    def health() -> HealthResponse:
        return health_of(provide())

    @router.get("/health/live", summary="Liveness: the process answers (200 even while dependencies are down)",
                tags=["ops"])
    def live() -> LiveResponse:
        return LiveResponse(status="ok")

    @router.get("/health/ready", summary=(
        "Readiness: 200 while a version is loaded and pages are served (status degraded when a dependency is "
        "degraded or down: stages fall back); 503 when no version can be served"), tags=["ops"],
        responses=error_responses(503))
    def ready() -> HealthResponse:
        return health_of(provide())

    @router.get("/metrics", summary="Prometheus metrics of this process (text exposition format)", tags=["ops"],
                responses={200: {"description": "Prometheus text format 0.0.4",
                                 "content": {PROMETHEUS_CONTENT_TYPE: {"schema": {"type": "string"}}}}})
    def prometheus_metrics() -> Response[str]:
        return Response(status_code=200, content_type=PROMETHEUS_CONTENT_TYPE,
                        body=telemetry.prometheus_text().decode())

    @router.get("/metrics.json", summary=(
        "The same metrics over a recent window, for the dashboard: p50/p99 per stage, degraded rates, candidate "
        "counts, versions and their age (null: no data yet)"), tags=["ops"])
    def metrics_json() -> dict[str, Any]:
        return telemetry.snapshot()

    @router.get("/dashboard", summary="The live latency graph and request tracer (HTML)", tags=["ops"],
                responses=HTML_PAGE)
    def dashboard() -> Response[str]:
        return static_file("dashboard.html")

    @router.get("/", summary="The dashboard (the same page as /dashboard)", tags=["ops"], responses=HTML_PAGE)
    def root() -> Response[str]:
        return static_file("dashboard.html")

    @router.get("/static/<name>", summary="The dashboard's static files (Cytoscape.js is vendored here)",
                tags=["ops"], responses={**error_responses(400, 404), 200: {"description": "the file", "content": {
                    media: {"schema": {"type": "string"}} for media in sorted(set(STATIC_FILES.values()))}}})
    def static(name: Annotated[str, PathParam(min_length=1, max_length=64, pattern=STATIC_NAME_PATTERN)],
               ) -> Response[str]:
        if name not in STATIC_FILES:
            raise NotFoundError(f"no static file {name!r}", field="name")
        return static_file(name)

    return router
