"""What one request returns, what it ran on and what each stage did: the values the service hands to the edge.

Apart from the service so that the ``Serving`` port, the metrics and ``explain`` can name them without importing
the service (no cycle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tastebud.catalog import Catalog
from tastebud.domain import Candidates, RequestContext, UserProfile


@dataclass(frozen=True)
class RecommendedItem:
    item_id: str
    merchant_id: str
    domain: str
    score: float
    rank: int
    reasons: list[str]


@dataclass(frozen=True)
class Recommendation:
    user_id: str
    request_id: str
    items: list[RecommendedItem]
    model_version: str
    index_version: str
    stage_ms: dict[str, float]
    degraded: list[str] = field(default_factory=list)
    # Stages that failed with a BUG (not an outage): also in ``degraded``; counted by tastebud_stage_errors_total.
    stage_errors: list[str] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The API's response body: every field but the internal ``stage_errors``, as new dicts the caller may
        extend (``explain``). Built field by field: ``dataclasses.asdict`` deep-copies recursively and cost
        ~0.25 ms per page of 20, a tenth of a request."""
        return {"user_id": self.user_id, "request_id": self.request_id,
                "items": [dict(vars(item)) for item in self.items], "model_version": self.model_version,
                "index_version": self.index_version, "stage_ms": dict(self.stage_ms), "degraded": list(self.degraded)}


@dataclass
class StageTrace:
    """What each stage did for ONE request, filled when the caller passes one (metrics and ``explain`` read it).

    Holds references, not copies: filling it costs a few attribute assignments per request.
    """

    timings: dict[str, float] = field(default_factory=dict)  # retrieve's sub-stages in ms: user_tower, knn
    user: UserProfile | None = None
    context: RequestContext | None = None
    k: int = 0
    retrieved: Candidates | None = None  # after stage 1, in retrieval order (rows, sources, retrieval scores)
    rerank_scores: np.ndarray | None = None  # stage 2's scores, aligned with ``retrieved``
    ranked: Candidates | None = None  # after stage 3 (boosted scores, fairness flags), in page order
    final: Candidates | None = None  # after stage 4: the page
    # What the request ran on: ``explain`` reads rows against this catalog and display table, not against whatever
    # is served by the time it runs (a hot swap in between would explain rows of another version).
    catalog: Catalog | None = None
    display_directory: Path | None = None  # the version's titles and merchant names (embedded; None on AWS)


@dataclass(frozen=True)
class Versions:
    model_version: str
    index_version: str
    feature_version: str


@dataclass
class RequestState:
    """One request on its way through the stages: what it asks for, and what the stages report back: the stages
    that fell back, those that failed with a bug, each stage's time, and (when traced) what each stage did."""

    user: UserProfile
    context: RequestContext
    k: int = 20  # the page size (the API's default); retrieval and re-ranking do not read it
    degraded: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # stages that failed with a bug (also in ``degraded``)
    stage_ms: dict[str, float] = field(default_factory=dict)
    trace: StageTrace | None = None
