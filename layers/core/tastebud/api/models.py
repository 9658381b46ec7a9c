"""Typed request and response models of the HTTP API (DESIGN.md §3); the OpenAPI spec is generated from them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictInt,
    StrictStr,
    model_serializer,
)

from tastebud.api.explain_models import Explain

MAX_ID_LENGTH = 128
# A photo's path: printable characters ending in an image extension (or empty: no photo).
IMAGE_URI_PATTERN = (r"^$|^[^\x00-\x1f\x7f]*\.([Pp][Nn][Gg]|[Jj][Pp][Ee]?[Gg]|[Ww][Ee][Bb][Pp]|[Gg][Ii][Ff]|"
                     r"[Bb][Mm][Pp])$")
# An id: printable characters (no control characters), at least one that is not a space.
ID_PATTERN = r"^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$"
MAX_EXCLUDED = 500


def _whole_float_to_int(value: Any) -> Any:
    """JSON has one number type: ``314.0`` is the integer 314 (as in JSON Schema), ``2.5`` stays a float."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer field of a JSON body: 3 and 3.0 are accepted; 2.5, "3", true and null are not. Constraints of an
# optional field go inside the Annotated, before the validator (`NonNegativeJsonInt | None`): placed on the union,
# pydantic writes them into the JSON schema as "ge" instead of "minimum".
JsonInt = Annotated[StrictInt, BeforeValidator(_whole_float_to_int)]
NonNegativeJsonInt = Annotated[StrictInt, Field(ge=0), BeforeValidator(_whole_float_to_int)]


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90, strict=True, allow_inf_nan=False, description="Latitude in degrees")
    lon: float = Field(ge=-180, le=180, strict=True, allow_inf_nan=False, description="Longitude in degrees")


class RecommendationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: StrictStr = Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"\S")
    k: JsonInt = Field(default=20, ge=1, le=100, description="How many items to return")
    domain: Literal["all", "restaurant", "grocery"] = "all"
    location: Location | None = Field(default=None, description="Where to deliver; defaults to the user's home")
    exclude_item_ids: list[StrictStr] = Field(default_factory=list, max_length=MAX_EXCLUDED)
    explain: StrictBool = Field(default=False, description=(
        "Also return what each stage did: per item its display fields and stage scores, and an `explain` object"))


class StageScores(BaseModel):
    retrieval: float | None = Field(description="ANN similarity of the user's query vector (null: not from ANN)")
    retrieval_rank: int | None
    rerank: float | None = Field(description="XGBoost ranker score")
    rerank_rank: int | None
    fairness: float | None = Field(description="score after the new/less-popular merchant boosts")
    fairness_rank: int | None = Field(description="rank after fairness and diversity (before the stock filter)")
    final_rank: int


class RecommendedItemModel(BaseModel):
    item_id: str
    merchant_id: str
    domain: str
    score: float
    rank: int
    reasons: list[str]
    # Only with ``explain: true``:
    title: str | None = Field(default=None, description="explain only: the item's title")
    merchant_name: str | None = Field(default=None, description="explain only")
    category: str | None = Field(default=None, description="explain only")
    price: float | None = Field(default=None, description="explain only; null when unknown")
    distance_km: float | None = Field(default=None, description=(
        "explain only: merchant to the request's location (else the user's home); null when unknown"))
    stage_scores: StageScores | None = Field(default=None, description="explain only")

    @model_serializer(mode="wrap")
    def _without_unasked(self, handler: SerializerFunctionWrapHandler):
        """Without ``explain`` the explain-only fields are left out, not sent as nulls.

        (No return annotation: pydantic then keeps the model's own schema in the OpenAPI spec.)
        """
        data: dict[str, Any] = handler(self)
        if self.stage_scores is None:
            for name in EXPLAIN_ONLY_ITEM_FIELDS:
                data.pop(name, None)
        return data


EXPLAIN_ONLY_ITEM_FIELDS = ("title", "merchant_name", "category", "price", "distance_km", "stage_scores")


class StageTimings(BaseModel):
    retrieve: float
    rerank: float
    fairness: float
    stock: float
    total: float


class RecommendationResponse(BaseModel):
    user_id: str
    request_id: str
    items: list[RecommendedItemModel]
    model_version: str
    index_version: str
    stage_ms: StageTimings
    degraded: list[str]
    explain: Explain | None = Field(default=None, description="only with `explain: true`")

    @model_serializer(mode="wrap")
    def _without_unasked(self, handler: SerializerFunctionWrapHandler):
        data: dict[str, Any] = handler(self)
        if self.explain is None:
            data.pop("explain", None)
        return data


class StockUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    in_stock: StrictBool
    quantity: NonNegativeJsonInt | None = None


class StockResponse(BaseModel):
    item_id: str
    in_stock: bool
    quantity: int | None


DependencyState = Literal["ok", "degraded", "down"]


class LiveResponse(BaseModel):
    status: Literal["ok"]


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="degraded: a dependency is degraded or down; pages are "
                                                          "still served (stages fall back)")
    dependencies: dict[str, DependencyState] = Field(default_factory=dict, description=(
        "embedded: redis (stock + live state; circuit breaker state), artifacts (the version CURRENT names was "
        "refused?), item_embedder (can new items be embedded?); AWS: the circuit breaker of each remote dependency "
        "(sagemaker, opensearch, dynamodb, redis): down = open, calls skipped"))
    version: str | None = Field(default=None, description="the artifact version being served")
    model_version: str
    index_version: str
    feature_version: str
    items: int


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


MAX_EVENTS = 500


class EventBatch(BaseModel):
    """Events are validated one by one by the event codec (a bad record fails alone, the rest are applied)."""

    model_config = ConfigDict(extra="forbid")

    events: list[Any] = Field(min_length=1, max_length=MAX_EVENTS, description=(
        "Interaction events: event_id, user_id, item_id, event_type (impression|view|click|add_to_cart|purchase), "
        "timestamp (epoch seconds or ISO-8601), optional session_id, request_id, position, quantity"))


class EventFailureModel(BaseModel):
    index: int
    event_id: str | None
    field: str
    message: str


class EventBatchResponse(BaseModel):
    accepted: int = Field(description="events applied now")
    duplicates: int = Field(description="events whose event_id was applied before (not applied again)")
    failures: list[EventFailureModel]


class ItemUpsert(BaseModel):
    """An item's data-contract columns; the item is embedded in process and recommendable on the next request."""

    model_config = ConfigDict(extra="forbid")

    merchant_id: StrictStr = Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)
    title: StrictStr = Field(max_length=500)
    category: StrictStr = Field(min_length=1, max_length=200, pattern=r"\S")
    description: StrictStr = Field(default="", max_length=5000)
    price: float | None = Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False)
    image_uri: StrictStr | None = Field(default=None, max_length=2000, pattern=IMAGE_URI_PATTERN, description=(
        "a photo on the server: a path, absolute or relative to the data directory (png, jpg, jpeg, webp, gif, bmp)"))


class ItemResponse(BaseModel):
    item_id: str
    status: Literal["upserted", "deleted"]
    catalog_seq: int = Field(description="the live catalog change sequence after this change")


class MerchantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    open: StrictBool
    delivery_radius_km: float | None = Field(default=None, gt=0, le=500, allow_inf_nan=False)


class MerchantResponse(BaseModel):
    merchant_id: str
    open: bool
    delivery_radius_km: float | None = Field(description="null: no delivery zone known, not filtered by distance")


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: StrictStr | None = Field(default=None, min_length=1, max_length=200,
                                      description="an artifact version; default: the one CURRENT names")


class ReloadResponse(BaseModel):
    version: str
    previous: str
    swapped: bool
    model_version: str
    index_version: str
    load_ms: float
