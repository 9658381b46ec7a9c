"""The routes every backend serves: a page of recommendations, and an item's stock."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from tastebud.api.errors import error_responses
from tastebud.api.models import RecommendationRequest, RecommendationResponse, StockResponse, StockUpdate
from tastebud.metrics.serving_metrics import ServingMetrics, emit_powertools, observations
from tastebud.recommendation import StageTrace
from tastebud.serving_port import Serving

logger = Logger(service="tastebud")


def user_hash(user_id: str) -> str:
    """What logs carry instead of a user id: a short, stable, non-reversible digest."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]


def recommend_routes(provide: Callable[[], Serving], telemetry: ServingMetrics,
                     metrics: Any = None) -> APIGatewayHttpRouter:
    """``metrics``: Powertools Metrics (AWS, EMF), emitted per recommendation beside ``telemetry``."""
    router = APIGatewayHttpRouter()

    # The 200 model is declared in ``responses``, not by a return annotation: the route answers pre-serialised JSON.
    # Re-validating and re-serialising our own document through pydantic and Powertools was a measurable share of
    # every request (docs/BENCHMARKS.md, session 4); conformance to RecommendationResponse is tested instead.
    @router.post("/v1/recommendations", summary="Recommend items for a user", tags=["recommendations"],
                 responses={**error_responses(400, 503), 200: {"description": "Success", "content": {
                     content_types.APPLICATION_JSON: {"model": RecommendationResponse}}}})
    def recommend(request: RecommendationRequest):  # no return annotation: Powertools would re-validate the body
        location = request.location
        trace = StageTrace()
        result = provide().recommend(
            user_id=request.user_id,
            k=request.k,
            domain=request.domain,
            lat=None if location is None else float(location.lat),
            lon=None if location is None else float(location.lon),
            exclude_item_ids=tuple(request.exclude_item_ids),
            request_id=router.current_event.request_context.request_id or None,
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
            from tastebud.pipeline.explain import explain_request

            extras, response["explain"] = explain_request(result, trace)
            for item, extra in zip(response["items"], extras, strict=True):
                item.update(extra)
            body = RecommendationResponse.model_validate(response).model_dump_json()  # explain values need the model
        else:
            body = json.dumps(response)  # plain str/int/float/list values: json.dumps is the whole serialisation
        return Response(status_code=HTTPStatus.OK, content_type=content_types.APPLICATION_JSON, body=body)

    @router.put("/v1/stock/<item_id>", summary="Set an item's stock", tags=["stock"],
                responses=error_responses(400, 404, 503))
    def put_stock(item_id: Annotated[str, PathParam(min_length=1, max_length=128)],
                  update: StockUpdate) -> StockResponse:
        provide().set_stock(item_id, update.in_stock, update.quantity)
        return StockResponse(item_id=item_id, in_stock=update.in_stock, quantity=update.quantity)

    return router
