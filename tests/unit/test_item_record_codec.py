"""The live catalog's records (tastebud.adapters.item_record_codec): what a write stores, a view reads back."""

from __future__ import annotations

import json
import math

from tastebud.adapters.item_record_codec import (
    deleted_item_record,
    draft_of,
    is_deleted,
    item_record,
    merchant_record,
)
from tastebud.domain import ItemDraft


def test_an_upsert_record_survives_json_and_reads_back_as_the_same_draft() -> None:
    draft = ItemDraft(item_id="i1", merchant_id="m1", title="Oat milk", category="dairy", description="1 l",
                      price=2.5, image_uri="images/i1.jpg")
    stored = json.loads(json.dumps(item_record(draft, 100.0)))  # as RedisLiveState stores it
    assert draft_of(stored) == draft and stored["received_at"] == 100.0 and not is_deleted(stored)


def test_no_price_is_stored_as_null_and_read_as_nan() -> None:
    draft = ItemDraft(item_id="i1", merchant_id="m1", title="t", category="c", description="", price=math.nan,
                      image_uri=None)
    stored = json.loads(json.dumps(item_record(draft, 1.0), allow_nan=False))  # strict JSON: no NaN
    assert stored["price"] is None and math.isnan(draft_of(stored).price)


def test_a_deletion_and_a_merchant_state() -> None:
    assert is_deleted(deleted_item_record("i1", 5.0))
    assert merchant_record("m1", False, None, 7.0) == {"merchant_id": "m1", "open": False,
                                                         "delivery_radius_km": None, "received_at": 7.0}
