"""The data-directory contract (DESIGN.md §3): what loads, and how a bad file is reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tastebud_training.data import (
    EVENT_WEIGHTS,
    POSITIVE_EVENTS,
    DataError,
    DataValidationError,
    load_dataset,
    validate_dir,
)

# Purchases only, users without profiles, items without text or prices: the poorest data that must load.
MINIMAL = {
    "merchants": (
        "merchant_id,name,domain,category\nm1,Luigi's Trattoria,restaurant,italian\nm2,FreshMart,grocery,supermarket\n"
    ),
    "items": "item_id,merchant_id,title,category\n007,m1,Margherita Pizza,pizza\ni2,m2,,dairy\n",
    "users": "user_id\nu1\nu2\n",
    "interactions": (
        "user_id,item_id,event_type,timestamp\nu1,007,purchase,2025-01-01T12:00:00Z\nu2,i2,purchase,1735732800\n"
    ),
}


def make_dir(root: Path, **tables: str | None) -> Path:
    """MINIMAL with some tables replaced (text) or left out (None), as CSV files."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in {**MINIMAL, **tables}.items():
        if text is not None:
            (root / f"{name}.csv").write_text(text, encoding="utf-8")
    return root


def only_error(path: Path) -> DataError:
    with pytest.raises(DataValidationError) as caught:
        load_dataset(path)
    assert len(caught.value.errors) == 1, str(caught.value)
    return caught.value.errors[0]


def test_minimal_purchases_only_data_set_loads(tmp_path: Path) -> None:
    ds = load_dataset(make_dir(tmp_path))

    assert ds.stock is None
    assert ds.items["title"].tolist() == ["Margherita Pizza", ""]
    assert ds.items["price"].isna().all() and ds.items["description"].eq("").all()
    assert ds.merchants[["lat", "lon", "created_at"]].isna().all().all()
    assert list(ds.users.columns) == [
        "user_id",
        "created_at",
        "age_band",
        "gender",
        "home_lat",
        "home_lon",
        "preferences",
    ]
    assert list(ds.interactions.columns) == [
        "user_id", "item_id", "event_type", "ts", "session_id", "request_id", "position", "quantity",
    ]  # fmt: skip
    assert ds.interactions["ts"].dtype == np.int64
    assert ds.warnings == ()


def test_ids_stay_strings(tmp_path: Path) -> None:
    ds = load_dataset(make_dir(tmp_path))
    assert ds.items["item_id"].tolist() == ["007", "i2"]
    assert ds.interactions["item_id"].iloc[0] == "007"


def test_integer_ids_in_parquet_become_strings(tmp_path: Path) -> None:
    make_dir(tmp_path, items=None, interactions=None)
    pd.DataFrame(
        {"item_id": [7, 8], "merchant_id": ["m1", "m2"], "title": ["a", "b"], "category": ["x", "y"]}
    ).to_parquet(tmp_path / "items.parquet")
    pd.DataFrame({"user_id": [1, 2], "item_id": [7, 8], "event_type": "click", "timestamp": [1, 2]}).to_parquet(
        tmp_path / "interactions.parquet"
    )
    ds = load_dataset(tmp_path)
    assert ds.items["item_id"].tolist() == ["7", "8"]
    assert ds.interactions["user_id"].tolist() == ["1", "2"]


@pytest.mark.parametrize(
    "value",
    [
        "2025-01-01T12:00:00Z",
        "2025-01-01T12:00:00",  # naive = UTC
        "2025-01-01 12:00:00",
        "2025-01-01T14:00:00+02:00",
        "2025-01-01T12:00:00.750Z",
        "1735732800",
        "1735732800.9",
    ],
)
def test_timestamps_iso_or_epoch_seconds(tmp_path: Path, value: str) -> None:
    interactions = f"user_id,item_id,event_type,timestamp\nu1,007,purchase,{value}\n"
    ds = load_dataset(make_dir(tmp_path, interactions=interactions))
    assert ds.interactions["ts"].tolist() == [1735732800]


def test_mixed_timestamp_forms_in_one_column_and_sorted_stably(tmp_path: Path) -> None:
    interactions = (
        "user_id,item_id,event_type,timestamp\n"
        "u1,007,purchase,2025-01-01T13:00:00Z\n"
        "u2,i2,click,1735732800\n"
        "u1,i2,add_to_cart,2025-01-01T12:00:00Z\n"
        "u2,007,view,2025-01-01T11:00:00Z\n"
    )
    ds = load_dataset(make_dir(tmp_path, interactions=interactions))
    assert ds.interactions["event_type"].tolist() == ["view", "click", "add_to_cart", "purchase"]
    assert ds.interactions["ts"].is_monotonic_increasing


def test_parquet_datetime_column_is_accepted(tmp_path: Path) -> None:
    make_dir(tmp_path, interactions=None)
    when = pd.to_datetime(["2025-01-01T12:00:00Z", "2025-01-01T13:00:00Z"])
    frame = pd.DataFrame(
        {"user_id": ["u1", "u2"], "item_id": ["007", "i2"], "event_type": "purchase", "timestamp": when}
    )
    frame.to_parquet(tmp_path / "interactions.parquet")
    assert load_dataset(tmp_path).interactions["ts"].tolist() == [1735732800, 1735736400]


def test_unknown_columns_are_kept(tmp_path: Path) -> None:
    items = "item_id,merchant_id,title,category,brand\n007,m1,Margherita,pizza,Acme\ni2,m2,Milk,dairy,\n"
    interactions = "user_id,item_id,event_type,timestamp,rating\nu1,007,purchase,1735732800,5\n"
    ds = load_dataset(make_dir(tmp_path, items=items, interactions=interactions))
    assert ds.items["brand"].tolist() == ["Acme", ""]
    assert ds.interactions["rating"].tolist() == ["5"]


def test_optional_columns_are_normalised(tmp_path: Path) -> None:
    merchants = (
        "merchant_id,name,domain,category,lat,lon,created_at\n"
        "m1,Luigi's,Restaurant,italian,52.5,13.4,2024-06-01\n"
        "m2,FreshMart,grocery,supermarket,,,\n"
    )
    items = "item_id,merchant_id,title,category,price\n007,m1,Margherita,pizza,9.5\ni2,m2,Milk,dairy,\n"
    stock = "item_id,in_stock,quantity\n007,TRUE,\ni2,no,0\n"
    ds = load_dataset(make_dir(tmp_path, merchants=merchants, items=items, stock=stock))
    assert ds.merchants["domain"].tolist() == ["restaurant", "grocery"]
    assert ds.merchants["lat"].iloc[0] == 52.5 and np.isnan(ds.merchants["lat"].iloc[1])
    assert ds.merchants["created_at"].iloc[0] == pd.Timestamp("2024-06-01", tz="UTC").timestamp()
    assert ds.items["price"].iloc[0] == 9.5 and np.isnan(ds.items["price"].iloc[1])
    assert ds.stock is not None and ds.stock["in_stock"].tolist() == [True, False]


@pytest.mark.parametrize(
    "word, expected", [("true", True), ("False", False), ("1", True), ("0", False), ("YES", True), ("no", False)]
)
def test_in_stock_words(tmp_path: Path, word: str, expected: bool) -> None:
    ds = load_dataset(make_dir(tmp_path, stock=f"item_id,in_stock\n007,{word}\n"))
    assert ds.stock is not None and ds.stock["in_stock"].tolist() == [expected]


def test_users_missing_from_users_table_are_a_warning(tmp_path: Path) -> None:
    interactions = "user_id,item_id,event_type,timestamp\nu1,007,purchase,1\nstranger,i2,click,2\n"
    summary = validate_dir(make_dir(tmp_path, interactions=interactions))
    assert summary.rows["interactions"] == 2
    assert summary.n_positives == 2
    assert any("absent from the users table" in w for w in summary.warnings)


def test_validate_summary(tmp_path: Path) -> None:
    summary = validate_dir(make_dir(tmp_path))
    assert summary.rows == {"merchants": 2, "items": 2, "users": 2, "interactions": 2}
    assert summary.event_counts["purchase"] == 2
    assert summary.ts_min == summary.ts_max == 1735732800
    assert summary.as_dict()["time_range"] == ["2025-01-01T12:00:00Z", "2025-01-01T12:00:00Z"]


def test_positive_events_and_weights() -> None:
    assert POSITIVE_EVENTS == ("click", "add_to_cart", "purchase")
    assert EVENT_WEIGHTS == {"click": 1, "add_to_cart": 2, "purchase": 3}


MERCHANTS = "merchant_id,name,domain,category\nm1,A,restaurant,x\nm2,B,grocery,y"
# (table, file content, expected row, column, words in the message). Data row i of a CSV is on line i + 2.
CSV_ERRORS = [
    ("merchants", "merchant_id,name,category\nm1,A,italian\n", None, "domain", "required column is missing"),
    ("merchants", f"{MERCHANTS}\n,C,grocery,z\n", 4, "merchant_id", "empty"),
    ("merchants", f"{MERCHANTS}\nm1,C,grocery,z\n", 4, "merchant_id", "duplicate merchant_id 'm1' (first at line 2)"),
    ("merchants", "merchant_id,name,domain,category\nm1,A,cafe,x\nm2,B,grocery,y\n", 2, "domain", "'cafe'"),
    (
        "merchants",
        "merchant_id,name,domain,category,lat\nm1,A,restaurant,x,95\nm2,B,grocery,y,\n",
        2,
        "lat",
        "above 90",
    ),
    (
        "merchants",
        "merchant_id,name,domain,category,lon\nm1,A,restaurant,x,\nm2,B,grocery,y,-181\n",
        3,
        "lon",
        "below -180",
    ),
    (
        "items",
        "item_id,merchant_id,title,category\n007,m1,A,x\ni2,m9,B,y\n",
        3,
        "merchant_id",
        "unknown merchant_id 'm9'",
    ),
    ("items", "item_id,merchant_id,title,category,price\n007,m1,A,x,-1\ni2,m2,B,y,\n", 2, "price", "below 0"),
    (
        "items",
        "item_id,merchant_id,title,category,price\n007,m1,A,x,abc\ni2,m2,B,y,\n",
        2,
        "price",
        "not a number: 'abc'",
    ),
    (
        "items",
        "item_id,merchant_id,title,category,price\n007,m1,A,x,1\ni2,m2,B,y,NaN\n",
        3,
        "price",
        "not a number: 'NaN'",
    ),
    (
        "items",
        "item_id,merchant_id,title,category\n007,m1,A,x\ni2,m2,B,y\n007,m2,C,z\n",
        4,
        "item_id",
        "duplicate item_id '007'",
    ),
    ("users", "user_id\nu1\nu1\n", 3, "user_id", "duplicate"),
    ("users", "user_id,created_at\nu1,soon\nu2,\n", 2, "created_at", "cannot parse timestamp 'soon'"),
    ("interactions", "user_id,item_id,event_type,timestamp\nu1,007,like,1\n", 2, "event_type", "'like'"),
    (
        "interactions",
        "user_id,item_id,event_type,timestamp\nu1,007,click,1\nu1,nope,click,1\n",
        3,
        "item_id",
        "unknown item_id 'nope'",
    ),
    ("interactions", "user_id,item_id,event_type,timestamp\nu1,007,click,yesterday\n", 2, "timestamp", "'yesterday'"),
    ("interactions", "user_id,item_id,event_type,timestamp\nu1,007,click,\n", 2, "timestamp", "timestamp is empty"),
    ("interactions", "user_id,item_id,event_type,timestamp\n,007,click,1\n", 2, "user_id", "user_id is empty"),
    ("interactions", "user_id,item_id,event_type,timestamp\nu1,007,click,1735732800000\n", 2, "timestamp", "above"),
    ("interactions", "user_id,item_id,event_type,timestamp,quantity\nu1,007,purchase,1,two\n", 2, "quantity", "'two'"),
    ("stock", "item_id,in_stock\n007,maybe\n", 2, "in_stock", "invalid boolean 'maybe'"),
    ("stock", "item_id,in_stock\n007,yes\n007,no\n", 3, "item_id", "duplicate"),
    ("stock", "item_id,quantity\n007,3\n", None, "in_stock", "required column is missing"),
]


@pytest.mark.parametrize(("table", "text", "row", "column", "words"), CSV_ERRORS)
def test_csv_error_names_file_line_and_column(
    tmp_path: Path, table: str, text: str, row: int | None, column: str, words: str
) -> None:
    error = only_error(make_dir(tmp_path, **{table: text}))
    assert (error.file, error.row, error.column) == (f"{table}.csv", row, column)
    assert words in error.message
    if row is not None:
        assert f"{table}.csv line {row}, column '{column}'" in str(error)


def test_parquet_error_names_row(tmp_path: Path) -> None:
    make_dir(tmp_path, merchants=None)
    frame = pd.DataFrame(
        {"merchant_id": ["m1", "m2"], "name": ["A", "B"], "domain": ["restaurant", "pub"], "category": ["x", "y"]}
    )
    frame.to_parquet(tmp_path / "merchants.parquet")
    error = only_error(tmp_path)
    assert (error.file, error.row, error.column) == ("merchants.parquet", 2, "domain")
    assert "merchants.parquet row 2, column 'domain'" in str(error)


def test_blank_lines_do_not_shift_line_numbers(tmp_path: Path) -> None:
    error = only_error(make_dir(tmp_path, users="user_id\nu1\n\nu1\n"))
    assert (error.row, error.column) == (4, "user_id")


def test_required_file_missing(tmp_path: Path) -> None:
    error = only_error(make_dir(tmp_path, items=None))
    assert error.file == "items.csv or items.parquet"
    assert "missing" in error.message


def test_csv_and_parquet_of_one_table_is_an_error(tmp_path: Path) -> None:
    make_dir(tmp_path)
    pd.DataFrame({"user_id": ["u1"]}).to_parquet(tmp_path / "users.parquet")
    error = only_error(tmp_path)
    assert error.file == "users.csv and users.parquet"


@pytest.mark.parametrize("make", [lambda p: p / "nowhere", lambda p: p])
def test_missing_directory_says_how_to_make_data(tmp_path: Path, make) -> None:
    with pytest.raises(FileNotFoundError, match="tastebud data generate --out DIR"):
        load_dataset(make(tmp_path))


def test_errors_stop_at_twenty_and_are_a_value_error(tmp_path: Path) -> None:
    rows = "".join(f"u1,007,like{i},1\n" for i in range(30))
    with pytest.raises(ValueError) as caught:
        load_dataset(make_dir(tmp_path, interactions="user_id,item_id,event_type,timestamp\n" + rows))
    error = caught.value
    assert isinstance(error, DataValidationError)
    assert len(error.errors) == 20 and error.truncated
    assert "interactions.csv line 21, column 'event_type'" in str(error)
    assert "stopped here" in str(error)


def test_errors_across_files_are_collected_together(tmp_path: Path) -> None:
    merchants = "merchant_id,name,domain,category\nm1,A,restaurant,x\nm2,B,shop,y\n"
    interactions = "user_id,item_id,event_type,timestamp\nu1,007,like,1\n"
    with pytest.raises(DataValidationError) as caught:
        load_dataset(make_dir(tmp_path, merchants=merchants, interactions=interactions))
    assert [(e.file, e.column) for e in caught.value.errors] == [
        ("merchants.csv", "domain"),
        ("interactions.csv", "event_type"),
    ]


def test_malformed_csv_is_reported_not_raised_raw(tmp_path: Path) -> None:
    error = only_error(make_dir(tmp_path, users='user_id\n"u1\n'))
    assert error.file == "users.csv" and "cannot be read" in error.message
