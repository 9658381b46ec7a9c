"""Kinesis interaction events -> DynamoDB recent history (partial batch responses for failed records)."""

from __future__ import annotations

from tastebud.adapters.aws.ingest import create_ingest_handler

handler = create_ingest_handler()
