"""The stock lookup for stores with no round trip worth overlapping: it runs when its result is asked for."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class DeferredStock:
    """A ``PendingStock`` that calls ``lookup`` in ``result`` (same errors, same timing as a direct call)."""

    def __init__(self, lookup: Callable[[], np.ndarray]) -> None:
        self._lookup = lookup

    def result(self) -> np.ndarray:
        return self._lookup()

    def close(self) -> None:
        """Nothing is held between the start and the result."""
