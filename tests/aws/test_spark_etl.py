"""The batch ETL (PySpark) in Spark local mode on tiny data: lake (JSON Lines by day, with redelivered and
malformed records) + catalog -> Parquet tables that the local loader reads back EQUAL to the original data
directory; the point-in-time histories equal a pandas computation over the loader's interactions."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")

from tastebud.event_types import EVENT_TYPES, EVENT_WEIGHTS
from tastebud_training.data import load_dataset
from tastebud_training.etl import spark_etl

INTERACTION_COLUMNS = ["user_id", "item_id", "event_type", "ts", "session_id", "request_id", "position", "quantity"]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[1]").appName("tastebud-etl-test")
               .config("spark.sql.shuffle.partitions", "2").config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    yield session
    session.stop()


def _value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
        return None
    return value.item() if hasattr(value, "item") else value


def write_lake(interactions: pd.DataFrame, lake: Path) -> None:
    """Firehose's layout: dt=YYYY-MM-DD/ folders of JSON Lines; timestamps alternate ISO-8601 and epoch."""
    days = pd.to_datetime(interactions["ts"], unit="s", utc=True).dt.strftime("%Y-%m-%d")
    for day, part in interactions.groupby(days, sort=True):
        lines = []
        for index, row in part.iterrows():
            ts = int(row["ts"])
            stamp: Any = ts if index % 2 else pd.Timestamp(ts, unit="s", tz="UTC").isoformat()
            record = {"event_id": f"e{index:08d}", "timestamp": stamp,
                      **{k: _value(row[k]) for k in INTERACTION_COLUMNS if k != "ts"}}
            lines.append(json.dumps(record))
        folder = lake / f"dt={day}"
        folder.mkdir(parents=True)
        (folder / "events-1.json").write_text("\n".join(lines) + "\n")
    first = lake / sorted(p.name for p in lake.iterdir())[0] / "events-1.json"
    redelivered = first.read_text().splitlines()[:5]  # Kinesis/Firehose retries
    bad = [json.dumps({"event_id": "bad1", "user_id": "u", "item_id": "i", "event_type": "bogus", "timestamp": 1}),
           json.dumps({"event_id": "bad2", "user_id": "u", "event_type": "click", "timestamp": 1})]
    (first.parent / "events-2.json").write_text("\n".join(redelivered + bad) + "\n")


def test_the_etl_output_loads_equal_to_the_source_data(spark: Any, tiny_data: Path, tmp_path: Path) -> None:
    source = load_dataset(tiny_data)
    lake, catalog, out = tmp_path / "lake", tmp_path / "catalog", tmp_path / "tables"
    write_lake(source.interactions, lake)
    catalog.mkdir()
    for path in tiny_data.iterdir():
        if path.is_file() and path.stem in spark_etl.CATALOG_TABLES:
            shutil.copy(path, catalog / path.name)

    counts = spark_etl.run(spark, str(lake), str(catalog), str(out), EVENT_TYPES, EVENT_WEIGHTS)
    assert counts["interactions"] == len(source.interactions)  # duplicates and malformed records gone
    etl = load_dataset(out)

    pd.testing.assert_frame_equal(etl.interactions[INTERACTION_COLUMNS], source.interactions[INTERACTION_COLUMNS],
                                  check_dtype=False)
    for name in ("merchants", "items", "users"):
        pd.testing.assert_frame_equal(getattr(etl, name), getattr(source, name), check_dtype=False)
    assert (etl.stock is None) == (source.stock is None)

    # Point-in-time histories, recomputed with pandas from the loader's interactions.
    weights = {"click": 1, "add_to_cart": 2, "purchase": 3}
    positives = source.interactions[source.interactions["event_type"].isin(weights)].copy()
    positives["event_id"] = [f"e{i:08d}" for i in positives.index]
    positives = positives.sort_values(["user_id", "ts", "event_id"], kind="stable")
    expected: dict[str, list[str]] = {}
    for _, group in positives.groupby("user_id", sort=False):
        items = group["item_id"].tolist()
        for k, event_id in enumerate(group["event_id"].tolist()):
            expected[event_id] = items[max(0, k - spark_etl.HISTORY_LENGTH):k][::-1]
    histories = pd.read_parquet(out / "derived" / "histories.parquet")
    assert len(histories) == len(positives) == counts["positives"]
    got = {row.event_id: list(row.history_item_ids) for row in histories.itertuples()}
    assert got == expected
    assert any(len(v) == spark_etl.HISTORY_LENGTH for v in got.values())  # the cap is exercised
    impressions = pd.read_parquet(out / "derived" / "impressions.parquet")
    assert len(impressions) == int((source.interactions["event_type"] == "impression").sum())
