"""What the HTTP edge talks to: ONE ``Serving`` port, whichever backend answers (issue 23).

Locally the embedded ``ServingRuntime`` serves and also takes live changes (events, items, merchants, reloads);
on AWS the Lambda's ``RecommendationService`` serves, and live changes travel through Kinesis and the index
hot-swap pipeline, so its ``live`` is None and the edge answers 501 without asking which type it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tastebud.catalog import Catalog
    from tastebud.domain import InteractionEvent, ItemDraft
    from tastebud.recommendation import Recommendation, StageTrace, Versions


@dataclass(frozen=True)
class ServingState:
    """What health, the metrics and explain read about what is being served: local data, no I/O (the dependency
    checks are ``Serving.dependencies``, which health and the metrics call and explain does not)."""

    versions: Versions
    catalog: Catalog
    version_name: str | None = None  # the artifact version (embedded; AWS reports model and index versions)
    created_at: float | None = None  # when the version was trained
    data_read_at: Any = None  # when its data was read
    fresh_items: int | None = None  # items added since the version was built
    display_directory: Path | None = None  # where titles and merchant names are (explain)


@dataclass(frozen=True)
class EventFailure:
    index: int
    event_id: str | None
    field: str
    message: str


@dataclass(frozen=True)
class EventBatchResult:
    accepted_events: tuple[InteractionEvent, ...]  # applied now (not the duplicates): the event-lag metric's
    duplicates: int
    failures: list[EventFailure] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.accepted_events)


@dataclass(frozen=True)
class SwapResult:
    version: str
    previous: str
    swapped: bool
    model_version: str
    index_version: str
    load_ms: float


class LiveChanges(Protocol):
    """Changes applied to the serving process itself: the embedded backend only."""

    def ingest_events(self, documents: Sequence[Any]) -> EventBatchResult: ...

    def upsert_items(self, drafts: Sequence[ItemDraft]) -> int: ...

    def delete_item(self, item_id: str) -> int: ...

    def set_merchant(self, merchant_id: str, is_open: bool, delivery_radius_km: float | None) -> dict[str, Any]: ...

    def reload(self, version: str | None = None) -> SwapResult: ...


class Serving(Protocol):
    """Recommend, set stock, and say what is served; ``live`` is None where changes arrive another way."""

    @property
    def live(self) -> LiveChanges | None: ...

    def recommend(self, user_id: str, k: int = 20, domain: str = "all", lat: float | None = None,
                  lon: float | None = None, exclude_item_ids: tuple[str, ...] = (), *,
                  request_id: str | None = None, trace: StageTrace | None = None) -> Recommendation: ...

    def set_stock(self, item_id: str, in_stock: bool, quantity: int | None) -> None: ...

    def state(self) -> ServingState: ...

    def dependencies(self) -> dict[str, str]:
        """Each dependency: ok | degraded | down (may ask the dependency: health and the metrics only)."""
        ...
