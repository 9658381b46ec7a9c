"""The ingest function's logic: Kinesis interaction events -> DynamoDB recent history.

Malformed records (not JSON, unknown event type ...) are logged and SKIPPED: retrying them can never
succeed and would block the shard. Records whose DynamoDB write fails are reported back as
``batchItemFailures`` (Powertools partial batch response), so Lambda retries only those (the event source
mapping also bisects the batch and sends what keeps failing to an on-failure destination, see template).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from tastebud.adapters.aws.dynamodb_features import HistoryWriter
from tastebud.adapters.local_events import decode_event
from tastebud.errors import BadRequestError

logger = Logger(service="tastebud-ingest")


def record_handler(writer: HistoryWriter, metrics: Any = None) -> Callable[[KinesisStreamRecord], None]:
    def handle(record: KinesisStreamRecord) -> None:
        try:
            event = decode_event(record.kinesis.data_as_bytes())
        except BadRequestError as exc:
            logger.warning("skipping malformed event", extra={"sequence_number": record.kinesis.sequence_number,
                                                              "field": exc.field, "reason": exc.message})
            if metrics is not None:
                metrics.add_metric(name="malformed_events", unit=MetricUnit.Count, value=1)
            return
        # eventID (shard + sequence number) is the same on every redelivery of this record.
        delivery_id = record.event_id or f"{record.event_source_arn}:{record.kinesis.sequence_number}"
        if writer.record(event, delivery_id=delivery_id) and metrics is not None:
            metrics.add_metric(name="history_updates", unit=MetricUnit.Count, value=1)

    return handle


def create_ingest_handler(provide_writer: Callable[[], HistoryWriter], *, metrics: Any = None,
                          tracer: Any = None) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Lambda handler over a Kinesis batch. ``provide_writer`` builds the writer on first use (the composition
    root's, tastebud.composition.ingest); with ``metrics`` (EMF) and ``tracer`` (X-Ray) as deployed."""

    def handle_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
        processor = BatchProcessor(event_type=EventType.KinesisDataStreams)
        response = process_partial_response(event=event, record_handler=record_handler(provide_writer(), metrics),
                                            processor=processor, context=context)
        return dict(response)

    wrapped: Callable[[dict[str, Any], Any], dict[str, Any]] = handle_batch
    if tracer is not None:
        wrapped = tracer.capture_lambda_handler(wrapped, capture_response=False)
    if metrics is not None:
        wrapped = metrics.log_metrics(wrapped)
    return logger.inject_lambda_context(wrapped, clear_state=True)
