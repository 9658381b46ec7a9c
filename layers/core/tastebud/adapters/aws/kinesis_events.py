"""EventSink on Kinesis Data Streams: ``PutRecords`` in batches of <= 500, partition key = user id (one user's
events stay ordered on one shard), failed records retried with full-jitter backoff.

PutRecords is not all-or-nothing: a 200 response may carry ``FailedRecordCount`` > 0 with per-record
``ErrorCode`` (``ProvisionedThroughputExceededException``, ``InternalFailure``). Only those records are
resent; after the last attempt the rest raise DependencyError naming how many were lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tastebud.adapters.aws.retry import RetryPolicy
from tastebud.adapters.local_events import encode_event
from tastebud.domain import InteractionEvent
from tastebud.errors import DependencyError

MAX_RECORDS = 500  # PutRecords limit per call (and 5 MiB; our events are ~200 bytes)
STAGE = "events"


class KinesisEventSink:
    def __init__(self, stream_name: str, *, client: Any, retry: RetryPolicy | None = None) -> None:
        self._client = client
        self._stream = stream_name
        self._retry = retry or RetryPolicy(attempts=4, base_delay=0.05, max_delay=1.0)

    def put(self, events: Sequence[InteractionEvent]) -> None:
        for start in range(0, len(events), MAX_RECORDS):
            self._put_batch([{"Data": encode_event(e), "PartitionKey": e.user_id}
                             for e in events[start:start + MAX_RECORDS]])

    def _put_batch(self, records: list[dict[str, Any]]) -> None:
        pending = records
        last_error = ""
        for attempt in range(self._retry.attempts):
            if attempt:
                self._retry.sleep(self._retry.delay(attempt - 1))
            try:
                response = self._client.put_records(StreamName=self._stream, Records=pending)
            except Exception as exc:  # whole-call failure (throttled API, network): resend everything pending
                last_error = f"{type(exc).__name__}: {exc}"
                continue
            if not response.get("FailedRecordCount"):
                return
            results = response["Records"]
            failed = [(record, result) for record, result in zip(pending, results, strict=True)
                      if "ErrorCode" in result]
            last_error = f"{failed[0][1]['ErrorCode']}: {failed[0][1].get('ErrorMessage')}"
            pending = [record for record, _ in failed]
        raise DependencyError(STAGE, f"kinesis {self._stream}: {len(pending)} of {len(records)} records not "
                                     f"written after {self._retry.attempts} attempts ({last_error})")
