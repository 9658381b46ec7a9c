"""Public data sets converted into the data directory contract (`tastebud data import ...`)."""

from __future__ import annotations

from tastebud_training.importers.movielens import ImportSummary, import_movielens_100k

__all__ = ["ImportSummary", "import_movielens_100k"]
