"""The batch ETL (PySpark) in Spark local mode on tiny data: a lake shaped as Firehose writes it (gzip objects, records
concatenated with and without a newline between them, redelivered, invalid and malformed records) + catalog ->
Parquet tables that the local loader reads back EQUAL to the original data directory (every event arrives); the
point-in-time histories equal a pandas computation over the loader's interactions. The job's own arguments, as
smspark-submit's shell delivers them, read only the window's ``dt=`` partitions."""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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


def firehose_objects(records: list[str], folder: Path, name: str) -> None:
    """``records`` as Firehose delivers them into one ``dt=`` folder: several objects, gzip or not, the records of
    each concatenated with NO delimiter (Firehose's default) or with a newline (AppendDelimiterToRecord)."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = [records[i::4] for i in range(4)]
    (folder / f"{name}-0.gz").write_bytes(gzip.compress("".join(parts[0]).encode()))  # no delimiter
    (folder / f"{name}-1.gz").write_bytes(gzip.compress("".join(r + "\n" for r in parts[1]).encode()))
    # Two gzip members in one object, and gzip content without the .gz name.
    half = len(parts[2]) // 2
    (folder / f"{name}-2").write_bytes(gzip.compress("".join(parts[2][:half]).encode())
                                       + gzip.compress("".join(parts[2][half:]).encode()))
    (folder / f"{name}-3").write_text("".join(parts[3]))  # uncompressed, no delimiter


def event_records(interactions: pd.DataFrame) -> dict[str, list[str]]:
    """Compact JSON records (as tastebud.event_codec writes them) per day; timestamps alternate ISO-8601 and epoch."""
    days = pd.to_datetime(interactions["ts"], unit="s", utc=True).dt.strftime("%Y-%m-%d")
    by_day: dict[str, list[str]] = {}
    for day, part in interactions.groupby(days, sort=True):
        records = []
        for index, row in part.iterrows():
            ts = int(row["ts"])
            stamp: Any = ts if index % 2 else pd.Timestamp(ts, unit="s", tz="UTC").isoformat()
            record = {"event_id": f"e{index:08d}", "timestamp": stamp,
                      **{k: _value(row[k]) for k in INTERACTION_COLUMNS if k != "ts"}}
            records.append(json.dumps({k: v for k, v in record.items() if v is not None}, separators=(",", ":")))
        by_day[str(day)] = records
    return by_day


INVALID = [json.dumps({"event_id": "bad1", "user_id": "u", "item_id": "i", "event_type": "bogus", "timestamp": 1}),
           json.dumps({"event_id": "bad2", "user_id": "u", "event_type": "click", "timestamp": 1})]
MALFORMED = '{"event_id":"cut","user_id":"u","item_id":"i","event_ty'  # a record cut short


def write_lake(interactions: pd.DataFrame, lake: Path) -> None:
    """Firehose's layout: dt=YYYY-MM-DD/ folders of objects (firehose_objects); the first day also gets
    redelivered records (Kinesis/Firehose retries), invalid events and a malformed record between good ones."""
    by_day = event_records(interactions)
    first = min(by_day)
    for day, records in by_day.items():
        firehose_objects(records, lake / f"dt={day}", "EventsToLake-1")
    redelivered = by_day[first][:5]
    retry = [redelivered[0], MALFORMED, *redelivered[1:], *INVALID]
    (lake / f"dt={first}" / "EventsToLake-2.gz").write_bytes(gzip.compress("".join(retry).encode()))


def test_the_etl_output_loads_equal_to_the_source_data(spark: Any, tiny_data: Path, tmp_path: Path) -> None:
    source = load_dataset(tiny_data)
    lake, catalog, out = tmp_path / "lake", tmp_path / "catalog", tmp_path / "tables"
    write_lake(source.interactions, lake)
    catalog.mkdir()
    for path in tiny_data.iterdir():
        if path.is_file() and path.stem in spark_etl.CATALOG_TABLES:
            shutil.copy(path, catalog / path.name)

    counts = spark_etl.run(spark, str(lake), str(catalog), str(out), EVENT_TYPES, EVENT_WEIGHTS)
    assert counts["interactions"] == len(source.interactions)  # every event arrives; duplicates and bad ones gone
    assert (counts["malformed_records"], counts["invalid_events"], counts["duplicate_events"]) == (1, 2, 5)
    rejects = pd.read_parquet(out / "etl" / "rejects.parquet")
    assert len(rejects) == 3 and rejects["path"].str.contains("EventsToLake-2.gz").all()
    assert rejects["reason"].str.startswith("json: ").sum() == 1
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


def test_every_framing_of_a_lake_object_decodes_and_bad_records_are_returned() -> None:
    good = [json.dumps({"event_id": f"e{i}", "user_id": "u", "item_id": f"i{i}", "event_type": "click",
                        "timestamp": 1.7e9 + i, "position": i}, separators=(",", ":")) for i in range(4)]
    for framing in ("".join(good), "\n".join(good) + "\n", "\r\n".join(good), " ".join(good)):
        for content in (framing.encode(), gzip.compress(framing.encode()),
                        gzip.compress(framing[:10].encode()) + gzip.compress(framing[10:].encode())):
            records, rejected = spark_etl.decode_lake_object(content)
            assert [r[0] for r in records] == ["e0", "e1", "e2", "e3"] and not rejected
    records, _ = spark_etl.decode_lake_object(good[0].encode())
    assert records[0] == ("e0", "u", "i0", "click", "1700000000.0", None, None, "0", None)
    # A cut record between good ones costs that record only, framed or not; so does a JSON value that is no object.
    records, rejected = spark_etl.decode_lake_object((good[0] + MALFORMED + good[1] + "[1,2]\n" + good[2]).encode())
    assert [r[0] for r in records] == ["e0", "e1", "e2"] and len(rejected) == 2
    assert rejected[0].startswith("json: ") and MALFORMED[:20] in rejected[0]
    records, rejected = spark_etl.decode_lake_object(gzip.compress(good[0].encode())[:-9])  # truncated object
    assert records == [] and rejected[0].startswith("gzip: ")
    records, rejected = spark_etl.decode_lake_object(good[0].encode() + b'{"event_id":"\xff"}' + good[1].encode())
    assert [r[0] for r in records] == ["e0", "e1"] and rejected[0].startswith("utf-8: ")


def test_the_job_arguments_as_smspark_submits_shell_delivers_them_read_only_the_window(
        spark: Any, tiny_data: Path, tmp_path: Path) -> None:
    """The rendered ContainerArguments through smspark-submit's join-and-shell (the older, unquoted join), then
    the ETL's main() with exactly those arguments; s3://<bucket>/ is a local folder here."""
    from container_contracts import BUCKET, app_arguments, rendered_jobs, run_in_shell, smspark_submit_command

    from tastebud_training.sagemaker_jobs import LAKE_WINDOW_DAYS

    application = rendered_jobs()[0]["etl"]["AppSpecification"]
    entrypoint = application["ContainerEntrypoint"]
    command = smspark_submit_command([*entrypoint[1:], *application["ContainerArguments"]], quote=False)
    arguments = app_arguments(run_in_shell(command, tmp_path / "bin"), entrypoint[1])
    bucket = tmp_path / BUCKET
    local = [a.replace(f"s3://{BUCKET}/", f"{bucket.as_uri()}/") for a in arguments]

    catalog = Path(local[local.index("--catalog") + 1].removeprefix("file://"))
    catalog.mkdir(parents=True)
    for path in tiny_data.iterdir():
        if path.is_file() and path.stem in spark_etl.CATALOG_TABLES:
            shutil.copy(path, catalog / path.name)
    lake = Path(local[local.index("--lake") + 1].removeprefix("file://"))
    today = datetime.now(UTC).date()
    ages = {0: 40, 3: 30, LAKE_WINDOW_DAYS: 20, LAKE_WINDOW_DAYS + 1: 50, 400: 60}  # days ago: events
    first = 0
    for age, count in ages.items():
        records = [json.dumps({"event_id": f"a{age}-{i}", "user_id": f"u{i % 7}", "item_id": f"i{i}",
                               "event_type": "click", "timestamp": 1.7e9 + first + i}) for i in range(count)]
        firehose_objects(records, lake / f"dt={today - timedelta(days=age)}", "EventsToLake-1")
        first += count
    (lake / "dt=not-a-day").mkdir()  # not a partition: ignored

    assert spark_etl.main(local, spark=spark) == 0
    out = Path(local[local.index("--out") + 1].removeprefix("file://"))
    interactions = pd.read_parquet(out / "interactions.parquet")
    in_window = {f"a{age}-{i}" for age, count in ages.items() if age <= LAKE_WINDOW_DAYS for i in range(count)}
    assert set(interactions["event_id"]) == in_window  # older partitions were never read


def test_a_lake_with_too_many_unusable_records_fails_the_job_and_keeps_them(spark: Any, tmp_path: Path,
                                                                            tiny_data: Path) -> None:
    lake, catalog, out = tmp_path / "lake", tmp_path / "catalog", tmp_path / "tables"
    catalog.mkdir()
    for path in tiny_data.iterdir():
        if path.is_file() and path.stem in spark_etl.CATALOG_TABLES:
            shutil.copy(path, catalog / path.name)
    good = [json.dumps({"event_id": f"g{i}", "user_id": "u", "item_id": "i", "event_type": "click", "timestamp": i})
            for i in range(98)]
    firehose_objects([*good, MALFORMED, INVALID[0]], lake / "dt=2026-01-02", "EventsToLake-1")
    with pytest.raises(spark_etl.TooManyRejectedRecords, match="2 of 100 lake records rejected"):
        spark_etl.run(spark, str(lake), str(catalog), str(out), EVENT_TYPES, EVENT_WEIGHTS)
    assert len(pd.read_parquet(out / "etl" / "rejects.parquet")) == 2  # kept for whoever looks into it
    counts = spark_etl.run(spark, str(lake), str(catalog), str(out), EVENT_TYPES, EVENT_WEIGHTS,
                           max_rejected_fraction=0.05)
    assert counts["interactions"] == 98
