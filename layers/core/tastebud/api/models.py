"""Typed request and response models of the HTTP API (DESIGN.md §3); the OpenAPI spec is generated from them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

MAX_ID_LENGTH = 128
MAX_EXCLUDED = 500


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90, strict=True, allow_inf_nan=False, description="Latitude in degrees")
    lon: float = Field(ge=-180, le=180, strict=True, allow_inf_nan=False, description="Longitude in degrees")


class RecommendationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: StrictStr = Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"\S")
    k: StrictInt = Field(default=20, ge=1, le=100, description="How many items to return")
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
    quantity: StrictInt | None = Field(default=None, ge=0)


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
