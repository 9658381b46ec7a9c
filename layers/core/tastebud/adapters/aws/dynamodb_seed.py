"""Seeding the DynamoDB tables from a data directory's rows (``tastebud aws seed``, docs/DEPLOY.md).

  profiles  one item per user, the attributes ``DynamoFeatureStore`` reads: ``age_band`` and ``gender``
            (normalised exactly as training normalises them: stripped, lower case; the two-tower user tower
            embeds them, so a profile without them would be a train/serve skew), ``preferences`` (list of
            stated tastes, lower case), ``home_lat``/``home_lon``, ``created_at``.
There is no catalog table: serving reads the catalog from the live version's ``catalog.npz`` (S3), the ETL
reads the catalog tables from ``s3://<bucket>/training/catalog/``, and stock/merchant state lives in
ElastiCache and OpenSearch.
Writes are ``BatchWriteItem`` of 25 (the API's limit) with ``UnprocessedItems`` retried with backoff, so a
throttled seed completes; seeding twice writes the same items (PutRequest replaces), so it is idempotent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

BATCH = 25


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()


def _number(value: Any) -> dict[str, str] | None:
    if value is None or value == "":
        return None
    number = float(value)
    return None if math.isnan(number) else {"N": str(Decimal(repr(number)))}


def normalised_attribute(value: Any) -> str:
    """age_band / gender as training sees them (snapshot.build_user_table): stripped, lower case."""
    return _text(value).lower()


def preference_list(value: Any) -> list[str]:
    """``;``-separated stated tastes -> sorted unique lower-case terms (snapshot.preference_terms)."""
    return sorted({t.strip().lower() for t in _text(value).split(";") if t.strip()})


def profile_item(user: Mapping[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {"user_id": {"S": _text(user["user_id"])}}
    for name in ("age_band", "gender"):
        if normalised_attribute(user.get(name)):
            item[name] = {"S": normalised_attribute(user.get(name))}
    terms = preference_list(user.get("preferences"))
    if terms:
        item["preferences"] = {"L": [{"S": t} for t in terms]}
    for name in ("home_lat", "home_lon", "created_at"):
        number = _number(user.get(name))
        if number is not None:
            item[name] = number
    return item


def batch_put(client: Any, table: str, items: Iterable[dict[str, Any]], *, attempts: int = 8,
              sleep: Callable[[float], None] = time.sleep) -> int:
    """Put every item (25 per ``BatchWriteItem``); unprocessed items are retried with exponential backoff."""
    written = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal written
        if not batch:
            return
        pending = [{"PutRequest": {"Item": item}} for item in batch]
        for attempt in range(attempts):
            response = client.batch_write_item(RequestItems={table: pending})
            pending = response.get("UnprocessedItems", {}).get(table, [])
            if not pending:
                written += len(batch)
                batch.clear()
                return
            sleep(min(0.05 * 2**attempt, 2.0))
        raise RuntimeError(f"{len(pending)} items of {table} still unprocessed after {attempts} attempts")

    for item in items:
        batch.append(item)
        if len(batch) == BATCH:
            flush()
    flush()
    return written


def seed_profiles(client: Any, table: str, users: Iterable[Mapping[str, Any]], **kwargs: Any) -> int:
    return batch_put(client, table, (profile_item(u) for u in users), **kwargs)
