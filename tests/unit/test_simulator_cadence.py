"""`tastebud data generate --cadence`: shoppers re-buy each item on their own cycle and restock what is due."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tastebud_training.data import load_dataset
from tastebud_training.simulator import generate
from tastebud_training.simulator.catalog import DAY, GROCERY, RESTAURANT
from tastebud_training.simulator.replenishment import DUE_WEIGHT, MAX_RESTOCK, Replenishment

SMALL = {"users": 300, "items": 1200, "seed": 5, "days": 45, "progress": False, "images": False}


def _cycles(n_items: int = 50, seed: int = 0) -> Replenishment:
    domain = np.where(np.arange(n_items) % 2 == 0, GROCERY, RESTAURANT)
    return Replenishment.draw(domain, np.random.default_rng(seed))


def test_a_shopper_has_an_own_cycle_per_item_the_same_every_time() -> None:
    cycles = _cycles()
    item = 4
    keys = np.arange(200) * cycles.n_items + item  # 200 shoppers, one item
    mine = cycles.cycle_days(keys)
    assert np.array_equal(mine, cycles.cycle_days(keys))
    assert np.unique(mine).size == keys.size  # personal
    spread = np.std(np.log(mine / cycles.item_cycle_days[item]))
    assert 0.25 < spread < 0.45  # USER_ITEM_SPREAD 0.35


def test_an_item_just_bought_is_unlikely_and_an_overdue_one_likely() -> None:
    cycles = _cycles()
    key = np.array([7 * cycles.n_items + 2])
    assert cycles.utility(key, np.array([0.0]))[0] == 0.0  # never bought: no due term
    cycles.remember(key, np.array([0]))
    cycle_s = cycles.cycle_days(key)[0] * DAY
    just, due, late = (cycles.utility(key, np.array([t]))[0] for t in (3600.0, cycle_s, 3 * cycle_s))
    assert just < -0.9 * DUE_WEIGHT and abs(due) < 1e-6 and late > 0.9 * DUE_WEIGHT


def test_remember_keeps_each_items_latest_purchase() -> None:
    cycles = _cycles()
    cycles.remember(np.array([5, 3, 5]), np.array([100, 50, 300]))
    cycles.remember(np.array([3, 9]), np.array([20, 70]))
    assert cycles.last_keys.tolist() == [3, 5, 9] and cycles.last_ts.tolist() == [50, 300, 70]


def test_a_restock_buys_what_is_due_first_and_at_most_the_cap() -> None:
    cycles = _cycles(n_items=40)
    rng = np.random.default_rng(1)
    keys = np.arange(40, dtype=np.int64)  # shopper 0 bought all 40 items, at various times
    now = 100 * DAY
    cycles.remember(keys, (now - rng.uniform(0.1, 60, keys.size) * DAY).astype(np.int64))
    owner = np.zeros(keys.size, dtype=np.int64)
    picked_owner, picked = cycles.restock(keys, owner, np.full(keys.size, now, float), rng.random(keys.size))
    due = cycles.due(keys, np.full(keys.size, now, float))
    assert 1 <= picked.size <= MAX_RESTOCK and set(picked) <= set(keys) and (picked_owner == 0).all()
    assert np.median(due[picked]) > np.median(due)
    # A draw that buys nothing still buys the most due item.
    _, only = cycles.restock(keys, owner, np.full(keys.size, now, float), np.ones(keys.size))
    assert only.tolist() == [keys[np.argmax(due)]]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cadence")
    generate(root / "plain", **SMALL)
    generate(root / "cadence", cadence=True, **SMALL)
    return root / "plain", root / "cadence"


def _grocery_purchases(directory: Path) -> pd.DataFrame:
    data = load_dataset(directory)
    grocery = data.merchants.loc[data.merchants["domain"] == "grocery", "merchant_id"]
    items = data.items.loc[data.items["merchant_id"].isin(grocery), "item_id"]
    log = data.interactions
    bought = log[(log["event_type"] == "purchase") & log["item_id"].isin(items)]
    return bought.sort_values("ts").drop_duplicates(["user_id", "item_id", "session_id"])


def test_a_cadence_log_has_weekly_multi_item_grocery_baskets_whose_gaps_follow_cycles(logs: tuple[Path, Path]) -> None:
    plain, cadence = (_grocery_purchases(d) for d in logs)
    baskets = {name: p.groupby("user_id")["session_id"].nunique().median() for name, p in
               (("plain", plain), ("cadence", cadence))}
    sizes = {name: p.groupby("session_id").size().mean() for name, p in (("plain", plain), ("cadence", cadence))}
    assert baskets["cadence"] >= 2 * baskets["plain"] and sizes["cadence"] > 1.3 * sizes["plain"]
    # Re-purchases come when due: gaps between a shopper's purchases of an item are regular, not memoryless.
    gaps = cadence.groupby(["user_id", "item_id"])["ts"].diff().dropna() / DAY
    assert (gaps < 1.0).mean() < 0.15
    truth = json.loads((logs[1] / "ground_truth.json").read_text())
    assert truth["choice_model"]["replenishment"]["due_slope"] > 0
    assert json.loads((logs[0] / "ground_truth.json").read_text())["choice_model"]["replenishment"] is None


def test_the_same_seed_gives_the_same_cadence_log(logs: tuple[Path, Path], tmp_path: Path) -> None:
    generate(tmp_path / "again", cadence=True, **SMALL)
    assert (tmp_path / "again" / "interactions.parquet").read_bytes() == (logs[1] / "interactions.parquet").read_bytes()
