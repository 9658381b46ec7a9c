"""Kinesis interaction events -> DynamoDB recent history (partial batch responses for failed records)."""

from __future__ import annotations

from tastebud.composition.ingest import deployed_ingest_handler

handler = deployed_ingest_handler()
