"""A running server's day-partitioned logs in the data directory, and the loader that reads them back."""

from __future__ import annotations

from pathlib import Path

import pytest

from tastebud.adapters.data_dir_log import DataDirLog
from tastebud.domain import InteractionEvent, ItemDraft
from tastebud_training.data import DataValidationError, load_dataset


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "merchants.csv").write_text("merchant_id,name,domain,category,is_open,delivery_radius_km\n"
                                            "m1,A,restaurant,pizza,,\nm2,B,grocery,dairy,false,3.5\n")
    (tmp_path / "items.csv").write_text("item_id,merchant_id,title,category,price\ni1,m1,Pizza,pizza,9\n"
                                        "i2,m2,Milk,dairy,1.2\n")
    (tmp_path / "users.csv").write_text("user_id\nu1\n")
    (tmp_path / "interactions.csv").write_text("user_id,item_id,event_type,timestamp\nu1,i1,purchase,1700000000\n")
    return tmp_path


def test_logged_events_and_items_are_read_back_with_later_rows_winning(data: Path) -> None:
    log = DataDirLog(data)
    log.append_items([ItemDraft("i3", "m1", "Calzone", "pizza", price=11.0)], received_at=1_764_000_000)
    log.append_items([ItemDraft("i1", "m1", "Pizza Margherita", "pizza", price=10.0)], received_at=1_764_000_001)
    log.append_events([InteractionEvent("u1", "i3", "purchase", 1_764_000_100, event_id="e1", quantity=2)])

    dataset = load_dataset(data)

    items = dataset.items.set_index("item_id")
    assert items.loc["i1", "title"] == "Pizza Margherita" and items.loc["i3", "price"] == 11.0
    assert len(items) == 3
    assert dataset.interactions["item_id"].tolist() == ["i1", "i3"]
    assert (data / "interactions" / "day=2025-11-24.csv").read_text().startswith("event_id,user_id,item_id")


def test_merchant_state_columns_default_to_open_and_the_contract_radius(data: Path) -> None:
    from tastebud_training.snapshot import build_catalog

    catalog = build_catalog(load_dataset(data), 1_800_000_000)
    assert catalog.merchant_open.tolist() == [True, False]
    assert catalog.merchant_radius_km.tolist() == [float("inf"), 3.5]  # missing: no known zone, not filtered


def test_a_bad_row_in_a_part_names_the_part_file(data: Path) -> None:
    (data / "interactions").mkdir()
    (data / "interactions" / "day=2025-11-24.csv").write_text(
        "event_id,user_id,item_id,event_type,timestamp\ne1,u1,i9,purchase,1764000000\n")
    with pytest.raises(DataValidationError) as raised:
        load_dataset(data)
    assert "interactions/day=2025-11-24.csv" in str(raised.value) and "i9" in str(raised.value)


def test_values_with_line_breaks_and_commas_stay_in_their_column(data: Path) -> None:
    DataDirLog(data).append_items([ItemDraft("i9", "m1", 'Pizza,\r"special"\nof the day', "pizza", "a\rb", 1e6)],
                                  received_at=1_764_000_000)
    items = load_dataset(data).items.set_index("item_id")
    assert items.loc["i9", "title"] == 'Pizza,\r"special"\nof the day' and items.loc["i9", "merchant_id"] == "m1"
