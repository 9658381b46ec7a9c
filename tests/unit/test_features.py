"""Ranker features: hand-computed values for repeat, affinity, price, distance and missing data."""

from __future__ import annotations

import numpy as np
import pytest

from tastebud.domain import SOURCE_ANN, SOURCE_HISTORY, Candidates, UserProfile
from tastebud.features.ranker_features import haversine_km, ranker_features
from tastebud.features.schema import FEATURE_NAMES

from factories import NOW, context, make_catalog

F = {name: i for i, name in enumerate(FEATURE_NAMES)}


def features_for(user: UserProfile, rows: list[int], **ctx: object) -> np.ndarray:
    catalog = make_catalog(12)
    candidates = Candidates(rows=np.asarray(rows), retrieval_scores=np.asarray([0.9, np.nan, 0.5][: len(rows)],
                                                                                 dtype=np.float32),
                            sources=np.asarray([SOURCE_ANN, SOURCE_HISTORY, SOURCE_ANN][: len(rows)], dtype=np.int8))
    return ranker_features(catalog, user, candidates, context(**ctx))


def warm_user() -> UserProfile:
    # Rows 3 (merchant 3, category 0) and 4 (merchant 0, category 1); row 3 most recent, weight 3 vs 1.
    return UserProfile(user_id="u", known=True, history_rows=np.asarray([3, 4]),
                       history_weights=np.asarray([3.0, 1.0], np.float32),
                       history_last_ts=np.asarray([NOW - 10, NOW - 20]), home_lat=52.52, home_lon=13.30)


def test_repeat_signals_find_items_in_history() -> None:
    x = features_for(warm_user(), [4, 3, 5])
    assert x[:, F["user_item_weight"]] == pytest.approx([np.log1p(1.0), np.log1p(3.0), 0.0])
    assert x[0, F["user_item_recency_rank"]] == 1 and x[1, F["user_item_recency_rank"]] == 0
    assert np.isnan(x[2, F["user_item_recency_rank"]])


def test_affinities_are_shares_of_the_users_weight() -> None:
    x = features_for(warm_user(), [0, 1, 7])  # categories 0, 1, 1; merchants 0, 1, 3
    assert x[:, F["category_affinity"]] == pytest.approx([0.75, 0.25, 0.25])
    assert x[:, F["merchant_affinity"]] == pytest.approx([0.25, 0.0, 0.75])


def test_price_ratio_against_the_users_weighted_median_price() -> None:
    catalog = make_catalog(12)
    x = features_for(warm_user(), [0])
    assert x[0, F["price_ratio"]] == pytest.approx(catalog.item_price[0] / catalog.item_price[3])


def test_distance_uses_request_location_before_home() -> None:
    at_home = features_for(warm_user(), [0])[0, F["distance_km"]]
    assert at_home == pytest.approx(0.0, abs=1e-6)  # merchant 0 sits at the user's home
    away = features_for(warm_user(), [0], lat=52.52, lon=13.40)[0, F["distance_km"]]
    assert away == pytest.approx(float(haversine_km(52.52, 13.40, np.asarray(52.52), np.asarray(13.30))), rel=1e-5)
    assert 6.0 < away < 7.5


def test_cold_user_gets_neutral_not_broken_features() -> None:
    x = features_for(UserProfile.cold("new"), [0, 1])
    assert x.shape == (2, len(FEATURE_NAMES))
    assert np.all(x[:, F["user_item_weight"]] == 0) and np.all(x[:, F["category_affinity"]] == 0)
    assert np.isnan(x[:, F["distance_km"]]).all() and np.isnan(x[:, F["price_ratio"]]).all()


def test_source_flags_and_retrieval_rank() -> None:
    x = features_for(warm_user(), [0, 1, 2])
    assert x[:, F["from_history"]].tolist() == [0, 1, 0]
    assert x[0, F["retrieval_rank"]] == 0.0 and np.isnan(x[1, F["retrieval_rank"]])
