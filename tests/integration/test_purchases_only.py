"""DESIGN §3: a data set with only purchases (no impressions, views, stock, text, locations, profiles) still
trains, evaluates and serves."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tastebud.composition.local import build_runtime
from tastebud.settings import Settings

from factories import version_config

pytestmark = pytest.mark.slow


def test_purchases_only_data_trains_and_serves(tiny_data: Path, tmp_path: Path) -> None:
    from tastebud_training.data import load_dataset
    from tastebud_training.evaluate import evaluate

    data = tmp_path / "minimal"
    data.mkdir()
    merchants = pd.read_parquet(tiny_data / "merchants.parquet")[["merchant_id", "name", "domain", "category"]]
    items = pd.read_parquet(tiny_data / "items.parquet")[["item_id", "merchant_id", "category"]].assign(title="")
    interactions = pd.read_parquet(tiny_data / "interactions.parquet")
    columns = ["user_id", "item_id", "event_type", "timestamp"]
    purchases = interactions.loc[interactions["event_type"] == "purchase", columns]
    merchants.to_csv(data / "merchants.csv", index=False)
    items.to_csv(data / "items.csv", index=False)
    pd.DataFrame({"user_id": purchases["user_id"].unique()}).to_csv(data / "users.csv", index=False)
    purchases.to_csv(data / "interactions.csv", index=False)

    dataset = load_dataset(data)
    artifacts = tmp_path / "artifacts"
    config = version_config(max_ranker_groups=600)
    report = evaluate(dataset, artifacts, config=config)
    assert report["split"]["test_users"] > 0
    # The version evaluation trained (train() on the data before the split's cutoff) is served: one training for
    # both, as a full `train` runs the same code on the whole log.
    (trained,) = (artifacts / "evaluation").iterdir()
    service = build_runtime(Settings(artifacts=trained, redis_db_path=tmp_path / "s.rdb"))
    try:
        user = str(purchases["user_id"].value_counts().index[0])
        assert len(service.recommend(user, k=10).items) == 10
        assert len(service.recommend("unknown", k=10).items) == 10
    finally:
        service.close()  # stops its embedded Redis: left running, it outlived the test session
