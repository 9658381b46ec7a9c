"""The data directory contract (DESIGN.md §3): schema, loading and validation, the in-memory Dataset, and the
atomic writer that producers (tastebud_training.simulator, tastebud_training.importers) publish through."""

from __future__ import annotations

from tastebud_training.data.dataset import Dataset, ValidationSummary, cut_at, frame_records, summarize
from tastebud_training.data.errors import DataError, DataValidationError
from tastebud_training.data.loader import load_dataset, validate_dir
from tastebud_training.data.schema import DOMAINS, EVENT_TYPES, EVENT_WEIGHTS, POSITIVE_EVENTS

__all__ = [
    "DOMAINS",
    "EVENT_TYPES",
    "EVENT_WEIGHTS",
    "POSITIVE_EVENTS",
    "DataError",
    "DataValidationError",
    "Dataset",
    "ValidationSummary",
    "cut_at",
    "frame_records",
    "load_dataset",
    "summarize",
    "validate_dir",
]
