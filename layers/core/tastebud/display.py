"""What people read next to an item: its title and its merchant's name (the catalog arrays hold ids only).

``tastebud train`` writes ``display.npz`` into each version: ``item_title`` aligned with the catalog's item rows
and ``merchant_name`` aligned with its merchant rows, from the data directory's items/merchants tables. Serving
loads it only when an ``explain`` is asked for (once per version, cached). Versions trained before it existed,
and items added live after the version was built, show an empty title (the page then shows the item id).
Category, price and distance come from the live catalog itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

DISPLAY_FILE = "display.npz"


@dataclass(frozen=True)
class DisplayTable:
    item_title: np.ndarray  # per item row of the version's catalog
    merchant_name: np.ndarray  # per merchant row

    def title(self, row: int) -> str:
        return str(self.item_title[row]) if 0 <= row < self.item_title.size else ""

    def merchant(self, row: int) -> str:
        return str(self.merchant_name[row]) if 0 <= row < self.merchant_name.size else ""

    def save(self, path: Path) -> None:
        np.savez(path, item_title=self.item_title, merchant_name=self.merchant_name)


EMPTY_DISPLAY = DisplayTable(np.zeros(0, dtype="<U1"), np.zeros(0, dtype="<U1"))


@lru_cache(maxsize=4)
def load_display(directory: Path) -> DisplayTable:
    """The version's display table, or an empty one for versions trained before it existed."""
    path = directory / DISPLAY_FILE
    if not path.is_file():
        return EMPTY_DISPLAY
    with np.load(path, allow_pickle=False) as data:
        return DisplayTable(data["item_title"], data["merchant_name"])
