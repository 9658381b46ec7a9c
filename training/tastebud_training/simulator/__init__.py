"""The marketplace simulator (`tastebud data generate`): a synthetic city of merchants, items, users with hidden
tastes and their logged sessions, written as a data directory that satisfies tastebud_training.data's contract.

Modules: marketplace (the entry point), catalog, population, event_log, photos, and lexicon (the word lists
names, dishes and products are composed from)."""

from __future__ import annotations

from tastebud_training.simulator.marketplace import SimulationSummary, generate

__all__ = ["SimulationSummary", "generate"]
