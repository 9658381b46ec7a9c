"""Interaction event types and the graded weight of the positive ones: defined once, for every consumer.

Pure Python on purpose: the data contract, the history fold (``tastebud.features.history``), the feature stores, the
event codec and the PySpark ETL job (which receives them as job arguments rendered from here) all read them.
"""

from __future__ import annotations

EVENT_TYPES = ("impression", "view", "click", "add_to_cart", "purchase")
POSITIVE_EVENTS = ("click", "add_to_cart", "purchase")
# Graded relevance of a positive (click 1, add_to_cart 2, purchase 3): training, evaluation and serving.
EVENT_WEIGHTS: dict[str, int] = {"click": 1, "add_to_cart": 2, "purchase": 3}
REPEAT_EVENT = "purchase"  # the event whose repetitions are re-consumption (tastebud.features.history.REPEAT_COLUMNS)
