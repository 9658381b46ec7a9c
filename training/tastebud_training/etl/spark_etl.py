"""Batch ETL (PySpark): the event lake + the catalog -> the data contract's training tables, in Parquet.

The first step of the training state machine (SageMaker Processing on the Spark 3.5 image, ``smspark-submit``;
job definition in ``tastebud_training.sagemaker_jobs``). Self-contained on purpose: the Spark image gets this
one file, not the project. Runs the same in Spark local mode (tests/aws/test_spark_etl.py).

Input
  --lake     interaction events as Firehose writes them from the Kinesis stream (template.yaml ``EventsToLake``):
             objects under ``dt=YYYY-MM-DD/`` (arrival day, UTC), gzip or not (detected by content, not by name),
             each holding JSON records concatenated as Firehose concatenates them: with a newline between them
             when the stream appends a delimiter, with nothing between them when it does not. Every record is
             decoded (``decode_lake_object``); Spark's own JSON reader would keep one record per line, i.e. at
             most one per object without delimiters. Fields as ``POST /v1/events``: event_id, user_id, item_id,
             event_type, timestamp (ISO-8601 or epoch s), session_id, request_id, position, quantity.
             Kinesis/Firehose redeliver records: one row per ``event_id`` is kept.
  --window-days N / --as-of YYYY-MM-DD   only the ``dt=`` partitions from ``as-of - N`` days to ``as-of`` (default
             180 days up to today, UTC) are listed and read, so a night's cost is bounded; 0 reads the whole lake.
  --catalog  the catalog tables of the data contract: merchants, items, users, optional stock (.csv/.parquet)
Output (--out), a data directory that ``tastebud_training.data.load_dataset`` reads:
  merchants.parquet/ items.parquet/ users.parquet/ [stock.parquet/]   the catalog, as Parquet
  interactions.parquet/   deduplicated events, ``timestamp`` in epoch seconds, ordered by (timestamp, event_id)
  derived/positives.parquet/     click/add_to_cart/purchase with their graded weight (1/2/3)
  derived/impressions.parquet/   impressions (hard-negative candidates)
  derived/histories.parquet/     point in time: per positive, the user's previous positives strictly BEFORE
                                 it (most recent first, at most HISTORY_LENGTH item ids) and their weights
  etl/rejects.parquet/           what was not used: undecodable records (gzip, UTF-8, JSON) and events that fail
                                 validation, with their lake object and the reason. Counted, printed, and the job
                                 fails when they exceed --max-rejected-fraction (default 0.01) of the records.
Arguments are plain words (``--event-weights click=1,add_to_cart=2``): smspark-submit runs spark-submit through
a shell (tastebud_training.sagemaker_jobs).
Every step is a distributed Spark operation (dedupe, sort, window), so logs far larger than one machine's
memory work; only the training tables' consumer decides how much it reads.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

HISTORY_LENGTH = 20  # tastebud.features.two_tower.HISTORY_LENGTH
# Event types and weights are not defined here: the job definition passes tastebud.event_types' as arguments
# (--event-types, --event-weights), so the lake is read with the same definitions as every other consumer.
CATALOG_TABLES = ("merchants", "items", "users", "stock")
LAKE_FIELDS = ("event_id", "user_id", "item_id", "event_type", "timestamp", "session_id", "request_id", "position",
               "quantity")
DEFAULT_WINDOW_DAYS = 180
DEFAULT_MAX_REJECTED_FRACTION = 0.01
GZIP_MAGIC = b"\x1f\x8b"
SNIPPET = 200  # characters of a rejected record kept in etl/rejects.parquet
_BETWEEN_RECORDS = re.compile(r"[\s\x00]*")  # Firehose's optional delimiter (newline), and any padding
Record = tuple[str | None, ...]


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


def _field_text(value: Any) -> str | None:
    """A field as text, as Spark's JSON reader gives it for a string schema (numbers keep their JSON form)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _next_record_start(decoder: json.JSONDecoder, text: str, start: int) -> int:
    """The first ``{`` at or after ``start`` that begins a decodable JSON object (resynchronising after a bad
    record), or the end of the text."""
    while (brace := text.find("{", start)) >= 0:
        try:
            decoder.raw_decode(text, brace)
            return brace
        except json.JSONDecodeError:
            start = brace + 1
    return len(text)


def decode_lake_object(content: bytes) -> tuple[list[Record], list[str]]:
    """Every event record of one lake object, whatever Firehose's framing: gzip (one or more members) or plain,
    records concatenated with or without newlines between them. Returns (records as LAKE_FIELDS texts, rejected
    records as "reason: snippet"); nothing is dropped without being returned in one of the two."""
    data = bytes(content)
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:  # truncated or corrupt object
            return [], [f"gzip: {exc}"]
    try:
        text = data.decode("utf-8")
        bad_bytes = False
    except UnicodeDecodeError:
        text, bad_bytes = data.decode("utf-8", errors="replace"), True
    decoder = json.JSONDecoder()  # per call: the C scanner cannot be pickled to the Spark workers
    records: list[Record] = []
    rejected: list[str] = []
    position = 0
    while True:
        position = _BETWEEN_RECORDS.match(text, position).end()  # type: ignore[union-attr]  # always matches
        if position >= len(text):
            break
        try:
            document, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            end = _next_record_start(decoder, text, position + 1)
            rejected.append(f"json: {exc.msg}: {text[position:end][:SNIPPET]}")
            position = end
            continue
        raw = text[position:end]
        position = end
        if not isinstance(document, dict):
            rejected.append(f"json: not an object: {raw[:SNIPPET]}")
        elif bad_bytes and "\ufffd" in raw:
            rejected.append(f"utf-8: invalid bytes: {raw[:SNIPPET]}")
        else:
            records.append(tuple(_field_text(document.get(name)) for name in LAKE_FIELDS))
    return records, rejected


def _lake_rows(path: str, content: bytes) -> Iterator[tuple[str | None, ...]]:
    """Rows (path, reason, *LAKE_FIELDS): reason is None for a decoded record."""
    records, rejected = decode_lake_object(content)
    for record in records:
        yield (path, None, *record)
    for reason in rejected:
        yield (path, reason, *((None,) * len(LAKE_FIELDS)))


def lake_partitions(spark: Any, lake: str, first_day: date | None, last_day: date | None) -> list[str]:
    """The ``dt=YYYY-MM-DD`` folders of the lake within [first_day, last_day] (None: unbounded), listed with
    Hadoop's FileSystem (S3 on SageMaker, local files in tests); other folders are not partitions."""
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(lake)
    filesystem = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not filesystem.exists(root):
        raise FileNotFoundError(f"{lake}: the event lake does not exist")
    partitions = []
    for status in filesystem.listStatus(root):
        name = status.getPath().getName()
        if not (status.isDirectory() and name.startswith("dt=")):
            continue
        try:
            day = date.fromisoformat(name[3:])
        except ValueError:
            continue
        if (first_day is None or day >= first_day) and (last_day is None or day <= last_day):
            partitions.append(str(status.getPath()))
    return sorted(partitions)


def read_lake(spark: Any, partitions: list[str]) -> Any:
    """Decoded lake rows (``reason`` null) and rejected ones, from every object of the given partitions. Each
    object is read whole (Firehose writes at most its buffer size, 64-128 MB, per object) and decoded on the
    executors."""
    from pyspark import cloudpickle
    from pyspark.sql.types import StringType, StructField, StructType

    if __name__ != "__main__":  # imported (tests): ship this module's code to the Python workers, not its name
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    schema = StructType([StructField(name, StringType()) for name in ("path", "reason", *LAKE_FIELDS)])
    objects = (spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(partitions)
               .select("path", "content"))
    return spark.createDataFrame(objects.rdd.flatMap(lambda row: _lake_rows(row[0], row[1])), schema)


def validate_events(records: Any, event_types: tuple[str, ...]) -> tuple[Any, Any]:
    """(valid events with ``timestamp`` as epoch seconds (double) and position/quantity as longs, the invalid
    records as they were decoded)."""
    from pyspark.sql import functions as F

    text = F.col("timestamp")
    epoch = F.when(text.rlike(r"^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$"), text.cast("double")).otherwise(
        F.unix_timestamp(F.to_timestamp(text)).cast("double"))
    parsed = records.withColumn("_epoch", epoch)
    # SQL's three-valued logic: a null event_type makes the test null, which is "invalid" too.
    valid = F.coalesce(F.col("user_id").isNotNull() & F.col("item_id").isNotNull() & F.col("_epoch").isNotNull()
                       & F.col("event_type").isin(*event_types), F.lit(False))
    cleaned = (parsed.where(valid).withColumn("timestamp", F.col("_epoch")).drop("_epoch")
               .withColumn("position", F.col("position").cast("double").cast("long"))
               .withColumn("quantity", F.col("quantity").cast("double").cast("long")))
    return cleaned, parsed.where(~valid).drop("_epoch")


def deduplicate(cleaned: Any) -> Any:
    """One row per ``event_id`` (Kinesis/Firehose redeliver); events without an id are all kept."""
    from pyspark.sql import functions as F

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


class TooManyRejectedRecords(ValueError):
    """More of the lake was unusable than --max-rejected-fraction allows (see etl/rejects.parquet)."""


def run(spark: Any, lake: str, catalog: str, out: str, event_types: tuple[str, ...], event_weights: dict[str, int],
        *, first_day: date | None = None, last_day: date | None = None,
        max_rejected_fraction: float = DEFAULT_MAX_REJECTED_FRACTION) -> dict[str, int]:
    """Write the output tables (module docstring) from the lake's partitions in [first_day, last_day]; returns
    row counts per table and what was rejected (``lake_records``, ``malformed_records``, ``invalid_events``,
    ``duplicate_events``)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

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
    partitions = lake_partitions(spark, lake, first_day, last_day)
    if not partitions:
        raise FileNotFoundError(f"{lake}: no dt= partitions from {first_day or 'the start'} to {last_day or 'today'}")
    rows = read_lake(spark, partitions).persist(StorageLevel.MEMORY_AND_DISK)  # decoded once, counted and used
    try:
        malformed = rows.where(F.col("reason").isNotNull()).select("path", "reason")
        cleaned, invalid = validate_events(rows.where(F.col("reason").isNull()).drop("reason"), event_types)
        rejects = malformed.unionByName(invalid.select(
            "path", F.concat(F.lit("invalid event: "), F.substring(F.to_json(F.struct(*LAKE_FIELDS)), 1, SNIPPET))
            .alias("reason")))
        rejects.write.mode("overwrite").parquet(f"{out}/etl/rejects.parquet")
        counts["malformed_records"] = malformed.count()
        counts["invalid_events"] = invalid.count()
        counts["lake_records"] = rows.count() - counts["malformed_records"]
        rejected = counts["malformed_records"] + counts["invalid_events"]
        seen = counts["lake_records"] + counts["malformed_records"]
        if seen and rejected / seen > max_rejected_fraction:
            raise TooManyRejectedRecords(
                f"{rejected} of {seen} lake records rejected (> {max_rejected_fraction:.2%}); see "
                f"{out}/etl/rejects.parquet")
        interactions = deduplicate(cleaned.drop("path")).orderBy("timestamp", "event_id")
        interactions.write.mode("overwrite").parquet(f"{out}/interactions.parquet")
    finally:
        rows.unpersist()
    counts["interactions"] = spark.read.parquet(f"{out}/interactions.parquet").count()
    counts["duplicate_events"] = counts["lake_records"] - counts["invalid_events"] - counts["interactions"]
    for name, table in derived(spark.read.parquet(f"{out}/interactions.parquet"), event_weights).items():
        table.write.mode("overwrite").parquet(f"{out}/derived/{name}.parquet")
        counts[name] = spark.read.parquet(f"{out}/derived/{name}.parquet").count()
    return counts


def parse_event_weights(text: str) -> dict[str, int]:
    """``click=1,add_to_cart=2,purchase=3`` (shell-safe: no spaces, quotes or braces)."""
    weights: dict[str, int] = {}
    for pair in filter(None, text.split(",")):
        name, separator, weight = pair.partition("=")
        if not separator or not name:
            raise argparse.ArgumentTypeError(f"--event-weights: {pair!r} is not name=weight")
        weights[name] = int(weight)
    return weights


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="event lake + catalog -> training tables (Parquet)")
    parser.add_argument("--lake", required=True)
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--event-types", required=True, help="comma-separated (tastebud.event_types.EVENT_TYPES)")
    parser.add_argument("--event-weights", required=True, type=parse_event_weights,
                        help="name=weight,... e.g. click=1,add_to_cart=2 (EVENT_WEIGHTS)")
    parser.add_argument("--window-days", type=int, default=DEFAULT_WINDOW_DAYS,
                        help=f"read the dt= partitions of the last N days up to --as-of (default "
                             f"{DEFAULT_WINDOW_DAYS}); 0 reads the whole lake")
    parser.add_argument("--as-of", type=date.fromisoformat, default=None,
                        help="last day of the window, YYYY-MM-DD (default: today, UTC)")
    parser.add_argument("--max-rejected-fraction", type=float, default=DEFAULT_MAX_REJECTED_FRACTION,
                        help="fail when more of the lake's records than this are malformed or invalid")
    args = parser.parse_args(argv)
    if args.window_days < 0:
        parser.error("--window-days must be >= 0")
    return args


def main(argv: list[str] | None = None, spark: Any = None) -> int:
    """The job: ``spark`` is created (and stopped) here unless a session is given (tests share one)."""
    args = parse_arguments(argv)
    event_types = tuple(t for t in args.event_types.split(",") if t)
    last_day = args.as_of or datetime.now(UTC).date()
    first_day = last_day - timedelta(days=args.window_days) if args.window_days else None
    own_session = spark is None
    if own_session:
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.appName("tastebud-etl")
        if os.environ.get("TASTEBUD_SPARK_MASTER"):
            builder = builder.master(os.environ["TASTEBUD_SPARK_MASTER"])
        spark = builder.getOrCreate()
    try:
        counts = run(spark, args.lake, args.catalog, args.out, event_types, args.event_weights,
                     first_day=first_day, last_day=last_day, max_rejected_fraction=args.max_rejected_fraction)
    finally:
        if own_session:
            spark.stop()
    print(" ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
