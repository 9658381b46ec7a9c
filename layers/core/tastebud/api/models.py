"""Typed request and response models of the HTTP API (DESIGN.md §3); the OpenAPI spec is generated from them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr

MAX_ID_LENGTH = 128
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


class RecommendedItemModel(BaseModel):
    item_id: str
    merchant_id: str
    domain: str
    score: float
    rank: int
    reasons: list[str]


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


class StockUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    in_stock: StrictBool
    quantity: NonNegativeJsonInt | None = None


class StockResponse(BaseModel):
    item_id: str
    in_stock: bool
    quantity: int | None


class HealthResponse(BaseModel):
    status: Literal["ok"]
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
