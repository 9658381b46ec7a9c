"""Data directory contract (DESIGN.md §3): loading and validation, the marketplace simulator, real-data import."""

from __future__ import annotations

from tastebud_training.data.dataset import Dataset, ValidationSummary, summarize
from tastebud_training.data.errors import DataError, DataValidationError
from tastebud_training.data.loader import load_dataset, validate_dir
from tastebud_training.data.movielens import ImportSummary, import_movielens_100k
from tastebud_training.data.schema import DOMAINS, EVENT_TYPES, EVENT_WEIGHTS, POSITIVE_EVENTS
from tastebud_training.data.simulator import SimulationSummary, generate

__all__ = [
    "DOMAINS",
    "EVENT_TYPES",
    "EVENT_WEIGHTS",
    "POSITIVE_EVENTS",
    "DataError",
    "DataValidationError",
    "Dataset",
    "ImportSummary",
    "SimulationSummary",
    "ValidationSummary",
    "generate",
    "import_movielens_100k",
    "load_dataset",
    "summarize",
    "validate_dir",
]
