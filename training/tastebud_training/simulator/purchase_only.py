"""The purchase-only variant of a simulated marketplace: the shape of a real grocery order log.

Real logs are rarely complete (DESIGN.md §3): often all there is are orders. This variant keeps, from one
full simulation, only what such a log has, and no more than the data contract requires:

* interactions: purchase events only (user_id, item_id, event_type, timestamp, quantity); no impressions,
  views, clicks, carts, sessions or request ids;
* items: item_id, merchant_id, an empty title, category and price, created_at; no description, no images;
* merchants: merchant_id, an empty name, domain, category; no locations;
* users: user_id only (no profile, preferences or home); no stock table.

With ``single_merchant`` it is one grocery store's log: only grocery products and their purchases, and a
product that the simulated city sells in several supermarkets (same title) becomes one item, with all its
purchases, since a single store lists each product once. Categories stay: a real store's catalog has its
departments even where it has no usable text.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

STORE_ID = "store"
PURCHASE_COLUMNS = ["user_id", "item_id", "event_type", "timestamp", "quantity"]


def purchase_only_tables(tables: Mapping[str, pd.DataFrame], *, single_merchant: bool) -> dict[str, pd.DataFrame]:
    """The purchase-only tables derived from a full simulation's ``tables`` (merchants, items, users,
    interactions[, stock]); the result has no stock table."""
    merchants, items = tables["merchants"], tables["items"]
    interactions = tables["interactions"]
    purchases = interactions.loc[interactions["event_type"] == "purchase", PURCHASE_COLUMNS]
    if single_merchant:
        merchants, items, purchases = _one_grocery_store(merchants, items, purchases)
    else:
        merchants = merchants[["merchant_id", "domain", "category"]].assign(name="")
    items = items[["item_id", "merchant_id", "category", "price", "created_at"]].assign(title="")
    return {
        "merchants": merchants[["merchant_id", "name", "domain", "category"]].reset_index(drop=True),
        "items": items[["item_id", "merchant_id", "title", "category", "price", "created_at"]].reset_index(drop=True),
        "users": tables["users"][["user_id"]].reset_index(drop=True),
        "interactions": purchases.sort_values("timestamp", kind="stable").reset_index(drop=True),
    }


def _one_grocery_store(merchants: pd.DataFrame, items: pd.DataFrame,
                       purchases: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    grocers = merchants.loc[merchants["domain"] == "grocery", "merchant_id"]
    products = items[items["merchant_id"].isin(grocers)].sort_values("item_id", kind="stable")
    if products.empty:
        raise ValueError("the simulation has no grocery products to build a single store from (more --items)")
    # The same product (title) at several supermarkets becomes one item: the smallest item_id names it.
    canonical = products.groupby("title", sort=False)["item_id"].transform("first")
    by_product = products.assign(product_id=canonical).groupby("product_id", sort=True)
    catalog = pd.DataFrame({
        "category": by_product["category"].first(),
        "price": by_product["price"].median(),  # stores price the same product a little differently
        "created_at": by_product["created_at"].min(),  # listed from the first store that sold it
    }).rename_axis("item_id").reset_index().assign(merchant_id=STORE_ID)
    product_of = pd.Series(canonical.to_numpy(), index=products["item_id"].to_numpy())
    bought = purchases[purchases["item_id"].isin(product_of.index)]
    bought = bought.assign(item_id=bought["item_id"].map(product_of))
    store = pd.DataFrame({"merchant_id": [STORE_ID], "name": [""], "domain": ["grocery"], "category": ["supermarket"]})
    return store, catalog, bought
