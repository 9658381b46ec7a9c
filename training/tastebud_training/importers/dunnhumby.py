"""dunnhumby "The Complete Journey" as a Tastebud data directory: `tastebud data import dunnhumby DIR --out D`.

Reads ``transaction_data.csv`` (required); ``product.csv`` names and categorises the products and
``hh_demographic.csv`` (only some households) gives age bands, when present. Column names match
case-insensitively; errors name them as the public release spells them.

Timeline rule (the format has no calendar dates): ``DAY`` 1 is ANCHOR_DAY (2016-01-01 UTC), so a line's timestamp
is ANCHOR_DAY + (DAY - 1) days + ``TRANS_TIME`` (HHMM, e.g. 1631 = 16:31, 5 or 0005 = 00:05). Every line keeps its
own time, even when lines of one basket differ. DAY must be >= 1 and TRANS_TIME a time 0000-2359 (minutes < 60).

Mapping to the contract:
    merchants: one grocery merchant, the retailer (merchant_id "dunnhumby"); ``STORE_ID`` stays on the lines.
    items: the products that appear in transactions, item_id = ``PRODUCT_ID``; from product.csv: title =
        ``SUB_COMMODITY_DESC`` title-cased plus " (<CURR_SIZE_OF_PRODUCT>)" when a size is given (the commodity
        when there is no sub-commodity), category = ``COMMODITY_DESC`` lower-cased, description = "DEPARTMENT,
        COMMODITY_DESC, SUB_COMMODITY_DESC, BRAND"; department, brand, manufacturer and size are kept as extra
        columns. Products missing from product.csv (or without it) get title and category "". price = the median
        of ``SALES_VALUE / QUANTITY`` over the product's lines with QUANTITY > 0 (NaN when there is none).
    users: every ``household_key`` of the transactions; age_band = ``AGE_DESC`` and the other hh_demographic
        columns as extra columns (marital_status, income, homeowner, household_composition, household_size,
        kid_category), "" for households without demographics.
    interactions: one "purchase" per transaction line: session_id = ``BASKET_ID``, quantity = ``QUANTITY`` (0 is
        kept), extra columns store_id, sales_value, week_no and the signed discounts retail_disc, coupon_disc,
        coupon_match_disc (NaN when the file has no such column); sorted by timestamp, then household.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tastebud_training.data.atomic_dir import check_replaceable, write_dataset_dir
from tastebud_training.data.errors import DataError, DataValidationError
from tastebud_training.importers.source_csv import ColumnKind, read_source_csv

GENERATOR = "tastebud-dunnhumby"
ANCHOR_DAY = pd.Timestamp("2016-01-01", tz="UTC")  # DAY 1; any fixed day would do (the release has no dates)
MERCHANT_ID = "dunnhumby"
DAY_S = 86_400
TRANSACTIONS_FILE = "transaction_data.csv"
PRODUCTS_FILE = "product.csv"
DEMOGRAPHICS_FILE = "hh_demographic.csv"
TRANSACTIONS: dict[str, ColumnKind] = {
    "household_key": "int", "BASKET_ID": "int", "DAY": "int", "PRODUCT_ID": "int", "QUANTITY": "int",
    "SALES_VALUE": "float", "STORE_ID": "int", "TRANS_TIME": "int", "WEEK_NO": "int",
    "RETAIL_DISC": "text", "COUPON_DISC": "text", "COUPON_MATCH_DISC": "text",
}  # fmt: skip
# The discounts are usually negative: read as text here, parsed as signed numbers below.
DISCOUNTS = ("RETAIL_DISC", "COUPON_DISC", "COUPON_MATCH_DISC")
TRANSACTIONS_OPTIONAL = frozenset({"WEEK_NO", *DISCOUNTS})
PRODUCTS: dict[str, ColumnKind] = {
    "PRODUCT_ID": "int", "MANUFACTURER": "text", "DEPARTMENT": "text", "BRAND": "text", "COMMODITY_DESC": "text",
    "SUB_COMMODITY_DESC": "text", "CURR_SIZE_OF_PRODUCT": "text",
}  # fmt: skip
# hh_demographic column -> users column (AGE_DESC is the contract's age_band; the others are extra columns).
DEMOGRAPHICS = {
    "AGE_DESC": "age_band", "MARITAL_STATUS_CODE": "marital_status", "INCOME_DESC": "income",
    "HOMEOWNER_DESC": "homeowner", "HH_COMP_DESC": "household_composition",
    "HOUSEHOLD_SIZE_DESC": "household_size", "KID_CATEGORY_DESC": "kid_category",
}  # fmt: skip
_SHOWN_PER_COLUMN = 3


@dataclass(frozen=True)
class ImportSummary:
    """What was imported."""

    out: Path
    source: Path
    users: int
    users_with_demographics: int
    baskets: int
    stores: int
    items: int
    named_items: int
    interactions: int
    days: int
    timeline: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "out": str(self.out), "source": str(self.source)}


def line_times(day: np.ndarray, trans_time: np.ndarray) -> np.ndarray:
    """Epoch seconds of transaction lines by the timeline rule (module docstring); inputs already checked."""
    day = np.asarray(day, dtype=np.int64)
    trans_time = np.asarray(trans_time, dtype=np.int64)
    seconds = (day - 1) * DAY_S + (trans_time // 100) * 3600 + (trans_time % 100) * 60
    return ANCHOR_DAY.timestamp() + seconds.astype(float)


def _bad_rows(mask: pd.Series | np.ndarray, values: pd.Series, column: str, why: str) -> list[DataError]:
    rows = np.flatnonzero(np.asarray(mask))[:_SHOWN_PER_COLUMN]
    return [DataError(TRANSACTIONS_FILE, int(r) + 2, column, f"{values.iloc[r]!r} {why}") for r in rows]  # +2: header


def _check_transactions(lines: pd.DataFrame) -> dict[str, np.ndarray]:
    """Raise on bad days, times of day and discounts; return the discounts as signed floats (NaN when empty)."""
    errors = _bad_rows(lines["DAY"] < 1, lines["DAY"], "DAY", "must be a day number >= 1")
    time = lines["TRANS_TIME"]
    errors += _bad_rows((time // 100 > 23) | (time % 100 > 59), time.map(lambda t: f"{t:04d}"), "TRANS_TIME",
                        "is not a time of day HHMM 0000-2359")
    discounts = {}
    for column in DISCOUNTS:
        text = lines[column]
        numbers = pd.to_numeric(text.replace("", np.nan), errors="coerce")
        errors += _bad_rows(numbers.isna() & (text != ""), text, column, "must be a number or empty")
        discounts[column] = numbers.to_numpy(dtype=float)
    if errors:
        raise DataValidationError(errors)
    if lines.empty:
        raise DataValidationError([DataError(TRANSACTIONS_FILE, None, None, "no transaction lines")])
    return discounts


def _prices(lines: pd.DataFrame) -> pd.Series:
    """Median SALES_VALUE / QUANTITY per PRODUCT_ID over lines with QUANTITY > 0."""
    sold = lines[lines["QUANTITY"] > 0]
    unit = sold["SALES_VALUE"] / sold["QUANTITY"]
    return unit.groupby(sold["PRODUCT_ID"].to_numpy()).median()


def _catalog(source: Path, lines: pd.DataFrame) -> pd.DataFrame:
    """Items for the products of ``lines``; named and categorised when product.csv is there."""
    product_ids = np.sort(lines["PRODUCT_ID"].unique())
    ids = pd.Series(product_ids)
    described = pd.DataFrame({c: pd.Series("", index=ids.index) for c in PRODUCTS if c != "PRODUCT_ID"})
    if (source / PRODUCTS_FILE).is_file():
        products = read_source_csv(source / PRODUCTS_FILE, PRODUCTS,
                                   optional=frozenset(PRODUCTS) - {"PRODUCT_ID"})
        products = products.drop_duplicates("PRODUCT_ID").set_index("PRODUCT_ID")
        described = pd.DataFrame({c: ids.map(products[c]).fillna("").astype(str) for c in described.columns})
    sub, size = described["SUB_COMMODITY_DESC"], described["CURR_SIZE_OF_PRODUCT"]
    name = sub.where(sub != "", described["COMMODITY_DESC"]).str.title()
    title = [f"{n} ({s})" if n and s else n for n, s in zip(name, size, strict=True)]
    parts = described[["DEPARTMENT", "COMMODITY_DESC", "SUB_COMMODITY_DESC", "BRAND"]].to_numpy()
    return pd.DataFrame({
        "item_id": ids.astype(str).to_numpy(),
        "merchant_id": MERCHANT_ID,
        "title": title,
        "category": described["COMMODITY_DESC"].str.lower().to_numpy(),
        "description": [", ".join(p for p in row if p) for row in parts],
        "price": ids.map(_prices(lines)).to_numpy(dtype=float),
        "department": described["DEPARTMENT"].to_numpy(),
        "brand": described["BRAND"].to_numpy(),
        "manufacturer": described["MANUFACTURER"].to_numpy(),
        "size": size.to_numpy(),
    })


def _users(source: Path, household_keys: np.ndarray) -> tuple[pd.DataFrame, int]:
    """One row per household of the transactions, demographics from hh_demographic.csv when present; and how many
    of them it covers."""
    keys = pd.Series(household_keys)
    users = pd.DataFrame({"user_id": keys.astype(str).to_numpy()})
    demographics = None
    if (source / DEMOGRAPHICS_FILE).is_file():
        columns: dict[str, ColumnKind] = {"household_key": "int", **dict.fromkeys(DEMOGRAPHICS, "text")}
        demographics = read_source_csv(source / DEMOGRAPHICS_FILE, columns, optional=frozenset(DEMOGRAPHICS))
        demographics = demographics.drop_duplicates("household_key").set_index("household_key")
    for column, target in DEMOGRAPHICS.items():
        users[target] = "" if demographics is None else keys.map(demographics[column]).fillna("").to_numpy()
    return users, 0 if demographics is None else int(keys.isin(demographics.index).sum())


def import_dunnhumby(source: Path, out: Path) -> ImportSummary:
    """Write The Complete Journey files in ``source`` as a data directory at ``out`` (atomically, as Parquet).

    Raises:
        DataValidationError: a file is missing, unreadable or has a bad value (file, line and column named).
        FileExistsError: ``out`` holds something other than a generated data set.
    """
    source, out = Path(source), Path(out)
    check_replaceable(out)
    lines = read_source_csv(source / TRANSACTIONS_FILE, TRANSACTIONS, optional=TRANSACTIONS_OPTIONAL)
    discounts = _check_transactions(lines)
    lines = lines.assign(ts=line_times(lines["DAY"].to_numpy(), lines["TRANS_TIME"].to_numpy()),
                         **{c.lower(): v for c, v in discounts.items()})
    items = _catalog(source, lines)
    users, with_demographics = _users(source, np.sort(lines["household_key"].unique()))
    lines = lines.sort_values(["ts", "household_key", "BASKET_ID"], kind="stable")
    interactions = pd.DataFrame({
        "user_id": lines["household_key"].astype(str).to_numpy(),
        "item_id": lines["PRODUCT_ID"].astype(str).to_numpy(),
        "event_type": "purchase",
        "timestamp": lines["ts"].to_numpy(dtype=float),
        "session_id": lines["BASKET_ID"].astype(str).to_numpy(),
        "quantity": lines["QUANTITY"].to_numpy(dtype=float),
        "store_id": lines["STORE_ID"].astype(str).to_numpy(),
        "sales_value": lines["SALES_VALUE"].to_numpy(dtype=float),
        "week_no": lines["WEEK_NO"].to_numpy(dtype=float),  # NaN when the file has no WEEK_NO
        **{c.lower(): lines[c.lower()].to_numpy(dtype=float) for c in DISCOUNTS},
    })
    merchants = pd.DataFrame({"merchant_id": [MERCHANT_ID], "name": ["dunnhumby The Complete Journey retailer"],
                              "domain": ["grocery"], "category": ["grocery"]})
    timeline = f"DAY 1 = {ANCHOR_DAY.date()} UTC; timestamp = that day + (DAY - 1) days + TRANS_TIME (HHMM)"
    write_dataset_dir(out, {"merchants": merchants, "items": items, "users": users, "interactions": interactions},
                      "source.json", {"generator": GENERATOR, "source": str(source.absolute()),
                                      "files": sorted(p.name for p in source.glob("*.csv")), "timeline": timeline,
                                      "anchor_day": str(ANCHOR_DAY.date()),
                                      "mapping": "one grocery merchant; products -> items (commodity = category); "
                                                 "households -> users; transaction lines -> purchases "
                                                 "(session_id = BASKET_ID, quantity = QUANTITY)"})
    return ImportSummary(out=out, source=source, users=len(users),
                         users_with_demographics=with_demographics,
                         baskets=int(lines["BASKET_ID"].nunique()), stores=int(lines["STORE_ID"].nunique()),
                         items=len(items), named_items=int((items["title"] != "").sum()),
                         interactions=len(interactions), days=int(lines["DAY"].nunique()), timeline=timeline)
