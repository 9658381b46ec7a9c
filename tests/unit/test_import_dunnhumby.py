"""dunnhumby "The Complete Journey" import: a hand-written fixture in the release's layout, tests/fixtures/dunnhumby."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tastebud_cli.app import app
from tastebud_training.data import Dataset, DataValidationError, load_dataset, validate_dir
from tastebud_training.importers.dunnhumby import ANCHOR_DAY, import_dunnhumby

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dunnhumby"
TRANSACTIONS = FIXTURE / "transaction_data.csv"


def _ts(day: int, hhmm: str) -> int:
    """The timeline rule written out: DAY 1 = ANCHOR_DAY, plus TRANS_TIME as the time of day."""
    return int((ANCHOR_DAY + pd.Timedelta(days=day - 1, hours=int(hhmm[:2]), minutes=int(hhmm[2:]))).timestamp())


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    out = tmp_path_factory.mktemp("dh") / "complete-journey"
    summary = import_dunnhumby(FIXTURE, out)
    assert (summary.users, summary.baskets, summary.items, summary.interactions) == (3, 8, 7, 20)
    assert (summary.named_items, summary.users_with_demographics, summary.stores) == (6, 1, 2)
    assert validate_dir(out).rows == {"merchants": 1, "items": 7, "users": 3, "interactions": 20}
    return load_dataset(out)


def _copy_with(tmp_path: Path, line: int, column: str, value: str | None) -> Path:
    """The fixture with one value of transaction_data.csv replaced (``line`` as a user counts, header = 1), or the
    whole column dropped when ``value`` is None."""
    source = tmp_path / "source"
    shutil.copytree(FIXTURE, source)
    frame = pd.read_csv(TRANSACTIONS, dtype=str, keep_default_na=False)
    if value is None:
        frame = frame.drop(columns=[column])
    else:
        frame.loc[line - 2, column] = value
    frame.to_csv(source / "transaction_data.csv", index=False)
    return source


def test_output_passes_the_contract(imported: Dataset) -> None:
    assert imported.warnings == ()
    assert list(imported.merchants["merchant_id"]) == ["dunnhumby"]
    assert set(imported.merchants["domain"]) == {"grocery"}
    assert set(imported.items["merchant_id"]) == {"dunnhumby"}
    assert set(imported.interactions["event_type"]) == {"purchase"}
    assert sorted(imported.users["user_id"]) == ["101", "202", "303"]
    assert set(imported.interactions["store_id"]) == {"364", "31742"}


def test_timeline_rule(imported: Dataset) -> None:
    by_line = imported.interactions.set_index(["session_id", "item_id"])["ts"]
    assert by_line.loc[("26984851472", "1001")] == _ts(1, "1631") == ANCHOR_DAY.timestamp() + 16 * 3600 + 31 * 60
    assert by_line.loc[("26984896261", "1002")] == _ts(1, "0005")  # TRANS_TIME 0005 = 00:05
    assert by_line.loc[("26984851516", "1006")] == _ts(1, "2359")
    assert by_line.loc[("26986019512", "1005")] == _ts(711, "1410")
    assert pd.Timestamp(_ts(711, "1410"), unit="s", tz="UTC") == pd.Timestamp("2017-12-11 14:10", tz="UTC")
    ts = imported.interactions["ts"].to_numpy()
    assert (np.diff(ts) >= 0).all()
    assert ts.min() == _ts(1, "0005") and ts.max() == _ts(711, "1410")


def test_sessions_are_baskets(imported: Dataset) -> None:
    interactions = imported.interactions
    baskets = pd.read_csv(TRANSACTIONS, dtype=str).groupby("BASKET_ID").size()
    assert interactions.groupby("session_id").size().sort_index().to_dict() == baskets.sort_index().to_dict()
    assert (interactions.groupby("session_id")["user_id"].nunique() == 1).all()
    assert (interactions.groupby("session_id")["ts"].nunique() == 1).all()  # the fixture's baskets have one time
    zero = interactions[interactions["item_id"] == "1007"]
    assert list(zero["quantity"]) == [0.0]  # QUANTITY 0 is a line too
    line = interactions.set_index(["session_id", "item_id"]).loc[("26985205886", "1005")]
    assert (line["quantity"], line["sales_value"], line["week_no"], line["retail_disc"]) == (2.0, 7.0, 2.0, -1.0)


def test_items_from_the_product_file(imported: Dataset) -> None:
    items = imported.items.set_index("item_id")
    assert sorted(items.index) == ["1001", "1002", "1003", "1004", "1005", "1006", "1007"]  # 1009: never bought
    milk = items.loc["1001"]
    assert (milk["title"], milk["category"]) == ("Fluid Milk White Only (1 GA)", "fluid milk products")
    assert milk["description"] == "GROCERY, FLUID MILK PRODUCTS, FLUID MILK WHITE ONLY, Private"
    assert items.loc["1005", "title"] == "Cheese: Natural Bulk"  # no size
    unknown = items.loc["1006"]
    assert (unknown["title"], unknown["category"], unknown["description"]) == ("", "", "")
    prices = items["price"]
    assert prices.loc["1001"] == pytest.approx(2.0)  # median of 2.00, 2.20, 1.80, 2.00
    assert prices.loc["1002"] == pytest.approx(0.5)  # SALES_VALUE / QUANTITY
    assert prices.loc["1005"] == pytest.approx(3.5)  # median of 4.00, 3.50, 3.00
    assert prices.loc["1006"] == pytest.approx(3.0)  # priced from transactions without product.csv
    assert np.isnan(prices.loc["1007"])  # only a QUANTITY 0 line


def test_age_band_from_demographics(imported: Dataset) -> None:
    users = imported.users.set_index("user_id")
    assert users["age_band"].to_dict() == {"101": "45-54", "202": "", "303": ""}
    assert users.loc["101", "household_composition"] == "2 Adults No Kids"


def test_without_optional_files(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(TRANSACTIONS, source)
    summary = import_dunnhumby(source, tmp_path / "out")
    assert (summary.items, summary.named_items, summary.users_with_demographics) == (7, 0, 0)
    ds = load_dataset(tmp_path / "out")
    assert set(ds.items["title"]) == {""} and set(ds.items["category"]) == {""}
    assert set(ds.users["age_band"]) == {""}


@pytest.mark.parametrize(("line", "column", "value"), [
    (7, "TRANS_TIME", "1275"),  # 12:75
    (7, "TRANS_TIME", "2400"),
    (3, "DAY", "0"),
    (12, "QUANTITY", "-1"),
    (13, "RETAIL_DISC", "abc"),
])  # fmt: skip
def test_bad_value_names_file_line_and_column(tmp_path: Path, line: int, column: str, value: str) -> None:
    source = _copy_with(tmp_path, line, column, value)
    out = tmp_path / "out"
    with pytest.raises(DataValidationError) as raised:
        import_dunnhumby(source, out)
    assert [(e.file, e.row, e.column) for e in raised.value.errors] == [("transaction_data.csv", line, column)]
    assert f"transaction_data.csv line {line}, column '{column}'" in str(raised.value)
    assert not out.exists()


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    source = _copy_with(tmp_path, 0, "TRANS_TIME", None)
    out = tmp_path / "out"
    with pytest.raises(DataValidationError) as raised:
        import_dunnhumby(source, out)
    # A column missing from the header has no data line: the error names the file and the column.
    assert [(e.file, e.row, e.column) for e in raised.value.errors] == [("transaction_data.csv", None, "TRANS_TIME")]
    assert "transaction_data.csv, column 'TRANS_TIME': required column is missing" in str(raised.value)
    assert not out.exists()


def test_missing_transactions_file(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"transaction_data\.csv: file not found"):
        import_dunnhumby(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_prints_the_summary(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["data", "import", "dunnhumby", str(FIXTURE), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["interactions"], summary["baskets"], summary["out"]) == (20, 8, str(out))
    assert load_dataset(out).warnings == ()


def test_cli_reports_a_bad_file(tmp_path: Path) -> None:
    source = _copy_with(tmp_path, 7, "TRANS_TIME", "1275")
    result = CliRunner().invoke(app, ["data", "import", "dunnhumby", str(source), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "transaction_data.csv line 7" in result.output and "TRANS_TIME" in result.output
    assert not (tmp_path / "out").exists()
