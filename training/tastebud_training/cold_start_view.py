"""The cold-start study's held-out items back in a trained version: added at the cutoff through the serving code,
as items upserted through the API are, and the chance control with random vectors in their place."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from tastebud.adapters.deferred_stock import DeferredStock
from tastebud.domain import ItemDraft
from tastebud.fresh_index import FreshItemsIndex
from tastebud.live.view import LiveView, build_view
from tastebud.pipeline.stages.retrieve import Retriever
from tastebud.serving_version import ServingVersion
from tastebud.settings import ServingKnobs
from tastebud_training.data import Dataset


def held_out_records(dataset: Dataset, held_out: frozenset[str], added_at: float) -> dict[str, dict[str, Any]]:
    """The held-out items as the live state holds items upserted through the API, received at ``added_at``."""
    records: dict[str, dict[str, Any]] = {}
    for row in dataset.items[dataset.items["item_id"].isin(held_out)].to_dict("records"):
        price = row.get("price")
        image = row.get("image_uri")
        records[str(row["item_id"])] = {
            "item_id": str(row["item_id"]), "merchant_id": str(row["merchant_id"]), "title": row.get("title") or "",
            "category": row.get("category") or "", "description": row.get("description") or "",
            "price": None if price is None or (isinstance(price, float) and math.isnan(price)) else float(price),
            "image_uri": image if isinstance(image, str) and image.strip() else None, "received_at": added_at}
    return records


class _AllInStock:
    """The study measures stages 1-3; the stock stage is not run, but the service wiring wants a store."""

    def out_of_stock(self, item_ids: Sequence[str]) -> np.ndarray:
        return np.zeros(len(item_ids), dtype=bool)

    def begin_out_of_stock(self, item_ids: Sequence[str]) -> DeferredStock:
        return DeferredStock(lambda: self.out_of_stock(item_ids))

    def set_stock(self, item_id: str, in_stock: bool, quantity: int | None = None) -> None:
        return None


def _embed_new_items(version: ServingVersion, drafts: list[ItemDraft], merchant_rows: np.ndarray,
                     category_rows: np.ndarray, domains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The version's item embedder, as the serving runtime calls it for upserted items (without its Redis cache)."""
    if version.embedder is None:
        raise RuntimeError(f"version {version.name} has no item embedder: new items cannot be embedded")
    return version.embedder.embed(drafts, merchant_rows=merchant_rows, category_rows=category_rows, domains=domains)


def fresh_view(version: ServingVersion, dataset: Dataset, held_out: frozenset[str], added_at: float,
               knobs: ServingKnobs) -> LiveView:
    """The version with the held-out items added at ``added_at`` through the serving code (``build_view``)."""
    return build_view(version, 1, held_out_records(dataset, held_out, added_at), {}, stock=_AllInStock(),
                      knobs=knobs, embed_missing=_embed_new_items, clock=lambda: added_at, out_of_stock=frozenset())


def with_random_fresh_vectors(view: LiveView, knobs: ServingKnobs, seed: int) -> LiveView:
    """The view with random unit vectors in the fresh index: what the fresh quota gives without content."""
    fresh = view.fresh
    noise = np.random.default_rng(seed).normal(size=fresh.vectors.shape).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    random_fresh = FreshItemsIndex(fresh.rows, noise)
    service = view.service
    retriever = Retriever(view.catalog, service.retriever.encoder, service.retriever.index, knobs, random_fresh)
    return replace(view, fresh=random_fresh, service=replace_retriever(service, retriever))


def replace_retriever(service: Any, retriever: Retriever) -> Any:
    """A shallow copy of a RecommendationService with another retriever (the other stages shared)."""
    import copy

    clone = copy.copy(service)
    clone.retriever = retriever
    return clone
