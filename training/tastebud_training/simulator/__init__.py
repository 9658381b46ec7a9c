"""The marketplace simulator (`tastebud data generate`): a synthetic city of merchants, items, users with hidden
tastes and their logged sessions, written as a data directory that satisfies tastebud_training.data's contract.

Modules: marketplace (the entry point), catalog and listings (merchants' menus and shelves), population,
traffic (sessions and the old system's impressions), event_log (users' choices), replenishment, photos,
purchase_only, summary, and lexicon (the word lists names, dishes and products are composed from)."""

from __future__ import annotations

from tastebud_training.simulator.marketplace import generate
from tastebud_training.simulator.summary import SimulationSummary

__all__ = ["SimulationSummary", "generate"]
