"""`tastebud data import instacart`: the Kaggle layout into the data contract, with its timeline rule (issue 22)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tastebud_cli.app import app
from tastebud_training.data import DataValidationError, load_dataset, validate_dir
from tastebud_training.importers.instacart import ANCHOR_DAY, import_instacart

ORDERS = """order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_order
10,1,prior,1,2,8,
11,1,prior,2,3,9,7.0
12,1,prior,3,3,20,0.0
13,1,prior,4,3,7,0.0
20,2,prior,1,0,14,
21,2,prior,2,1,10,30.0
22,2,test,3,4,12,3.0
"""
LINES = """order_id,product_id,add_to_cart_order,reordered
10,100,1,0
10,101,2,0
11,100,1,1
12,102,1,0
13,100,1,1
20,101,1,0
21,101,1,1
21,103,2,0
"""
PRODUCTS = """product_id,product_name,aisle_id,department_id
100,Organic Bananas,24,4
101,Whole Milk,84,16
102,"Sparkling Water, Lime",115,7
"""
AISLES = "aisle_id,aisle\n24,fresh fruits\n84,milk\n115,water seltzer sparkling water\n"
DEPARTMENTS = "department_id,department\n4,produce\n16,dairy eggs\n7,beverages\n"
DAY = 86_400.0


def write_source(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    contents = {"orders.csv": ORDERS, "order_products__prior.csv": LINES, "products.csv": PRODUCTS,
                "aisles.csv": AISLES, "departments.csv": DEPARTMENTS, **files}
    for name, text in contents.items():
        if text:
            (folder / name).write_text(text)
    return folder


def test_orders_are_placed_on_the_timeline_and_lines_become_purchases(tmp_path: Path) -> None:
    summary = import_instacart(write_source(tmp_path / "src"), tmp_path / "out")
    assert (summary.users, summary.orders, summary.items, summary.interactions) == (2, 6, 4, 8)  # orders with lines
    validate_dir(tmp_path / "out")
    data = load_dataset(tmp_path / "out")
    events = data.interactions.assign(order=lambda f: f["session_id"].astype(int))
    at = events.groupby("order")["ts"].first()
    anchor = ANCHOR_DAY.timestamp()
    # User 2's last order (the `test` one, no lines) is on the anchor day: order 21 lies 3 days before it at 10:00.
    assert at[21] == anchor - 3 * DAY + 10 * 3600 and at[20] == at[21] - 30 * DAY + 4 * 3600
    # User 1: order 13 (7:00, same day as order 12 at 20:00) is placed one minute after 12, never before it.
    assert at[12] == anchor + 20 * 3600 and at[13] == at[12] + 60
    assert at[11] == anchor + 9 * 3600 and at[10] == anchor - 7 * DAY + 8 * 3600
    assert set(events["event_type"]) == {"purchase"} and (events["quantity"] == 1).all()
    assert events.loc[events["order"] == 21, "item_id"].tolist() == ["101", "103"]  # cart order kept
    items = data.items.set_index("item_id")
    assert items.loc["102", "title"] == "Sparkling Water, Lime"
    assert items.loc["100", "category"] == "fresh fruits" and items.loc["101", "description"] == "milk, dairy eggs"
    assert items.loc["103", "title"] == "" and items.loc["103", "category"] == ""  # not in products.csv
    assert set(data.merchants["domain"]) == {"grocery"}


def test_without_product_files_items_are_ids_only(tmp_path: Path) -> None:
    source = write_source(tmp_path / "src", **{"products.csv": "", "aisles.csv": "", "departments.csv": ""})
    import_instacart(source, tmp_path / "out")
    items = load_dataset(tmp_path / "out").items
    assert (items["title"] == "").all() and len(items) == 4


@pytest.mark.parametrize(("files", "expected"), [
    ({"orders.csv": ORDERS.replace("11,1,prior,2,3,9,7.0", "11,1,prior,2,3,9,seven")},
     "orders.csv line 3, column 'days_since_prior_order': 'seven'"),
    ({"orders.csv": ORDERS.replace("20,2,prior,1,0,14,", "20,2,prior,1,0,25,")},
     "orders.csv line 6, column 'order_hour_of_day': 25 is not an hour"),
    ({"order_products__prior.csv": LINES + "99,100,1,0\n"},
     "order_products__prior.csv line 10, column 'order_id': '99' is not in orders.csv"),
    ({"orders.csv": ORDERS.replace("order_hour_of_day,", "hour,")},
     "orders.csv, column 'order_hour_of_day': required column is missing"),
])
def test_a_bad_file_names_file_line_and_column_and_writes_nothing(tmp_path: Path, files: dict[str, str],
                                                                  expected: str) -> None:
    with pytest.raises(DataValidationError) as raised:
        import_instacart(write_source(tmp_path / "src", **files), tmp_path / "out")
    assert expected in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_the_cli_imports_and_prints_a_summary(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["data", "import", "instacart", str(write_source(tmp_path / "src")),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["interactions"] == 8
    bad = CliRunner().invoke(app, ["data", "import", "instacart", str(tmp_path / "nowhere"), "--out",
                                   str(tmp_path / "out2")])
    assert bad.exit_code != 0 and "order_products__" in bad.output
    assert pd.read_parquet(tmp_path / "out" / "interactions.parquet")["session_id"].nunique() == 6
