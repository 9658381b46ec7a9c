"""FeatureStore on DynamoDB: a user-profiles table and a recent-history table written by the ingest function.

Tables (both on-demand, PITR, SSE; keys are strings):
  profiles  PK ``user_id``; attributes ``age_band``, ``gender`` (the user tower embeds both: without them
            serving would differ from training), ``preferences`` (list of stated tastes), ``home_lat``/
            ``home_lon``. Written by ``tastebud aws seed`` (``dynamodb_seed``), normalised like training.
  history   PK ``user_id``, SK ``item_id``; attributes ``weight`` (graded positives summed: click 1,
            add_to_cart 2, purchase 3), ``last_ts`` (epoch seconds of the last positive), the purchase statistics
            of ``tastebud.features.history.REPEAT_COLUMNS`` (``purchases``, ``first_purchase_ts``, ``last_purchase_ts``,
            ``hour_sin``/``hour_cos``/``weekday_sin``/``weekday_cos`` sums, the time-decayed sums ``decay_<h>d``;
            computed by ``tastebud.features.history``, as training computes them; a row written before a column existed
            reads it as the identity), ``expires_at`` (TTL: history older than the window disappears by itself,
            so "recent" needs no cleanup job).
            Local secondary index ``by_recency`` (PK ``user_id``, SK ``last_ts``) serves "the N most
            recent items of a user" as one Query, newest first.
A request costs one ``GetItem`` + one ``Query`` (issued back to back; ~5-10 ms in-region). Item ids
are mapped to catalog rows through the loaded catalog; ids the catalog does not know are skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from tastebud.adapters.aws.dynamodb_seed import normalised_attribute
from tastebud.catalog import Catalog
from tastebud.circuit import guarded_call
from tastebud.domain import InteractionEvent, UserProfile
from tastebud.features.history import (
    DECAY_COLUMN_NAMES,
    EVENT_WEIGHTS,
    REPEAT_COLUMNS,
    REPEAT_EVENT,
    empty_repeat,
    repeat_contributions,
)

STAGE = "features"
# Attributes summed per event (DynamoDB ``ADD``); first/last purchase times are SET (see HistoryWriter.record).
_ADDED_REPEAT = ("purchases", "hour_sin", "hour_cos", "weekday_sin", "weekday_cos", *DECAY_COLUMN_NAMES)
# DynamoDB numbers have magnitudes in [1e-130, 1e126) or are 0: a decay term this small (a purchase decades before
# tastebud.features.history.DECAY_EPOCH) adds nothing measurable, so it is written as 0.
_SMALLEST_NUMBER = 1e-120
HISTORY_RECENCY_INDEX = "by_recency"


def _float(value: Any, default: float = float("nan")) -> float:
    return default if value is None else float(value)


class DynamoFeatureStore:
    """Profiles + recent history per request. ``client`` is a boto3 ``dynamodb`` (low-level) client.

    ``breaker``: circuit breaker of DynamoDB (``tastebud.circuit``): one request's two reads count once;
    while it is open ``user`` fails at once and the service serves the user as cold.
    """

    def __init__(self, profiles_table: str, history_table: str, catalog: Catalog, *,
                 preference_terms: Sequence[str] = (), max_history: int = 200, client: Any,
                 breaker: Any = None) -> None:
        self._client = client
        self._profiles = profiles_table
        self._history = history_table
        self._catalog = catalog
        self._terms = {term: row for row, term in enumerate(preference_terms)}
        self._max_history = max_history
        self._breaker = breaker

    def user(self, user_id: str) -> UserProfile:
        def read() -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
            profile = self._client.get_item(TableName=self._profiles, Key={"user_id": {"S": user_id}},
                                            ConsistentRead=False).get("Item")
            history = self._client.query(
                TableName=self._history, IndexName=HISTORY_RECENCY_INDEX, ScanIndexForward=False,
                KeyConditionExpression="user_id = :u",
                ExpressionAttributeValues={":u": {"S": user_id}},
                ProjectionExpression=", ".join(("item_id", "weight", "last_ts", *REPEAT_COLUMNS)),
                Limit=self._max_history,
            ).get("Items", [])
            return profile, history

        # botocore ClientError / BotoCoreError (timeouts, throttling) -> DependencyError(features)
        profile, history = guarded_call(self._breaker, STAGE, "dynamodb profile/history of a user", read)
        if profile is None and not history:
            return UserProfile.cold(user_id)
        return self._profile(user_id, profile or {}, history)

    def _profile(self, user_id: str, profile: dict[str, Any], history: list[dict[str, Any]]) -> UserProfile:
        row_of = self._catalog.row_of
        rows, weights, last_ts, repeat = [], [], [], []
        identity = empty_repeat(1)[0]
        for entry in history:
            row = row_of(entry["item_id"]["S"])
            if row is None:
                continue
            rows.append(row)
            weights.append(float(entry.get("weight", {}).get("N", 1)))
            last_ts.append(float(entry.get("last_ts", {}).get("N", 0)))
            repeat.append([float(entry[name]["N"]) if name in entry else identity[i]
                           for i, name in enumerate(REPEAT_COLUMNS)])
        # Most recent first; ties keep the lower row first, as tastebud.features.history orders a history.
        order = np.lexsort((np.asarray(rows, dtype=np.int64), -np.asarray(last_ts, dtype=np.float64)))
        terms = [value["S"] for value in profile.get("preferences", {}).get("L", [])]
        preference_rows = [self._terms[t] for t in terms if t in self._terms]
        return UserProfile(
            user_id=user_id,
            known=True,
            history_rows=np.asarray(rows, dtype=np.int64)[order],
            history_weights=np.asarray(weights, dtype=np.float32)[order],
            history_last_ts=np.asarray(last_ts, dtype=np.float64)[order],
            history_repeat=np.asarray(repeat, dtype=np.float64).reshape(-1, len(REPEAT_COLUMNS))[order],
            preference_rows=np.asarray(preference_rows, dtype=np.int64),
            home_lat=_float(profile.get("home_lat", {}).get("N")),
            home_lon=_float(profile.get("home_lon", {}).get("N")),
            age_band=normalised_attribute(profile.get("age_band", {}).get("S")),
            gender=normalised_attribute(profile.get("gender", {}).get("S")),
        )


class HistoryWriter:
    """The ingest side: folds positive interaction events into the history table (atomic ``ADD``)."""

    def __init__(self, history_table: str, *, ttl_days: float = 180.0, client: Any,
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = history_table
        self._ttl = ttl_days * 86400.0
        self._clock = clock

    def record(self, event: InteractionEvent, *, delivery_id: str | None = None) -> bool:
        """Add one event's weight exactly once; False for non-positives (impression, view) and duplicates.

        Kinesis retries, batch bisection and producer retries re-deliver records, so every write is keyed by
        the event: ``event_id`` when the producer set one, else ``delivery_id`` (the Kinesis record's
        ``eventID`` = shard + sequence number, identical on every redelivery). One ``TransactWriteItems``
        puts a marker item ``(user_id, "#event#<id>")`` (condition: absent; TTL like the history) AND adds the
        weight, so a redelivered event fails the marker's condition and changes nothing. Markers have no
        ``last_ts``, so the ``by_recency`` index the request path queries never sees them.
        """
        weight = EVENT_WEIGHTS.get(event.event_type)
        if weight is None:
            return False
        dedupe = getattr(event, "event_id", None) or delivery_id
        key = {"user_id": {"S": event.user_id}, "item_id": {"S": event.item_id}}
        expires = {"N": str(int(max(event.timestamp, self._clock()) + self._ttl))}
        forward, add_only = _history_updates(event, weight, expires)
        if dedupe is None:  # no identity at all: best effort (the old behaviour)
            self._update(key, forward, add_only)
            return True
        marker = {"Put": {"TableName": self._table, "ConditionExpression": "attribute_not_exists(user_id)",
                          "Item": {"user_id": {"S": event.user_id}, "item_id": {"S": f"#event#{dedupe}"},
                                   "expires_at": expires}}}
        return self._update_once(key, marker, forward, add_only)

    def _update(self, key: dict[str, Any], forward: dict[str, Any], add_only: dict[str, Any]) -> None:
        """``forward`` (moves last_ts), or ``add_only`` when a newer event of the item was written first."""
        from botocore.exceptions import ClientError

        try:
            self._client.update_item(TableName=self._table, Key=key, **forward)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            self._client.update_item(TableName=self._table, Key=key, **add_only)

    def _update_once(self, key: dict[str, Any], marker: dict[str, Any], forward: dict[str, Any],
                     add_only: dict[str, Any]) -> bool:
        """The update and the event's marker in one transaction; False when the marker exists (a redelivery)."""
        from botocore.exceptions import ClientError

        for update in (forward, add_only):
            try:
                self._client.transact_write_items(TransactItems=[
                    marker, {"Update": {"TableName": self._table, "Key": key, **update}}])
                return True
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    return False  # this event was applied before: a redelivery
                if len(reasons) < 2 or reasons[1] != "ConditionalCheckFailed":
                    raise
        return False


def _history_updates(event: InteractionEvent, weight: float,
                     expires: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The history item's two updates: ``forward`` when the event is the item's newest (moves last_ts), and
    ``add_only`` for an event older than one already written (only the weight and counts add)."""
    values = {":w": {"N": str(weight)}, ":ts": {"N": str(Decimal(str(event.timestamp)))}, ":exp": expires}
    added, newest, any_order = ["weight :w"], ["last_ts = :ts", "expires_at = :exp"], []
    if event.event_type == REPEAT_EVENT:
        # The same per-event statistics training folds (tastebud.features.history), summed by DynamoDB.
        row = repeat_contributions(np.ones(1, dtype=bool), np.asarray([event.timestamp]))[0]
        for name in _ADDED_REPEAT:
            value = float(row[REPEAT_COLUMNS.index(name)])
            values[f":{name}"] = {"N": repr(value if abs(value) >= _SMALLEST_NUMBER else 0.0)}
            added.append(f"{name} :{name}")
        # DynamoDB has no MIN/MAX: the newest event sets the last purchase, the first one written sets the
        # first. A purchase delivered after a newer event of the item only fills them when still unset.
        newest += ["last_purchase_ts = :ts", "first_purchase_ts = if_not_exists(first_purchase_ts, :ts)"]
        any_order += ["last_purchase_ts = if_not_exists(last_purchase_ts, :ts)",
                      "first_purchase_ts = if_not_exists(first_purchase_ts, :ts)"]
    forward = {"UpdateExpression": f"ADD {', '.join(added)} SET {', '.join(newest)}",
               "ConditionExpression": "attribute_not_exists(last_ts) OR last_ts < :ts",
               "ExpressionAttributeValues": values}
    # Events can arrive out of order: last_ts only moves forward, the weight and counts always add.
    older_values = {k: v for k, v in values.items() if k != ":exp" and (any_order or k != ":ts")}
    add_only = {"UpdateExpression": f"ADD {', '.join(added)}" + (f" SET {', '.join(any_order)}" if any_order
                                                                   else ""),
                "ExpressionAttributeValues": older_values}
    return forward, add_only
