"""The live changes a local serving process takes (``tastebud.serving_port.LiveChanges``): events, items, merchants.

Every change is validated against the caught-up view, stored durably in Redis (one atomic batch), then appended
to the data directory's log for the next training. Nothing is half-applied: a bad event is reported per record
and the good ones go in one batch; an item is embedded before it is stored, so a bad image stores nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tastebud.adapters.data_dir_log import DataDirLog
from tastebud.adapters.guarded_redis import within_request_budget
from tastebud.adapters.item_record_codec import deleted_item_record, item_record, merchant_record
from tastebud.adapters.redis_live_state import RedisLiveState
from tastebud.catalog import Catalog
from tastebud.domain import InteractionEvent, ItemDraft
from tastebud.errors import BadRequestError, NotFoundError
from tastebud.event_codec import parse_event
from tastebud.live.current_view import CurrentView
from tastebud.live.item_vectors import ItemVectors
from tastebud.serving_port import EventBatchResult, EventFailure, SwapResult

logger = logging.getLogger(__name__)


class LiveChangeWriter:
    """See the module docstring. ``reload`` is the runtime's version swap (the admin route's)."""

    def __init__(self, current: CurrentView, live: RedisLiveState, vectors: ItemVectors, *,
                 data_log: DataDirLog | None, clock: Callable[[], float], redis_budget_s: float,
                 reload: Callable[[str | None], SwapResult]) -> None:
        self._current = current
        self._live = live  # the write client (its deadline allows for fsync)
        self._vectors = vectors
        self._data_log = data_log
        self._clock = clock
        self.redis_budget_s = redis_budget_s
        self._reload = reload

    @within_request_budget
    def ingest_events(self, documents: Sequence[Any]) -> EventBatchResult:
        """Validate each event, apply the good ones in one atomic batch, report the rest per record."""
        now = self._clock()
        good, failures = _valid_events(documents, self._current.caught_up().catalog, now)
        applied = self._live.apply_events(good, received_at=now)
        accepted = [e for e, new in zip(good, applied, strict=True) if new]
        if accepted and self._data_log is not None:
            try:
                self._data_log.append_events(accepted)
            except OSError:
                # Applied and durable in Redis; only the training log misses them. Loud, not a failed request.
                logger.exception("could not append %d events to the data directory's log", len(accepted))
        return EventBatchResult(accepted_events=tuple(accepted), duplicates=len(good) - len(accepted),
                                failures=failures)

    @within_request_budget
    def upsert_items(self, drafts: Sequence[ItemDraft]) -> int:
        """Add or change items; embedded now, recommendable on the next request. Returns the change sequence."""
        view = self._current.caught_up()
        catalog = view.catalog
        merchant_rows = []
        for draft in drafts:
            row = catalog.merchant_row_of(draft.merchant_id)
            if row is None:  # merchants come from the catalog data; an item cannot create one
                raise NotFoundError(f"unknown merchant_id {draft.merchant_id!r}", field="merchant_id")
            merchant_rows.append(row)
        rows = np.asarray(merchant_rows, dtype=np.int64)
        version_categories = view.version.catalog
        category_rows = np.asarray([r if (r := version_categories.category_row_of(d.category)) is not None else -1
                                    for d in drafts], dtype=np.int64)
        by_merchant = np.full(catalog.merchant_ids.size, 0, dtype=np.int64)
        by_merchant[catalog.item_merchant] = catalog.item_domain
        # Embed before anything is stored: a bad image is a 400 and nothing is half-applied.
        self._vectors.embed_missing(view.version, list(drafts), rows, category_rows, by_merchant[rows], strict=True)
        now = self._clock()
        seq = self._live.put_items([item_record(d, now) for d in drafts])
        if self._data_log is not None:
            try:
                self._data_log.append_items(drafts, now)
            except OSError:
                logger.exception("could not append %d item upserts to the data directory's log", len(drafts))
        self._current.sync_after_write(seq)
        return seq

    @within_request_budget
    def delete_item(self, item_id: str) -> int:
        if self._current.caught_up().catalog.row_of(item_id) is None:
            raise NotFoundError(f"unknown item_id {item_id!r}", field="item_id")
        seq = self._live.put_items([deleted_item_record(item_id, self._clock())])
        self._current.sync_after_write(seq)
        return seq

    @within_request_budget
    def set_merchant(self, merchant_id: str, is_open: bool, delivery_radius_km: float | None) -> dict[str, Any]:
        catalog = self._current.caught_up().catalog
        row = catalog.merchant_row_of(merchant_id)
        if row is None:
            raise NotFoundError(f"unknown merchant_id {merchant_id!r}", field="merchant_id")
        radius = float(catalog.merchant_radius_km[row]) if delivery_radius_km is None else delivery_radius_km
        state = merchant_record(merchant_id, is_open, radius if np.isfinite(radius) else None, self._clock())
        self._current.sync_after_write(self._live.put_merchant(state))
        return state

    def reload(self, version: str | None = None) -> SwapResult:
        """Load ``version`` (default: what CURRENT names), smoke-test it, then swap atomically."""
        return self._reload(version)


def _valid_events(documents: Sequence[Any], catalog: Catalog, now: float,
                  ) -> tuple[list[InteractionEvent], list[EventFailure]]:
    """The batch's valid events (known items, one per event id) and a failure for each of the others."""
    failures: list[EventFailure] = []
    good: list[InteractionEvent] = []
    first_index: dict[str, int] = {}
    for index, document in enumerate(documents):
        event_id = document.get("event_id") if isinstance(document, dict) else None
        shown_id = event_id if isinstance(event_id, str) else None
        try:
            event = parse_event(document, now=now, require_event_id=True)
        except BadRequestError as exc:
            failures.append(EventFailure(index, shown_id, exc.field or "body", exc.message))
            continue
        if catalog.row_of(event.item_id) is None:
            failures.append(EventFailure(index, shown_id, "item_id", f"unknown item_id {event.item_id!r}"))
            continue
        assert event.event_id is not None
        if event.event_id in first_index:
            failures.append(EventFailure(index, shown_id, "event_id", "duplicate event_id in this batch (first at "
                                         f"index {first_index[event.event_id]})"))
            continue
        first_index[event.event_id] = index
        good.append(event)
    return good, failures
