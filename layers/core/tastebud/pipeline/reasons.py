"""Human-readable reasons for an item's place, built only for the items actually returned."""

from __future__ import annotations

from tastebud.domain import (
    SOURCE_ANN,
    SOURCE_FRESH,
    SOURCE_HISTORY,
    SOURCE_POPULAR,
    SOURCE_RELATED,
    SOURCE_SIMILAR,
)
from tastebud.pipeline.stages.fairness import FLAG_EXPOSURE_FLOOR, FLAG_MERCHANT_CAP, FLAG_MOVED_UP, FLAG_NEW_MERCHANT

_SOURCE_REASONS = (
    (SOURCE_FRESH, "new on the menu"),
    (SOURCE_HISTORY, "you ordered this before"),
    (SOURCE_RELATED, "often ordered with your usuals"),
    (SOURCE_SIMILAR, "people who buy your usuals buy this"),
    (SOURCE_ANN, "similar to what you like"),
    (SOURCE_POPULAR, "popular right now"),
)
_FLAG_REASONS = (
    (FLAG_NEW_MERCHANT, "boosted: new merchant"),
    (FLAG_MOVED_UP, "moved up: diversity and merchant fairness"),
    (FLAG_MERCHANT_CAP, "moved down: per-merchant cap"),
    (FLAG_EXPOSURE_FLOOR, "shown for a fair share of new and smaller merchants"),
)


def reasons_for(sources: int, flags: int) -> list[str]:
    return [text for bit, text in _SOURCE_REASONS if sources & bit] + [text for bit, text in _FLAG_REASONS
                                                                        if flags & bit]
