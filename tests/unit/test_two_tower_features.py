"""Training/serving parity of the two-tower inputs, and feature dropout behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from tastebud.domain import RequestContext
from tastebud.features.two_tower import (
    HISTORY_LENGTH,
    ITEM_INPUTS,
    area_bucket,
    history_matrix,
    item_features,
    item_inputs,
    price_bucket,
    profile_inputs,
)
from tastebud_training.snapshot import item_rows, positives
from tastebud_training.two_tower.examples import point_in_time_histories
from tastebud_training.two_tower.trainer import TwoTowerConfig, apply_feature_dropout


@pytest.fixture(scope="module")
def snapshot(tiny_two_tower_snapshot):  # type: ignore[no-untyped-def]
    return tiny_two_tower_snapshot


def test_point_in_time_history_equals_the_served_history(snapshot) -> None:  # type: ignore[no-untyped-def]
    """History built for a training example at time T == what the UserTable serves as of T."""
    dataset, catalog, users, _, as_of = snapshot
    pos = positives(dataset.interactions)
    pos = pos.assign(row=item_rows(catalog, pos["item_id"])).sort_values(["user_id", "ts"], kind="stable")
    checked = 0
    for user_id in pos["user_id"].value_counts().index[:10]:
        mine = pos[pos["user_id"] == user_id]
        # A probe event right at as_of: its history is everything strictly before.
        rows = np.append(mine["row"].to_numpy(), 0)
        weights = np.append(mine["weight"].to_numpy(), 1.0)
        ts = np.append(mine["ts"].to_numpy(), as_of)
        flags = np.zeros(rows.size, dtype=bool)
        flags[-1] = True
        hist_rows, hist_weights = point_in_time_histories(np.full(rows.size, user_id), rows, weights, ts, flags)
        served = users.user(str(user_id))
        np.testing.assert_array_equal(hist_rows[0], served.history_rows[:HISTORY_LENGTH])
        np.testing.assert_allclose(hist_weights[0], served.history_weights[:HISTORY_LENGTH])
        checked += 1
    assert checked == 10


def test_serving_inputs_use_the_same_vocabularies(snapshot) -> None:  # type: ignore[no-untyped-def]
    _, _, users, vocab, as_of = snapshot
    user_id = str(vocab.user_ids[0])
    profile = users.user(user_id)
    inputs = profile_inputs(vocab, profile, RequestContext(now=as_of, domain="grocery"))
    assert inputs["user_idx"].tolist() == [1]
    assert inputs["domain"].tolist() == [2]
    rows, _ = history_matrix([profile.history_rows], [profile.history_weights])
    expected = np.where(rows[0] >= 0, vocab.item_index[np.maximum(rows[0], 0)], 0)
    np.testing.assert_array_equal(inputs["hist_idx"][0], expected)
    assert inputs["area_idx"][0] == area_bucket(np.asarray([profile.home_lat]), np.asarray([profile.home_lon]))[0]


def test_unknown_user_maps_to_the_unknown_index(snapshot) -> None:  # type: ignore[no-untyped-def]
    _, _, users, vocab, as_of = snapshot
    inputs = profile_inputs(vocab, users.user("never-seen"), RequestContext(now=as_of))
    assert inputs["user_idx"].tolist() == [0] and not inputs["hist_idx"].any() and not inputs["hist_text"].any()


def test_area_and_price_buckets_reserve_zero_for_unknown() -> None:
    assert area_bucket(np.asarray([np.nan, 52.5]), np.asarray([13.4, 13.4])).tolist()[0] == 0
    assert area_bucket(np.asarray([52.5]), np.asarray([13.4]))[0] > 0
    assert price_bucket(np.asarray([np.nan, 1.0, 100.0]), np.asarray([2.0, 5.0])).tolist() == [0, 1, 3]


def _batch(n: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    user = {"user_idx": np.arange(1, n + 1), "hist_idx": np.ones((n, 4), np.int64),
            "hist_weight": np.ones((n, 4), np.float32), "hist_text": np.ones((n, 3), np.float32)}
    item = {"item_idx": np.arange(1, n + 1), "merchant_idx": np.arange(1, n + 1)}
    return user, item


def test_feature_dropout_replaces_ids_with_unknown_at_the_given_rate() -> None:
    rng = np.random.default_rng(0)
    user, item = _batch(20_000)
    apply_feature_dropout(user, item, 0.3, 0.0, rng)
    dropped = item["item_idx"] == 0
    assert 0.28 < dropped.mean() < 0.32
    assert np.array_equal(dropped, item["merchant_idx"] == 0)  # id and merchant drop together
    assert 0.28 < (user["user_idx"] == 0).mean() < 0.32
    assert user["hist_idx"].all()  # history untouched at history_rate 0


def test_item_id_dropout_replaces_item_ids_at_its_own_higher_rate() -> None:
    """A new dish at a known merchant: the id alone drops at item_id_rate, id and merchant together at rate."""
    user, item = _batch(20_000)
    apply_feature_dropout(user, item, 0.2, 0.0, np.random.default_rng(0), item_id_rate=0.6)
    id_dropped, merchant_dropped = item["item_idx"] == 0, item["merchant_idx"] == 0
    assert 0.58 < id_dropped.mean() < 0.62
    assert 0.18 < merchant_dropped.mean() < 0.22
    assert not (merchant_dropped & ~id_dropped).any()  # a dropped merchant always comes with a dropped id
    assert 0.18 < (user["user_idx"] == 0).mean() < 0.22  # the user id keeps the feature-dropout rate


def test_item_id_dropout_equal_to_the_feature_rate_is_todays_dropout() -> None:
    """``item_id_dropout`` None (the default) or equal to the feature rate draws exactly as before."""
    first, second = _batch(500), _batch(500)
    apply_feature_dropout(*first, 0.3, 0.1, np.random.default_rng(5))
    apply_feature_dropout(*second, 0.3, 0.1, np.random.default_rng(5), item_id_rate=0.3)
    for a, b in ((first[0], second[0]), (first[1], second[1])):
        assert all(np.array_equal(a[key], b[key]) for key in a)


def test_two_tower_config_item_id_options_and_their_ablation_names() -> None:
    base = TwoTowerConfig()
    assert base.item_id_dropout is None and base.id_dropout == base.feature_dropout
    assert base.towers.item_id_scale == 1.0
    assert base.ablation("item_id_dropout_50").id_dropout == 0.5
    both = base.ablation("item_id_dropout_50_scale_half")
    assert both.id_dropout == 0.5 and both.towers.item_id_scale == 0.5
    assert base.ablation("item_id_scale_half").towers.item_id_scale == 0.5
    assert base.towers.item_id_scale == 1.0  # ablation returns a copy
    with pytest.raises(ValueError, match="item_id_dropout"):
        TwoTowerConfig(feature_dropout=0.3, item_id_dropout=0.2)


def test_history_dropout_empties_whole_histories_and_zero_rate_changes_nothing() -> None:
    rng = np.random.default_rng(1)
    user, item = _batch(1000)
    apply_feature_dropout(user, item, 0.0, 1.0, rng)
    assert not user["hist_idx"].any() and not user["hist_weight"].any() and not user["hist_text"].any()
    assert item["item_idx"].all() and user["user_idx"].all()


def test_item_inputs_for_catalog_rows_are_the_raw_item_features(snapshot) -> None:  # type: ignore[no-untyped-def]
    """Training (catalog rows) and serving (raw arrays of a new item) build item tower inputs with one function."""
    _, catalog, _, vocab, _ = snapshot
    rows = np.arange(0, catalog.size, 7)
    images = np.random.default_rng(1).normal(size=(catalog.size, 4)).astype(np.float32)
    has_image = np.arange(catalog.size) % 3 > 0
    from_rows = item_inputs(vocab, catalog, rows, images, has_image)
    raw = item_features(vocab, item_idx=vocab.item_index[rows], merchant_rows=catalog.item_merchant[rows],
                        category_rows=catalog.item_category[rows], domains=catalog.item_domain[rows],
                        prices=catalog.item_price[rows].astype(np.float64), text=vocab.text_vectors[rows],
                        image=images[rows], has_image=has_image[rows])
    assert from_rows.keys() == raw.keys() == set(ITEM_INPUTS)
    for name in ITEM_INPUTS:
        np.testing.assert_array_equal(from_rows[name], raw[name], err_msg=name)
        assert from_rows[name].dtype == raw[name].dtype
    assert from_rows["has_image"].shape == (rows.size, 1)


def test_unknown_merchant_category_and_domain_map_to_the_unknown_index(snapshot) -> None:  # type: ignore[no-untyped-def]
    vocab = snapshot[3]
    beyond_merchants, beyond_categories = vocab.merchant_index.size, vocab.n_categories
    inputs = item_features(vocab, item_idx=np.zeros(3), merchant_rows=np.asarray([-1, beyond_merchants, 0]),
                           category_rows=np.asarray([-1, beyond_categories, 0]), domains=np.asarray([-1, 0, 1]),
                           prices=np.asarray([np.nan, 1.0, 5.0]), text=np.zeros((3, 16)), image=np.zeros((3, 4)),
                           has_image=np.zeros(3, bool))
    assert inputs["merchant_idx"][:2].tolist() == [0, 0]
    assert inputs["merchant_idx"][2] == vocab.merchant_index[0]
    assert inputs["category_idx"].tolist() == [0, 0, 1]
    assert inputs["item_domain"].tolist() == [0, 1, 2]
    assert inputs["price_bucket"][0] == 0 and inputs["item_idx"].tolist() == [0, 0, 0]
