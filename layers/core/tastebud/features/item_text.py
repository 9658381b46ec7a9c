"""The text an item is embedded from: ONE function for training (the whole catalog) and serving (a new item)."""

from __future__ import annotations

from collections.abc import Iterable

TEXT_FIELDS = ("title", "category", "description")
EMPTY_TEXT = "item"  # what an item with no text at all is embedded as


def item_text(title: str, category: str, description: str = "") -> str:
    """``"title. category. description"``, outer dots and spaces stripped; ``"item"`` when all are empty."""
    return ". ".join((title, category, description)).strip(" .") or EMPTY_TEXT


def item_texts(fields: Iterable[tuple[str, str, str]]) -> list[str]:
    """``item_text`` for each (title, category, description) triple."""
    return [item_text(title, category, description) for title, category, description in fields]
