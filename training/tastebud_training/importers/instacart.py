"""The Instacart Online Grocery Shopping Dataset 2017 layout as a Tastebud data directory:
`tastebud data import instacart DIR --out D`.

Reads ``orders.csv`` and every ``order_products__*.csv`` there is (``prior``, ``train``); ``products.csv``,
``aisles.csv`` and ``departments.csv`` when present give titles and categories (without them items are ids only).

Timeline rule (the format has no calendar dates): every user's last order is placed on the same day, ANCHOR_DAY,
at its ``order_hour_of_day``; each earlier order ``days_since_prior_order`` days before the next one (cumulative
offsets; the dataset caps the gap at 30, "30 or more"). An order never precedes the one before it: when two orders
fall on the same day and the later one has an earlier hour, it is placed one minute after the previous one.
Users are therefore aligned on their last order, which makes a global time cutoff a "the last weeks of every
customer" split. ``order_dow`` is kept as an extra column, not used: the anchor day's weekday is not the data's.

Mapping to the contract: one merchant (Instacart, domain grocery: a one-store log); products are items (title =
product name, category = aisle, description = "aisle, department"); every order line is a purchase with
``session_id`` = the order id and ``quantity`` 1; ``add_to_cart_order`` and ``reordered`` are kept as extra columns.
Orders without lines (the Kaggle ``test`` set) place the timeline but add no interactions.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tastebud_training.data.atomic_dir import check_replaceable, write_dataset_dir
from tastebud_training.data.errors import DataError, DataValidationError
from tastebud_training.importers.source_csv import ColumnKind, read_source_csv, unknown_references

GENERATOR = "tastebud-instacart"
ANCHOR_DAY = pd.Timestamp("2017-05-01", tz="UTC")  # the public release's month; any fixed day would do
MERCHANT_ID = "instacart"
DAY_S = 86_400
SAME_DAY_STEP_S = 60
_ORDER_LINES = re.compile(r"order_products__(\w+)\.csv", re.IGNORECASE)
ORDERS: dict[str, ColumnKind] = {"order_id": "int", "user_id": "int", "eval_set": "text", "order_number": "int",
                                 "order_dow": "int", "order_hour_of_day": "int", "days_since_prior_order": "float"}
LINES: dict[str, ColumnKind] = {"order_id": "int", "product_id": "int", "add_to_cart_order": "int", "reordered": "int"}


@dataclass(frozen=True)
class ImportSummary:
    out: Path
    source: Path
    users: int
    orders: int
    items: int
    interactions: int
    named_items: int
    timeline: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "out": str(self.out), "source": str(self.source)}


def order_times(orders: pd.DataFrame) -> np.ndarray:
    """Epoch seconds of each order by the timeline rule (module docstring); ``orders`` in any order."""
    ordered = orders.sort_values(["user_id", "order_number"], kind="stable")
    gaps = ordered["days_since_prior_order"].fillna(0.0).to_numpy(copy=True)
    first = ordered["user_id"].ne(ordered["user_id"].shift()).to_numpy()
    gaps[first] = 0.0  # a user's first order has no gap (the dataset leaves it empty)
    day = pd.Series(gaps, index=ordered.index).groupby(ordered["user_id"].to_numpy()).cumsum()
    last_day = day.groupby(ordered["user_id"].to_numpy()).transform("max")
    seconds = (ANCHOR_DAY.timestamp() + (day - last_day).to_numpy() * DAY_S
               + ordered["order_hour_of_day"].to_numpy() * 3600.0)
    # Never before the previous order of the same user (same day, earlier hour): one minute after it instead.
    # s'[k] = max(s[k], s'[k-1] + step) over a user's k-th order is step*k + cummax(s[k] - step*k).
    users = ordered["user_id"].to_numpy()
    k = pd.Series(np.ones(len(ordered)), index=ordered.index).groupby(users).cumsum().to_numpy() - 1
    shifted = pd.Series(seconds - SAME_DAY_STEP_S * k).groupby(users).cummax().to_numpy()
    return pd.Series(shifted + SAME_DAY_STEP_S * k, index=ordered.index).reindex(orders.index).to_numpy()


def _check_orders(orders: pd.DataFrame) -> None:
    errors: list[DataError] = []
    duplicated = np.flatnonzero(orders["order_id"].duplicated().to_numpy())
    errors += [DataError("orders.csv", int(r) + 2, "order_id", f"{orders['order_id'].iloc[r]} appears twice")
               for r in duplicated[:3]]
    twice = np.flatnonzero(orders.duplicated(["user_id", "order_number"]).to_numpy())
    errors += [DataError("orders.csv", int(r) + 2, "order_number",
                         f"user {orders['user_id'].iloc[r]} has order number {orders['order_number'].iloc[r]} twice")
               for r in twice[:3]]
    hours = np.flatnonzero(~orders["order_hour_of_day"].between(0, 23).to_numpy())
    errors += [DataError("orders.csv", int(r) + 2, "order_hour_of_day",
                         f"{orders['order_hour_of_day'].iloc[r]} is not an hour 0-23") for r in hours[:3]]
    if errors:
        raise DataValidationError(errors)


def _catalog(source: Path, product_ids: np.ndarray) -> pd.DataFrame:
    """Items for ``product_ids``; named and categorised when products.csv (and aisles/departments) are there."""
    items = pd.DataFrame({"product_id": product_ids})
    title = pd.Series("", index=items.index)
    aisle = pd.Series("", index=items.index)
    department = pd.Series("", index=items.index)
    if (source / "products.csv").is_file():
        products = read_source_csv(source / "products.csv", {"product_id": "int", "product_name": "text",
                                                              "aisle_id": "int", "department_id": "int"},
                                   optional=frozenset({"aisle_id", "department_id"}))
        products = products.drop_duplicates("product_id").set_index("product_id")
        title = items["product_id"].map(products["product_name"]).fillna("")
        for name, target in (("aisle", "aisle"), ("department", "department")):
            path = source / f"{name}s.csv"
            if path.is_file():
                names = read_source_csv(path, {f"{name}_id": "int", name: "text"}).set_index(f"{name}_id")[name]
                looked_up = items["product_id"].map(products[f"{name}_id"]).map(names).fillna("")
                if target == "aisle":
                    aisle = looked_up
                else:
                    department = looked_up
    described = [", ".join(part for part in pair if part) for pair in zip(aisle, department, strict=True)]
    return pd.DataFrame({"item_id": items["product_id"].astype(str), "merchant_id": MERCHANT_ID,
                         "title": title.astype(str).to_numpy(), "category": aisle.astype(str).to_numpy(),
                         "description": described})


def import_instacart(source: Path, out: Path) -> ImportSummary:
    """Write the Instacart files in ``source`` as a data directory at ``out`` (atomically, as Parquet).

    Raises:
        DataValidationError: a file is missing, unreadable or has a bad value (file, line and column named).
        FileExistsError: ``out`` holds something other than a generated data set.
    """
    source, out = Path(source), Path(out)
    check_replaceable(out)
    line_files = sorted(p for p in source.glob("*.csv") if _ORDER_LINES.fullmatch(p.name)) if source.is_dir() else []
    if not line_files:
        raise DataValidationError([DataError("order_products__prior.csv", None, None,
                                             f"no order_products__*.csv file in {source}")])
    orders = read_source_csv(source / "orders.csv", ORDERS, optional=frozenset({"eval_set", "order_dow"}))
    _check_orders(orders)
    lines = []
    for path in line_files:
        part = read_source_csv(path, LINES, optional=frozenset({"add_to_cart_order", "reordered"}))
        errors = unknown_references(part, "order_id", pd.Index(orders["order_id"]), path.name, "orders.csv")
        if errors:
            raise DataValidationError(errors)
        lines.append(part)
    order_lines = pd.concat(lines, ignore_index=True)
    orders = orders.assign(ts=order_times(orders)).set_index("order_id")
    order_lines = order_lines.assign(user_id=order_lines["order_id"].map(orders["user_id"]),
                                     ts=order_lines["order_id"].map(orders["ts"]))
    order_lines = order_lines.sort_values(["ts", "user_id", "add_to_cart_order"], kind="stable")
    items = _catalog(source, np.sort(order_lines["product_id"].unique()))
    interactions = pd.DataFrame({
        "user_id": order_lines["user_id"].astype(str).to_numpy(),
        "item_id": order_lines["product_id"].astype(str).to_numpy(),
        "event_type": "purchase",
        "timestamp": order_lines["ts"].to_numpy(dtype=float),
        "session_id": order_lines["order_id"].astype(str).to_numpy(),
        "quantity": 1.0,
        "add_to_cart_order": order_lines["add_to_cart_order"].to_numpy(),
        "reordered": order_lines["reordered"].to_numpy(),
        "order_dow": order_lines["order_id"].map(orders["order_dow"]).to_numpy(),
    })
    merchants = pd.DataFrame({"merchant_id": [MERCHANT_ID], "name": ["Instacart"], "domain": ["grocery"],
                              "category": ["grocery"]})
    users = pd.DataFrame({"user_id": np.sort(orders["user_id"].unique()).astype(str)})
    timeline = (f"each user's last order on {ANCHOR_DAY.date()} at its hour; earlier orders days_since_prior_order "
                "days before the next; same-day orders at least one minute apart")
    write_dataset_dir(out, {"merchants": merchants, "items": items, "users": users, "interactions": interactions},
                      "source.json", {"generator": GENERATOR, "source": str(source.absolute()),
                                      "files": sorted(p.name for p in source.glob("*.csv")), "timeline": timeline,
                                      "mapping": "one grocery merchant; products -> items (aisle = category); "
                                                 "order lines -> purchases (session_id = order_id)"})
    return ImportSummary(out=out, source=source, users=len(users), orders=int(order_lines["order_id"].nunique()),
                         items=len(items), interactions=len(interactions),
                         named_items=int((items["title"] != "").sum()), timeline=timeline)
