"""Grocery timing counted in baskets (issue 22): the user's baskets read from the history's statistics."""

from __future__ import annotations

import numpy as np
import pytest

from tastebud.features.basket import BASKET_FEATURES, basket_features, basket_starts
from tastebud.features.history import empty_repeat, fold_keys, repeat_contributions

DAY = 86400.0
F = {name: i for i, name in enumerate(BASKET_FEATURES)}


def history(purchases: dict[str, list[float]]) -> tuple[list[str], np.ndarray]:
    """The folded statistics of each item's purchases (days), as tastebud.features.history folds a log."""
    names = sorted(purchases)
    keys = np.concatenate([[i] * len(purchases[name]) for i, name in enumerate(names)]).astype(np.int64)
    ts = np.concatenate([purchases[name] for name in names]) * DAY
    contributions = repeat_contributions(np.ones(ts.size, dtype=bool), ts)
    _, _, _, repeat = fold_keys(keys, np.ones(ts.size), ts, contributions)
    return names, repeat


def test_baskets_since_rate_due_and_decay_of_each_candidate() -> None:
    # Baskets on days 0, 7, 14 and 21 (plus an item added 10 minutes into the day-7 basket).
    names, repeat = history({"milk": [0, 7, 14, 21], "flour": [7 + 10 / 1440], "eggs": [0, 21], "jam": [14]})
    # Day 7 is seen through flour (milk's day-7 purchase is neither its first nor its last).
    assert (basket_starts(repeat) / DAY).round(3).tolist() == [0, 7.007, 14, 21]
    entry = np.asarray([names.index("milk"), names.index("flour"), names.index("eggs"), -1])
    out = basket_features(repeat, entry, now=25 * DAY)
    milk, flour, eggs, never = out
    assert milk[F["baskets_since_item_purchase"]] == 0 and milk[F["item_basket_rate"]] == 1.0
    assert milk[F["basket_decayed_purchases"]] == pytest.approx(sum(0.9 ** k for k in range(4)), rel=1e-6)
    assert flour[F["baskets_since_item_purchase"]] == 2 and flour[F["item_basket_rate"]] == pytest.approx(1 / 3)
    assert np.isnan(flour[F["item_baskets_due_ratio"]])  # one purchase: no usual gap
    assert flour[F["basket_decayed_purchases"]] == pytest.approx(0.81, rel=1e-6)
    assert eggs[F["item_basket_rate"]] == 0.5 and eggs[F["item_baskets_due_ratio"]] == 0.0
    assert eggs[F["basket_decayed_purchases"]] == pytest.approx(1 + 0.9 ** 3, rel=1e-6)
    assert np.isnan(never[F["baskets_since_item_purchase"]]) and never[F["basket_decayed_purchases"]] == 0.0
    for row in out:  # the user's own rhythm, the same on every candidate
        assert row[F["user_baskets"]] == 4 and row[F["user_basket_gap_days"]] == pytest.approx(7.0)
        assert row[F["days_since_user_basket"]] == pytest.approx(4.0)


def test_a_basket_only_of_items_bought_before_and_after_it_is_not_seen() -> None:
    """The estimate's documented blind spot: day 7 held only milk, bought on days 0 and 14 too."""
    _, repeat = history({"milk": [0, 7, 14], "eggs": [0], "jam": [14]})
    assert (basket_starts(repeat) / DAY).tolist() == [0, 14]


def test_no_purchases_means_no_baskets() -> None:
    out = basket_features(empty_repeat(0), np.asarray([-1, -1]), now=5 * DAY)
    assert (out[:, F["user_baskets"]] == 0).all() and (out[:, F["basket_decayed_purchases"]] == 0).all()
    assert np.isnan(out[:, F["days_since_user_basket"]]).all()
