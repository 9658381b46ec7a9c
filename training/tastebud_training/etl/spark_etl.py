"""Batch ETL (PySpark): the event lake + the catalog -> the data contract's training tables, in Parquet.

The first step of the training state machine (SageMaker Processing on the Spark 3.5 image, ``smspark-submit``;
job definition in ``tastebud_training.sagemaker_jobs``). Self-contained on purpose: the Spark image gets this
one file, not the project. Runs the same in Spark local mode (tests/aws/test_spark_etl.py).

Input
  --lake     interaction events as JSON Lines (optionally gzip), partitioned by day: ``dt=YYYY-MM-DD/``
             (what Firehose writes from the Kinesis stream: template.yaml ``EventsToLake``). Fields as
             ``POST /v1/events``: event_id, user_id, item_id, event_type, timestamp (ISO-8601 or epoch s),
             session_id, request_id, position, quantity. Kinesis/Firehose redeliver records: one row per
             ``event_id`` is kept.
  --catalog  the catalog tables of the data contract: merchants, items, users, optional stock (.csv/.parquet)
Output (--out), a data directory that ``tastebud_training.data.load_dataset`` reads:
  merchants.parquet/ items.parquet/ users.parquet/ [stock.parquet/]   the catalog, as Parquet
  interactions.parquet/   deduplicated events, ``timestamp`` in epoch seconds, ordered by (timestamp, event_id)
  derived/positives.parquet/     click/add_to_cart/purchase with their graded weight (1/2/3)
  derived/impressions.parquet/   impressions (hard-negative candidates)
  derived/histories.parquet/     point in time: per positive, the user's previous positives strictly BEFORE
                                 it (most recent first, at most HISTORY_LENGTH item ids) and their weights
Every step is a distributed Spark operation (dedupe, sort, window), so logs far larger than one machine's
memory work; only the training tables' consumer decides how much it reads.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

HISTORY_LENGTH = 20  # tastebud.two_tower_features.HISTORY_LENGTH
# Event types and weights are not defined here: the job definition passes tastebud.event_types' as arguments
# (--event-types, --event-weights), so the lake is read with the same definitions as every other consumer.
CATALOG_TABLES = ("merchants", "items", "users", "stock")


def _read_table(spark: Any, folder: str, name: str) -> Any | None:
    for suffix, reader in ((".parquet", spark.read.parquet),
                           (".csv", lambda p: spark.read.option("header", True).csv(p))):
        path = f"{folder.rstrip('/')}/{name}{suffix}"
        try:
            return reader(path)
        except Exception as exc:  # AnalysisException: PATH_NOT_FOUND
            if "PATH_NOT_FOUND" not in str(exc) and "Path does not exist" not in str(exc):
                raise
    return None


def events(spark: Any, lake: str, event_types: tuple[str, ...]) -> Any:
    """The lake's events, validated and deduplicated; ``timestamp`` as epoch seconds (double)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    fields = ("event_id", "user_id", "item_id", "event_type", "timestamp", "session_id", "request_id", "position",
              "quantity")
    schema = StructType([StructField(name, StringType()) for name in fields])  # numbers as text: parsed below
    raw = spark.read.schema(schema).option("recursiveFileLookup", "true").json(lake)
    text = F.col("timestamp")
    epoch = F.when(text.rlike(r"^-?[0-9]+(\.[0-9]+)?$"), text.cast("double")).otherwise(
        F.unix_timestamp(F.to_timestamp(text)).cast("double"))
    cleaned = (raw.withColumn("timestamp", epoch)
               .where(F.col("user_id").isNotNull() & F.col("item_id").isNotNull() & F.col("timestamp").isNotNull()
                      & F.col("event_type").isin(*event_types))
               .withColumn("position", F.col("position").cast("double").cast("long"))
               .withColumn("quantity", F.col("quantity").cast("double").cast("long")))
    with_id = cleaned.where(F.col("event_id").isNotNull()).dropDuplicates(["event_id"])
    return with_id.unionByName(cleaned.where(F.col("event_id").isNull()))


def derived(interactions: Any, event_weights: dict[str, int]) -> dict[str, Any]:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    weight = F.create_map(*[x for k, v in event_weights.items() for x in (F.lit(k), F.lit(v))])
    positives = (interactions.where(F.col("event_type").isin(*event_weights))
                 .withColumn("weight", weight[F.col("event_type")].cast("int")))
    impressions = interactions.where(F.col("event_type") == "impression")
    # Strictly before: the positives of the same user with an earlier (timestamp, event_id), newest first.
    before = (Window.partitionBy("user_id").orderBy("timestamp", "event_id")
              .rowsBetween(-HISTORY_LENGTH, -1))
    pairs = F.collect_list(F.struct("timestamp", "event_id", "item_id", "weight")).over(before)
    histories = (positives.withColumn("_past", F.reverse(pairs))
                 .select("event_id", "user_id", "item_id", "timestamp",
                         F.col("_past.item_id").alias("history_item_ids"),
                         F.col("_past.weight").alias("history_weights")))
    return {"positives": positives, "impressions": impressions, "histories": histories}


def run(spark: Any, lake: str, catalog: str, out: str, event_types: tuple[str, ...],
        event_weights: dict[str, int]) -> dict[str, int]:
    """Write the output tables (module docstring); returns row counts per table."""
    counts: dict[str, int] = {}
    out = out.rstrip("/")
    for name in CATALOG_TABLES:
        table = _read_table(spark, catalog, name)
        if table is None:
            if name != "stock":
                raise FileNotFoundError(f"{catalog}: no {name}.parquet or {name}.csv")
            continue
        table.write.mode("overwrite").parquet(f"{out}/{name}.parquet")
        counts[name] = table.count()
    interactions = events(spark, lake, event_types).orderBy("timestamp", "event_id")
    interactions.write.mode("overwrite").parquet(f"{out}/interactions.parquet")
    counts["interactions"] = spark.read.parquet(f"{out}/interactions.parquet").count()
    for name, table in derived(spark.read.parquet(f"{out}/interactions.parquet"), event_weights).items():
        table.write.mode("overwrite").parquet(f"{out}/derived/{name}.parquet")
        counts[name] = spark.read.parquet(f"{out}/derived/{name}.parquet").count()
    return counts


def main(argv: list[str] | None = None) -> int:
    from pyspark.sql import SparkSession

    parser = argparse.ArgumentParser(description="event lake + catalog -> training tables (Parquet)")
    parser.add_argument("--lake", required=True)
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--event-types", required=True, help="comma-separated (tastebud.event_types.EVENT_TYPES)")
    parser.add_argument("--event-weights", required=True, help='JSON, e.g. {"click": 1} (EVENT_WEIGHTS)')
    args = parser.parse_args(argv)
    event_types = tuple(t for t in args.event_types.split(",") if t)
    event_weights = {str(k): int(v) for k, v in json.loads(args.event_weights).items()}
    builder = SparkSession.builder.appName("tastebud-etl")
    if os.environ.get("TASTEBUD_SPARK_MASTER"):
        builder = builder.master(os.environ["TASTEBUD_SPARK_MASTER"])
    spark = builder.getOrCreate()
    try:
        counts = run(spark, args.lake, args.catalog, args.out, event_types, event_weights)
    finally:
        spark.stop()
    print(" ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
