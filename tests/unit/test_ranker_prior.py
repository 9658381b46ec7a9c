"""The ranker's prior (issue 22): time-decayed "buy again" from the ranker's own features, added to the trees."""

from __future__ import annotations

import numpy as np
import pytest

from tastebud.features.history import DECAY_HALF_LIVES_DAYS, repeat_contributions
from tastebud.features.history import decayed_purchases as history_decayed_purchases
from tastebud.features.ranker_prior import RankerPrior, TreesOverPrior, decayed_purchases, with_prior
from tastebud.features.schema import COLUMN, FEATURE_NAMES

DAY = 86400.0


def features(rows: list[tuple[float, float]], half_life: float = 30.0) -> np.ndarray:
    """(decayed purchases at ``half_life``, log popularity) per candidate."""
    out = np.full((len(rows), len(FEATURE_NAMES)), np.nan, dtype=np.float32)
    for i, (decayed, popularity) in enumerate(rows):
        out[i, COLUMN[f"decayed_purchases_{half_life:g}d"]] = decayed
        out[i, COLUMN["log_popularity"]] = popularity
    return out


@pytest.mark.parametrize("now", [1_493_596_800.0, 1_765_000_000.0, 2_200_000_000.0])  # 2017, 2025, 2039
def test_the_history_keeps_exact_decayed_counts_at_every_half_life(now: float) -> None:
    ages = np.asarray([0.5, 3.0, 17.0, 40.0, 300.0])
    rows = repeat_contributions(np.ones(ages.size, dtype=bool), now - ages * DAY)
    folded = rows.sum(axis=0, keepdims=True)  # the decay columns fold by addition, in any order
    got = history_decayed_purchases(folded, now)[0]
    for column, half_life in enumerate(DECAY_HALF_LIVES_DAYS):
        assert got[column] == pytest.approx(float(np.sum(0.5 ** (ages / half_life))), rel=1e-9)
    assert np.isfinite(rows).all()


def test_the_prior_reads_the_exact_decayed_count_and_knows_only_the_kept_half_lives() -> None:
    got = decayed_purchases(features([(2.5, 0.0), (np.nan, 1.0)], half_life=60.0), 60.0)
    assert got.tolist() == [2.5, 0.0]  # unknown statistics count as never bought
    with pytest.raises(ValueError, match="45-day"):
        decayed_purchases(features([(1.0, 0.0)]), 45.0)


def test_the_prior_orders_like_decayed_buy_again_with_popularity_after() -> None:
    prior = RankerPrior(half_life_days=14.0, weight=2.0)
    scores = prior.scores(features([(1e-6, 1.0),   # bought long ago: still above anything not bought
                                    (2.4, 1.0),    # a current habit
                                    (0.0, 8.0),    # popular, never bought
                                    (0.0, 2.0)], half_life=14.0))
    assert np.argsort(-scores).tolist() == [1, 0, 2, 3]
    assert scores[0] > 0 > scores[2] > scores[3] > -2.0


class _Trees:
    version = "trees-v1"

    def score(self, features: np.ndarray) -> np.ndarray:
        return np.arange(features.shape[0], dtype=np.float32)


def test_serving_adds_the_manifests_prior_to_the_trees() -> None:
    block = features([(1.7, 1.0), (0.0, 3.0)])
    assert with_prior(_Trees(), {"kind": "xgboost"}).score(block).tolist() == [0.0, 1.0]  # trained without a prior
    assert isinstance(with_prior(_Trees(), {"prior": {"half_life_days": 30, "weight": 0.0}}), _Trees)
    ranker = with_prior(_Trees(), {"prior": {"half_life_days": 30, "weight": 1.5}})
    assert isinstance(ranker, TreesOverPrior) and ranker.version == "trees-v1"
    expected = np.arange(2) + RankerPrior(30.0, 1.5).scores(block)
    assert np.allclose(ranker.score(block), expected)
