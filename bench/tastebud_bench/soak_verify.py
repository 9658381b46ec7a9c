"""The fault soak's check, once Redis is healthy again: every acknowledged event is a duplicate when replayed (it is
in Redis) and is in the data directory's log; every acknowledged stock state is in Redis; every acknowledged item is
in the live catalog and the log.

One gap is reported, not failed: an event batch acknowledged only by the retry after a killed worker dropped the
connection may be missing from the log (the worker died between the Redis write and the log append; the retry is a
duplicate, and duplicates are not logged again). Redis has it; the next training does not.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from tastebud.adapters.redis_live_state import PREFIX, RedisLiveState
from tastebud.adapters.redis_stock import OUT_OF_STOCK_KEY
from tastebud_bench.faults import EmbeddedRedis
from tastebud_bench.soak_traffic import Ledger, RetryingJsonConnection

EVENT_KEY_PREFIX = PREFIX + "event:"  # the live state's de-duplication key of an applied event


def wait_healthy(url: str, timeout_s: float = 60.0) -> None:
    connection = RetryingJsonConnection(url)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            status, document, _ = connection.request("GET", "/health/ready", None)
            if status == 200 and document["dependencies"]["redis"] == "ok":
                return
            time.sleep(0.2)
    finally:
        connection.close()
    raise TimeoutError(f"{url} did not report redis ok within {timeout_s:g} s")


def verify(redis_db: EmbeddedRedis, data_dir: Path, ledger: Ledger) -> tuple[dict[str, list[str]], int]:
    """What was acknowledged and is missing now, in Redis (read directly) and in the data directory's log; and how
    many events acknowledged by a retry after a dropped connection are missing from the log (see Ledger)."""
    lost: dict[str, list[str]] = {}
    client = redis_db.client()
    try:
        stored_events = {key.decode()[len(EVENT_KEY_PREFIX):]
                         for key in client.scan_iter(match=f"{EVENT_KEY_PREFIX}*", count=1000)}
        lost["events_redis"] = sorted(ledger.events - stored_events)
        out = {m.decode() if isinstance(m, bytes) else str(m) for m in client.smembers(OUT_OF_STOCK_KEY)}
        lost["stock"] = sorted(item for item, in_stock in ledger.stock.items()
                               if in_stock is not None and (item in out) == in_stock)
        _, items, _ = RedisLiveState(client).catalog_state()
        lost["items_redis"] = sorted(item for item in ledger.items if item not in items)
    finally:
        client.close()
    logged = _log_column(data_dir / "interactions", "event_id")
    lost["events_log"] = sorted(ledger.events - ledger.events_on_a_retry - logged)
    lost["items_log"] = sorted(ledger.items - _log_column(data_dir / "items", "item_id"))
    return lost, len(ledger.events_on_a_retry - logged)


def _log_column(directory: Path, column: str) -> set[str]:
    values: set[str] = set()
    for part in sorted(directory.glob("*.csv")):
        with part.open(newline="") as handle:
            values.update(row[column] for row in csv.DictReader(handle))
    return values
