"""The next-basket protocol, the baselines of that literature and the paired bootstrap (issue 22), on tiny logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tastebud_training.basket_baselines import DAY_S, choose_half_life, decayed_rankings
from tastebud_training.metrics import paired_bootstrap
from tastebud_training.protocols import positives_with_rows, split_positives


def log(rows: list[tuple[str, str, float, str]]) -> pd.DataFrame:
    """(user, item, day, session) purchases; item ids are catalog rows."""
    return pd.DataFrame({"user_id": [r[0] for r in rows], "item_id": [r[1] for r in rows],
                         "event_type": "purchase", "ts": [int(r[2] * DAY_S) for r in rows],
                         "session_id": [r[3] for r in rows]})


CATALOG = np.array([str(i) for i in range(10)])


def test_next_basket_truth_is_the_first_session_after_the_cutoff() -> None:
    pos = positives_with_rows(log([("u", "1", 1, "a"), ("u", "2", 2, "b"), ("u", "3", 10, "c"), ("u", "4", 10, "c"),
                                   ("u", "5", 12, "d"), ("v", "6", 11, "e"), ("w", "1", 1, "f"), ("w", "7", 3, "")]),
                              CATALOG)
    seen, truth, at, baskets = split_positives(pos, 5 * DAY_S, "next-basket")
    assert truth.to_dict() == {"u": {3, 4}} and at["u"] == 10 * DAY_S  # v: nothing before; w: nothing after
    assert seen["u"] == {1, 2} and baskets["u"] == 2
    _, window, _, _ = split_positives(pos, 5 * DAY_S, "window")
    assert window["u"] == {3, 4, 5}
    with pytest.raises(ValueError, match="unknown protocol"):
        split_positives(pos, 5 * DAY_S, "leave-one-out")


def test_without_sessions_a_basket_is_one_timestamp() -> None:
    frame = log([("u", "1", 1, ""), ("u", "2", 10, ""), ("u", "3", 10, ""), ("u", "4", 11, "")])
    _, truth, _, baskets = split_positives(positives_with_rows(frame, CATALOG), 5 * DAY_S, "next-basket")
    assert truth["u"] == {2, 3} and baskets["u"] == 1


def test_decay_ranks_a_recent_habit_above_an_old_one() -> None:
    pos = positives_with_rows(log([("u", "1", d, f"o{d}") for d in (1, 2, 3, 4)]
                                  + [("u", "2", d, f"n{d}") for d in (90, 95)]), CATALOG)
    assert decayed_rankings(pos, 100 * DAY_S, 7.0)["u"].tolist() == [2, 1]  # 2 recent buys beat 4 old ones
    assert decayed_rankings(pos, 100 * DAY_S, 10_000.0)["u"].tolist() == [1, 2]  # ~no decay: counts decide


def test_the_half_life_is_chosen_on_the_training_period() -> None:
    """Users bought item A every 5 days for 150 days, then switched to B: the next basket (inner split, ~day 180)
    holds B, which a short half-life ranks first and a long one second (after the 30 As)."""
    rows = []
    for user in range(20):
        for day in range(0, 200, 5):
            rows.append((f"u{user}", str(user % 5 if day < 150 else 5 + user % 5), day, f"{user}-{day}"))
    pos = positives_with_rows(log(rows), CATALOG)
    best, scores = choose_half_life(pos, "next-basket", np.arange(10))
    assert best <= 14 and scores["7"] == pytest.approx(1.0) and scores["480"] < 0.7


def test_paired_bootstrap_interval() -> None:
    rng = np.random.default_rng(3)
    base = rng.uniform(0.2, 0.6, 400)
    same = paired_bootstrap(base, base)
    assert same["relative"] == 0 and same["low"] == 0 and same["high"] == 0
    better = paired_bootstrap(base * 1.1 + rng.normal(0, 0.01, 400), base)
    assert 0 < better["low"] < better["relative"] < better["high"] and abs(better["relative"] - 0.1) < 0.01
    noisy = paired_bootstrap(base + rng.normal(0, 0.3, 400), base)
    assert noisy["low"] < 0 < noisy["high"]  # no real difference: the interval holds 0
    with pytest.raises(ValueError):
        paired_bootstrap(base, base[:10])


class _Users:
    def __init__(self, ids: list[str]) -> None:
        self._ids = ids

    def index_of(self, user_id: str) -> int | None:
        return self._ids.index(user_id) if user_id in self._ids else None


class _Catalog:
    size = 10

    def popular_rows(self, domain: str = "all") -> np.ndarray:
        return np.arange(9, -1, -1)


def test_tifu_knn_weights_recent_baskets_and_borrows_from_neighbours() -> None:
    from tastebud_training.basket_baselines import TifuKnnBaseline

    rows = [("a", "1", 1, "a1"), ("a", "1", 2, "a2"), ("a", "2", 3, "a3"), ("a", "3", 4, "a4"),
            ("b", "1", 1, "b1"), ("b", "2", 2, "b2"), ("b", "3", 3, "b3"), ("b", "4", 4, "b4")]
    pos = positives_with_rows(log(rows), CATALOG)
    users = _Users(["a", "b"])
    alone = TifuKnnBaseline(pos, users, _Catalog(), group_size=2, alpha=1.0)  # type: ignore[arg-type]
    # a's groups [{1}, {1}] and [{2}, {3}]: item 1 = 0.7 (older group) x (0.9 + 1) / 2 = 0.665; in the newer
    # group the later basket weighs more: item 3 = 1 / 2 = 0.5 over item 2 = 0.9 / 2 = 0.45 (the paper's formula)
    assert alone.recommend(0, 3).tolist() == [1, 3, 2]
    blended = TifuKnnBaseline(pos, users, _Catalog(), group_size=2, neighbours=1, alpha=0.5)  # type: ignore[arg-type]
    assert 4 in blended.recommend(0, 4).tolist()  # only b bought 4: it reaches a through the neighbour
    assert alone.recommend(None, 3).tolist() == [9, 8, 7]  # unknown user: popularity
