"""One item-text function for training (DataFrame of the catalog) and serving (a single new item)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tastebud.features.item_text import item_text
from tastebud_training.text_embedding import item_texts


def test_training_texts_are_the_serving_function_row_by_row() -> None:
    items = pd.DataFrame({
        "title": ["Margherita", "", "Oat milk", None, "Pad thai."],
        "category": ["pizza", "sushi", "", "", "thai"],
        "description": ["tomato, mozzarella", "", np.nan, "", " spicy "],
    })
    expected = [item_text("" if pd.isna(t) else t, c, "" if pd.isna(d) else d)
                for t, c, d in zip(items["title"], items["category"], items["description"], strict=True)]
    assert item_texts(items) == expected
    assert expected == ["Margherita. pizza. tomato, mozzarella", "sushi", "Oat milk", "item", "Pad thai.. thai.  spicy"]


def test_description_column_is_optional() -> None:
    items = pd.DataFrame({"title": ["Ramen"], "category": ["noodles"]})
    assert item_texts(items) == [item_text("Ramen", "noodles")] == ["Ramen. noodles"]
