"""A serving version with the live catalog state applied: fresh items, deletions and merchant state.

Built from scratch from the version and the whole live state whenever either changes (a few ms at 12k items,
tens of ms at 1M), then swapped in atomically; requests hold the view they started with.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

import numpy as np

from tastebud.adapters.item_record_codec import draft_of, is_deleted
from tastebud.adapters.redis_live_state import LiveEvent
from tastebud.catalog import Catalog
from tastebud.domain import ItemDraft, UserProfile
from tastebud.features.history import with_events
from tastebud.fresh_index import FreshItemsIndex
from tastebud.pipeline.service import RecommendationService
from tastebud.ports import StockStore
from tastebud.serving_version import ServingVersion
from tastebud.settings import ServingKnobs

logger = logging.getLogger(__name__)

# (version, drafts not embedded yet, their merchant rows, category rows, domains) -> (index vectors, text vectors)
EmbedMissing = Callable[[ServingVersion, list[ItemDraft], np.ndarray, np.ndarray, np.ndarray],
                        tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class LiveView:
    """What one request runs on: a version, the catalog state at ``seq``, and the service wired over both."""

    version: ServingVersion
    seq: int
    catalog: Catalog
    fresh: FreshItemsIndex
    service: RecommendationService
    fresh_item_ids: frozenset[str]

    def profile(self, user_id: str, live_events: list[LiveEvent]) -> UserProfile:
        """The version's profile of the user with the events received after the version's data applied."""
        user = self.version.users.user(user_id)
        newer = [e for e in live_events if e.received_at > self.version.received_before]
        if not newer:
            return user
        rows = np.fromiter(((r if (r := self.catalog.row_of(e.item_id)) is not None else -1) for e in newer),
                           dtype=np.int64, count=len(newer))
        return with_events(user, rows, [e.event_type for e in newer],
                           np.asarray([e.timestamp for e in newer], dtype=np.float64))


def merchant_fields(catalog: Catalog, merchants: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    """merchant_open / merchant_radius_km with the live merchant states applied."""
    is_open = catalog.merchant_open.copy()
    radius = catalog.merchant_radius_km.copy()
    for merchant_id, state in merchants.items():
        row = catalog.merchant_row_of(merchant_id)
        if row is None:
            continue
        is_open[row] = bool(state.get("open", True))
        if state.get("delivery_radius_km") is not None:
            radius[row] = float(state["delivery_radius_km"])
    return {"merchant_open": is_open, "merchant_radius_km": radius}


def build_view(version: ServingVersion, seq: int, items: dict[str, dict[str, Any]],
               merchants: dict[str, dict[str, Any]], *, stock: StockStore, knobs: ServingKnobs,
               embed_missing: EmbedMissing, clock: Callable[[], float],
               out_of_stock: Container[str] | None = None) -> LiveView:
    """Apply the live catalog state to ``version`` and wire the four stages over the result."""
    base = version.catalog
    catalog = base.with_changes(**merchant_fields(base, merchants))
    received_before = version.received_before
    deleted = {i for i, r in items.items() if is_deleted(r)}
    # Upserts the version's data does not hold yet: items new to it, or changed after it read the data.
    fresh_records = [r for i, r in sorted(items.items()) if i not in deleted
                     and (base.row_of(i) is None or float(r.get("received_at", math.inf)) > received_before)]

    index_vectors = np.zeros((0, 1), np.float32)
    text_vectors = np.zeros((0, version.text_dim), np.float32)
    fresh_rows = np.zeros(0, np.int64)
    if fresh_records:
        drafts = [draft_of(r) for r in fresh_records]
        merchant_rows = np.asarray([catalog.merchant_row_of(d.merchant_id) for d in drafts], dtype=object)
        known = np.asarray([m is not None for m in merchant_rows])
        drafts = [d for d, ok in zip(drafts, known, strict=True) if ok]
        merchant_rows = merchant_rows[known].astype(np.int64)
        received = np.asarray([float(r.get("received_at", clock())) for r in fresh_records], dtype=np.float64)[known]
        catalog, fresh_rows, category_rows = _apply_drafts(catalog, drafts, merchant_rows, received)
        domains = catalog.item_domain[fresh_rows].astype(np.int64)
        if drafts:
            index_vectors, text_vectors = embed_missing(version, drafts, merchant_rows, category_rows, domains)

    if deleted:
        rows = catalog.rows_of(sorted(deleted))
        enabled = catalog.item_enabled.copy()
        enabled[rows] = False
        catalog = catalog.with_changes(item_enabled=enabled)

    keep = catalog.item_enabled[fresh_rows] if fresh_rows.size else np.zeros(0, bool)
    if index_vectors.shape[0] != fresh_rows.size:
        # A version without an item embedder: fresh items are in the catalog (history, popularity) but not indexed.
        keep = np.zeros(fresh_rows.size, bool)
        index_vectors = np.zeros((fresh_rows.size, 1), np.float32)
    fresh = FreshItemsIndex(fresh_rows[keep], index_vectors[keep])
    encoder = version.encoder
    n_new = catalog.size - base.size
    if n_new and hasattr(encoder, "with_fresh_items"):
        # Text vectors of the appended rows, in row order, for the user tower's history input.
        appended = np.zeros((n_new, text_vectors.shape[1] if text_vectors.size else version.text_dim), np.float32)
        new_mask = fresh_rows >= base.size
        if text_vectors.shape[0]:
            appended[fresh_rows[new_mask] - base.size] = text_vectors[new_mask]
        encoder = encoder.with_fresh_items(appended)

    service = RecommendationService.wire(
        catalog=catalog, features=version.users, encoder=encoder, index=version.index, ranker=version.ranker,
        stock=stock, knobs=knobs, versions=version.versions, fresh=fresh, clock=clock,
        fallback_out_of_stock=out_of_stock if out_of_stock is not None
        else frozenset(version.stock_snapshot.get("out_of_stock", ())))
    return LiveView(version=version, seq=seq, catalog=catalog, fresh=fresh, service=service,
                    fresh_item_ids=frozenset(str(catalog.item_ids[r]) for r in fresh_rows[keep].tolist()))


def _apply_drafts(catalog: Catalog, drafts: list[ItemDraft], merchant_rows: np.ndarray,
                  received_at: np.ndarray) -> tuple[Catalog, np.ndarray, np.ndarray]:
    """Put the drafts into the catalog: changed fields on existing rows, new rows appended.

    Returns (catalog, each draft's row, each draft's category row in the VERSION's categories or -1).
    """
    categories = list(catalog.categories.tolist())
    known_categories = len(categories)
    category_rows = []
    for draft in drafts:
        if draft.category not in categories:
            categories.append(draft.category)  # new categories go at the end; they have no embedding yet
        category_rows.append(categories.index(draft.category))
    category_rows_all = np.asarray(category_rows, dtype=np.int64)
    domains = catalog_domains(catalog, merchant_rows)
    prices = np.asarray([d.price for d in drafts], dtype=np.float32)

    existing = np.asarray([catalog.row_of(d.item_id) is not None for d in drafts])
    changes: dict[str, np.ndarray] = {}
    if existing.any():
        rows = catalog.rows_of([d.item_id for d, e in zip(drafts, existing, strict=True) if e])
        for name, values in (("item_merchant", merchant_rows[existing]), ("item_domain", domains[existing]),
                             ("item_category", category_rows_all[existing]), ("item_price", prices[existing])):
            array = getattr(catalog, name).copy()
            array[rows] = values
            changes[name] = array
    if len(categories) > known_categories:
        changes["categories"] = np.asarray(categories)
    if changes:
        catalog = catalog.with_changes(**changes)
    new = ~existing
    if new.any():
        n = int(new.sum())
        catalog = catalog.appended(
            np.asarray([d.item_id for d, is_new in zip(drafts, new, strict=True) if is_new]),
            item_merchant=merchant_rows[new], item_domain=domains[new], item_category=category_rows_all[new],
            item_price=prices[new], item_created_at=received_at[new], item_popularity=np.zeros(n),
            item_recent_popularity=np.zeros(n), item_ctr=np.full(n, np.nan), item_enabled=np.ones(n, bool),
            item_repeat_rate=np.full(n, np.nan), item_reorder_days=np.full(n, np.nan))
    rows = catalog.rows_of([d.item_id for d in drafts])
    version_category_rows = np.where(category_rows_all < known_categories, category_rows_all, -1)
    return catalog, rows, version_category_rows


def catalog_domains(catalog: Catalog, merchant_rows: np.ndarray) -> np.ndarray:
    """An item's domain is its merchant's: the domain of any existing item of that merchant."""
    by_merchant = np.full(catalog.merchant_ids.size, -1, dtype=np.int64)
    by_merchant[catalog.item_merchant] = catalog.item_domain
    domains = by_merchant[merchant_rows]
    return np.where(domains >= 0, domains, 0).astype(np.int8)

