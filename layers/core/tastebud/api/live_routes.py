"""The routes of live changes: events, items, merchants and version reloads (the embedded backend).

On AWS, events arrive through Kinesis and catalog and version changes through the index hot-swap state machine:
the service there has no ``live``, and these routes answer 501 (template.yaml does not route them at all).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from tastebud.api.errors import UnsupportedError, error_responses
from tastebud.api.models import (
    ID_PATTERN,
    EventBatch,
    EventBatchResponse,
    ItemResponse,
    ItemUpsert,
    MerchantResponse,
    MerchantUpdate,
    ReloadRequest,
    ReloadResponse,
)
from tastebud.domain import ItemDraft
from tastebud.metrics.serving_metrics import ServingMetrics
from tastebud.serving_port import LiveChanges, Serving

# The live routes, and the health routes of the embedded server (tastebud.api.ops_routes): template.yaml routes none
# of them to the recommend function.
EMBEDDED_ONLY_ROUTES = frozenset({("POST", "/v1/events"), ("PUT", "/v1/items/{item_id}"),
                                  ("DELETE", "/v1/items/{item_id}"), ("PUT", "/v1/merchants/{merchant_id}"),
                                  ("POST", "/v1/admin/reload"), ("GET", "/health/live"),
                                  ("GET", "/health/ready")})

IdParam = Annotated[str, PathParam(min_length=1, max_length=128, pattern=ID_PATTERN)]


def live_routes(provide: Callable[[], Serving], telemetry: ServingMetrics) -> APIGatewayHttpRouter:
    router = APIGatewayHttpRouter()

    def live_changes() -> LiveChanges:
        live = provide().live
        if live is None:
            raise UnsupportedError("this route is served by the embedded backend; on AWS, events go through Kinesis "
                                   "and catalog changes through the index hot-swap pipeline")
        return live

    @router.post("/v1/events", summary="Record interaction events (applied to the next recommendation)",
                 tags=["events"], responses=error_responses(400, 501, 503))
    def post_events(batch: EventBatch) -> EventBatchResponse:
        received = time.time()
        result = live_changes().ingest_events(batch.events)
        telemetry.record_event_lags(received - event.timestamp for event in result.accepted_events)
        return EventBatchResponse.model_validate({"accepted": result.accepted, "duplicates": result.duplicates,
                                                  "failures": [asdict(failure) for failure in result.failures]})

    @router.put("/v1/items/<item_id>", summary="Add or change an item (recommendable within seconds)",
                tags=["catalog"], responses=error_responses(400, 404, 501, 503))
    def put_item(item_id: IdParam, item: ItemUpsert) -> ItemResponse:
        draft = ItemDraft(item_id=item_id, merchant_id=item.merchant_id, title=item.title, category=item.category,
                          description=item.description, price=float("nan") if item.price is None else item.price,
                          image_uri=item.image_uri or None)
        seq = live_changes().upsert_items([draft])
        return ItemResponse(item_id=item_id, status="upserted", catalog_seq=seq)

    @router.delete("/v1/items/<item_id>", summary="Remove an item (never served again)", tags=["catalog"],
                   responses=error_responses(400, 404, 501, 503))
    def delete_item(item_id: IdParam) -> ItemResponse:
        seq = live_changes().delete_item(item_id)
        return ItemResponse(item_id=item_id, status="deleted", catalog_seq=seq)

    @router.put("/v1/merchants/<merchant_id>", summary="Open or close a merchant, set its delivery radius",
                tags=["catalog"], responses=error_responses(400, 404, 501, 503))
    def put_merchant(merchant_id: IdParam, update: MerchantUpdate) -> MerchantResponse:
        state = live_changes().set_merchant(merchant_id, update.open, update.delivery_radius_km)
        return MerchantResponse(merchant_id=merchant_id, open=state["open"],
                                delivery_radius_km=state["delivery_radius_km"])

    @router.post("/v1/admin/reload", summary="Load, smoke-test and swap to an artifact version", tags=["ops"],
                 responses=error_responses(400, 409, 501, 503))
    def reload(request: ReloadRequest) -> ReloadResponse:
        result = live_changes().reload(request.version)
        return ReloadResponse.model_validate(asdict(result))

    return router
