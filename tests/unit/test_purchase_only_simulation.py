"""`tastebud data generate --purchase-only [--single-merchant]`: what a real order log has, and nothing more."""

from __future__ import annotations

from pathlib import Path

import pytest

from tastebud_training.data import load_dataset
from tastebud_training.simulator import generate

SMALL = {"users": 80, "items": 400, "seed": 5, "progress": False}


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("full") / "data"
    generate(out, images=False, **SMALL)
    return out


def test_purchase_only_keeps_the_same_purchases_and_drops_everything_else(full: Path, tmp_path: Path) -> None:
    summary = generate(tmp_path / "po", purchase_only=True, **SMALL)
    original, derived = load_dataset(full), load_dataset(tmp_path / "po")

    assert summary.variant == "purchase_only" and summary.images == 0
    assert sorted(p.name for p in (tmp_path / "po").iterdir()) == [
        "ground_truth.json", "interactions.parquet", "items.parquet", "merchants.parquet", "users.parquet"]
    assert set(derived.interactions["event_type"]) == {"purchase"}
    purchases = original.interactions[original.interactions["event_type"] == "purchase"]
    assert len(derived.interactions) == len(purchases) == summary.interactions
    assert (derived.interactions["item_id"].to_numpy() == purchases["item_id"].to_numpy()).all()
    assert derived.stock is None
    assert (derived.items["title"] == "").all() and (derived.items["description"] == "").all()
    assert (derived.items["image_uri"] == "").all()
    assert (derived.merchants["name"] == "").all() and derived.merchants["lat"].isna().all()
    assert derived.users["home_lat"].isna().all() and (derived.users["preferences"] == "").all()
    assert derived.interactions["session_id"].eq("").all() and derived.interactions["position"].isna().all()
    assert (derived.items["category"] != "").all()  # a store's departments stay


def test_single_merchant_is_one_grocery_store_listing_each_product_once(full: Path, tmp_path: Path) -> None:
    summary = generate(tmp_path / "store", purchase_only=True, single_merchant=True, **SMALL)
    original, store = load_dataset(full), load_dataset(tmp_path / "store")

    assert summary.variant == "purchase_only_single_merchant" and summary.merchants == 1
    assert store.merchants[["merchant_id", "domain"]].values.tolist() == [["store", "grocery"]]
    grocers = original.merchants.loc[original.merchants["domain"] == "grocery", "merchant_id"]
    products = original.items[original.items["merchant_id"].isin(grocers)]
    assert len(store.items) == products["title"].nunique()  # twins at several supermarkets merged
    bought = original.interactions[(original.interactions["event_type"] == "purchase")
                                   & original.interactions["item_id"].isin(products["item_id"])]
    assert len(store.interactions) == len(bought)  # every grocery purchase kept, restaurant orders dropped
    assert set(store.interactions["item_id"]) <= set(store.items["item_id"])


def test_single_merchant_needs_purchase_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="purchase_only"):
        generate(tmp_path / "x", single_merchant=True, **SMALL)
