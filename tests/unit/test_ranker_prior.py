"""The ranker's prior (issue 22): time-decayed "buy again" from the ranker's own features, added to the trees."""

from __future__ import annotations

import numpy as np
import pytest

from tastebud.features import COLUMN, FEATURE_NAMES
from tastebud.ranker_prior import RankerPrior, TreesOverPrior, decayed_purchases, with_prior


def features(rows: list[tuple[float, float, float, float]]) -> np.ndarray:
    """(purchases, days since the last, mean interval days or NaN, log popularity) per candidate."""
    out = np.full((len(rows), len(FEATURE_NAMES)), np.nan, dtype=np.float32)
    for i, (count, since, interval, popularity) in enumerate(rows):
        out[i, COLUMN["user_item_purchases"]] = count
        out[i, COLUMN["days_since_item_purchase"]] = since if count else np.nan
        out[i, COLUMN["user_item_reorder_days"]] = interval
        out[i, COLUMN["log_popularity"]] = popularity
    return out


def test_the_decayed_sum_of_evenly_spaced_purchases() -> None:
    half_life = 30.0
    got = decayed_purchases(features([(4, 3.0, 10.0, 0.0), (1, 60.0, np.nan, 0.0), (0, 0.0, np.nan, 5.0)]),
                            half_life)
    direct = sum(0.5 ** ((3.0 + 10.0 * j) / half_life) for j in range(4))
    assert got[0] == pytest.approx(direct, rel=1e-6)
    assert got[1] == pytest.approx(0.25) and got[2] == 0.0  # two half-lives ago; never bought


def test_the_prior_orders_like_decayed_buy_again_with_popularity_after() -> None:
    prior = RankerPrior(half_life_days=14.0, weight=2.0)
    scores = prior.scores(features([(1, 400.0, np.nan, 1.0),   # bought long ago: still above anything not bought
                                    (3, 2.0, 7.0, 1.0),         # a current habit
                                    (0, 0.0, np.nan, 8.0),      # popular, never bought
                                    (0, 0.0, np.nan, 2.0)]))
    assert np.argsort(-scores).tolist() == [1, 0, 2, 3]
    assert scores[0] > 0 > scores[2] > scores[3] > -2.0


class _Trees:
    version = "trees-v1"

    def score(self, features: np.ndarray) -> np.ndarray:
        return np.arange(features.shape[0], dtype=np.float32)


def test_serving_adds_the_manifests_prior_to_the_trees() -> None:
    block = features([(2, 5.0, 9.0, 1.0), (0, 0.0, np.nan, 3.0)])
    assert with_prior(_Trees(), {"kind": "xgboost"}).score(block).tolist() == [0.0, 1.0]  # trained without a prior
    assert isinstance(with_prior(_Trees(), {"prior": {"half_life_days": 30, "weight": 0.0}}), _Trees)
    ranker = with_prior(_Trees(), {"prior": {"half_life_days": 30, "weight": 1.5}})
    assert isinstance(ranker, TreesOverPrior) and ranker.version == "trees-v1"
    expected = np.arange(2) + RankerPrior(30.0, 1.5).scores(block)
    assert np.allclose(ranker.score(block), expected)
