"""The live catalog's records as ``RedisLiveState`` stores them: item upserts, deletions and merchant states.

Beside its storage, as ``tastebud.event_codec`` is for events: the writer (a live change) and the reader (the
view built over the live state) encode and decode through these functions only.
"""

from __future__ import annotations

import math
from typing import Any

from tastebud.domain import ItemDraft


def item_record(draft: ItemDraft, received_at: float) -> dict[str, Any]:
    """An upserted item's record. A NaN price (none given) is stored as null: JSON has no NaN."""
    return {"item_id": draft.item_id, "merchant_id": draft.merchant_id, "title": draft.title,
            "category": draft.category, "description": draft.description,
            "price": None if math.isnan(draft.price) else draft.price, "image_uri": draft.image_uri,
            "received_at": received_at}


def deleted_item_record(item_id: str, received_at: float) -> dict[str, Any]:
    return {"item_id": item_id, "deleted": True, "received_at": received_at}


def is_deleted(record: dict[str, Any]) -> bool:
    return bool(record.get("deleted"))


def draft_of(record: dict[str, Any]) -> ItemDraft:
    """The item an upsert record describes (records written before a field existed read it as empty)."""
    price = record.get("price")
    return ItemDraft(item_id=record["item_id"], merchant_id=record["merchant_id"], title=record.get("title") or "",
                     category=record.get("category") or "", description=record.get("description") or "",
                     price=float("nan") if price is None else float(price), image_uri=record.get("image_uri"))


def merchant_record(merchant_id: str, is_open: bool, delivery_radius_km: float | None,
                    received_at: float) -> dict[str, Any]:
    """A merchant's state; a radius of None means no known delivery zone."""
    return {"merchant_id": merchant_id, "open": is_open, "delivery_radius_km": delivery_radius_km,
            "received_at": received_at}
