"""Repeat-aware ranker features, item re-order statistics and the history fold, with hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from tastebud.domain import SOURCE_ANN, SOURCE_HISTORY, SOURCE_RELATED, SOURCE_SIMILAR, Candidates, UserProfile
from tastebud.features.history import PURCHASES, REPEAT_COLUMNS, fold_log, with_events
from tastebud.features.ranker_features import ranker_features
from tastebud.features.schema import FEATURE_NAMES
from tastebud.pipeline.stages.retrieve import Retriever, history_candidates
from tastebud.recommendation import RequestState
from tastebud.settings import ServingKnobs
from tastebud_training.reorders import (
    SIMILAR_ALPHA,
    basket_keys,
    bought_by_same_shoppers,
    bought_together,
    item_repeat_stats,
)

from factories import DAY, NOW, context, make_catalog

F = {name: i for i, name in enumerate(FEATURE_NAMES)}


class NoQueryEncoder:
    """A user tower with no query for anyone: retrieval is history, bought-together and popular only."""

    def encode(self, user: UserProfile, context: object) -> None:
        return None
HOUR = 3600.0
# NOW (1_760_000_000) is 08:53 UTC on a Thursday: hour 8, weekday 3.
NOW_HOUR = int(NOW // HOUR) % 24


def buyer() -> UserProfile:
    """Bought row 3 three times (10, 6 and 2 days ago, at this hour) and row 4 once, 12 hours off, 1 day ago."""
    times = np.asarray([NOW - 10 * DAY, NOW - 6 * DAY, NOW - 2 * DAY, NOW - DAY - 12 * HOUR, NOW - 5 * DAY])
    return with_events(UserProfile.cold("u"), np.asarray([3, 3, 3, 4, 6]),
                       ["purchase", "purchase", "purchase", "purchase", "click"], times)


def features(user: UserProfile, rows: list[int], scores: list[float], sources: list[int],
             **catalog_changes: np.ndarray) -> np.ndarray:
    catalog = make_catalog(12)
    if catalog_changes:
        catalog = catalog.with_changes(**catalog_changes)
    candidates = Candidates(rows=np.asarray(rows), retrieval_scores=np.asarray(scores, dtype=np.float32),
                            sources=np.asarray(sources, dtype=np.int8))
    return ranker_features(catalog, user, candidates, context())


def test_the_fold_counts_purchases_and_keeps_their_times() -> None:
    user = buyer()
    assert user.history_rows.tolist() == [4, 3, 6]  # most recent positive first
    repeat = dict(zip(user.history_rows.tolist(), user.history_repeat, strict=True))
    assert repeat[3][PURCHASES] == 3 and repeat[4][PURCHASES] == 1 and repeat[6][PURCHASES] == 0
    assert repeat[3][1] == NOW - 10 * DAY and repeat[3][2] == NOW - 2 * DAY  # first, last purchase
    assert repeat[3][3:5] == pytest.approx(3 * np.asarray([np.sin(2 * np.pi * NOW_HOUR / 24),
                                                           np.cos(2 * np.pi * NOW_HOUR / 24)]))
    assert user.history_weights.tolist() == [3.0, 9.0, 1.0]


def test_fold_log_is_the_same_fold_for_many_users() -> None:
    users = np.asarray([1, 0, 1, 0, 1])
    rows = np.asarray([5, 2, 5, 2, 7])
    ts = np.asarray([10.0, 20.0, 30.0, 40.0, 5.0])
    user, row, weight, last_ts, repeat = fold_log(users, rows, ["purchase", "click", "purchase", "purchase", "view"],
                                                  ts, n_rows=10)
    assert user.tolist() == [0, 1] and row.tolist() == [2, 5]  # the view is not a positive
    assert weight.tolist() == [4.0, 6.0] and last_ts.tolist() == [40.0, 30.0]
    assert repeat[:, PURCHASES].tolist() == [1.0, 2.0] and repeat.shape == (2, len(REPEAT_COLUMNS))


def test_repeat_counts_share_recency_interval_and_due() -> None:
    x = features(buyer(), [3, 4, 5], [0.9, np.nan, 0.5], [SOURCE_ANN | SOURCE_HISTORY, SOURCE_HISTORY, SOURCE_ANN],
                 item_reorder_days=np.full(12, 3.0, dtype=np.float32))
    assert x[:, F["user_item_purchases"]].tolist() == [3, 1, 0]
    assert x[:, F["user_item_purchase_share"]] == pytest.approx([0.75, 0.25, 0.0])
    assert x[:2, F["days_since_item_purchase"]] == pytest.approx([2.0, 1.5])
    assert x[0, F["user_item_reorder_days"]] == pytest.approx(4.0)  # (10 - 2) days / 2 intervals
    assert np.isnan(x[1, F["user_item_reorder_days"]])  # one purchase: no interval of its own
    assert x[0, F["item_due_ratio"]] == pytest.approx(0.5)  # 2 days since, every 4 days
    assert x[1, F["item_due_ratio"]] == pytest.approx(0.5)  # 1.5 days since, catalog's usual 3 days
    assert np.isnan(x[2, F["days_since_item_purchase"]]) and np.isnan(x[2, F["item_due_ratio"]])


def test_category_recency_and_due() -> None:
    # make_catalog: category = row % 3. Row 0 shares category 0 with row 3 (bought 10, 6, 2 days ago).
    x = features(buyer(), [0, 1, 2], [0.3, 0.2, 0.1], [SOURCE_ANN] * 3)
    assert x[0, F["days_since_category_purchase"]] == pytest.approx(2.0)
    assert x[0, F["category_due_ratio"]] == pytest.approx(0.5)
    assert x[1, F["days_since_category_purchase"]] == pytest.approx(1.5)  # row 4 is category 1, bought once
    assert np.isnan(x[1, F["category_due_ratio"]]) and np.isnan(x[2, F["days_since_category_purchase"]])


def test_time_of_day_and_week_affinity() -> None:
    x = features(buyer(), [3, 4, 5], [0.9, 0.8, 0.7], [SOURCE_ANN] * 3)
    assert x[0, F["item_hour_affinity"]] == pytest.approx(1.0)  # always bought at this hour
    assert x[1, F["item_hour_affinity"]] == pytest.approx(-1.0)  # bought 12 hours off
    assert np.isnan(x[2, F["item_hour_affinity"]])
    # Row 3 was bought on weekdays 0 (10 days before a Thursday), 4 and 1: mean resultant · Thursday's vector.
    days = np.asarray([(3 - 10) % 7, (3 - 6) % 7, (3 - 2) % 7]) * 2 * np.pi / 7
    thursday = 3 * 2 * np.pi / 7
    expected = (np.sin(days).sum() * np.sin(thursday) + np.cos(days).sum() * np.cos(thursday)) / 3
    assert x[0, F["item_weekday_affinity"]] == pytest.approx(expected, abs=1e-6)
    # Domain = row % 2: rows 3 and 5 are domain 1, where the user's purchases (row 3) were all at this hour.
    assert x[2, F["domain_hour_affinity"]] == pytest.approx(1.0)
    assert x[1, F["domain_hour_affinity"]] == pytest.approx(-1.0)  # domain 0: row 4, 12 hours off


def test_bought_together_with_recent_purchases() -> None:
    # Row 3's basket partners: 5 (0.5) and 7 (0.25); row 4's: 5 (0.2).
    offsets = np.zeros(13, dtype=np.int64)
    offsets[4:] = 2
    offsets[5:] = 3
    related = {"related_offsets": offsets, "related_rows": np.asarray([5, 7, 5]),
               "related_scores": np.asarray([0.5, 0.25, 0.2], dtype=np.float32)}
    x = features(buyer(), [5, 7, 8], [0.9, 0.8, 0.7], [SOURCE_ANN | SOURCE_RELATED, SOURCE_ANN, SOURCE_ANN],
                 **related)
    assert x[:, F["bought_together_max"]] == pytest.approx([0.5, 0.25, 0.0])
    assert x[:, F["bought_together_sum"]] == pytest.approx([0.7, 0.25, 0.0])
    assert x[:, F["from_bought_together"]].tolist() == [1, 0, 0]
    catalog = make_catalog(12).with_changes(**related)
    retriever = Retriever(catalog, NoQueryEncoder(), None,  # type: ignore[arg-type]
                          ServingKnobs(retrieve_k=5, related_candidates=1))
    out = retriever.run(RequestState(buyer(), context()))
    assert out.rows[(out.sources & SOURCE_RELATED) > 0].tolist() == [5]  # 0.5 + 0.2 beats 0.25


def test_items_of_the_same_shoppers_are_scored_against_decayed_purchases() -> None:
    # Row 3's shoppers also buy 8 (0.6) and 4 (0.5); row 4's buy 8 (0.4) and 9 (0.3).
    offsets = np.zeros(13, dtype=np.int64)
    offsets[4:] = 2
    offsets[5:] = 4
    similar = {"similar_offsets": offsets, "similar_rows": np.asarray([8, 4, 8, 9]),
               "similar_scores": np.asarray([0.6, 0.5, 0.4, 0.3], dtype=np.float32)}
    # The buyer's 30-day decayed purchases: row 3 at 10, 6 and 2 days, row 4 at 1.5 days.
    w3 = sum(0.5 ** (d / 30) for d in (10, 6, 2))
    w4 = 0.5 ** (1.5 / 30)
    x = features(buyer(), [8, 9, 4, 10], [0.9, 0.8, 0.7, 0.6], [SOURCE_ANN | SOURCE_SIMILAR, SOURCE_ANN, SOURCE_ANN,
                                                                SOURCE_ANN], **similar)
    expected = [(w3 * 0.6 + w4 * 0.4) / (w3 + w4), w4 * 0.3 / (w3 + w4), w3 * 0.5 / (w3 + w4), 0.0]
    assert x[:, F["same_shoppers_score"]] == pytest.approx(expected, rel=1e-5)
    assert x[:, F["from_same_shoppers"]].tolist() == [1, 0, 0, 0]
    assert features(UserProfile.cold("c"), [8], [0.5], [SOURCE_ANN], **similar)[0, F["same_shoppers_score"]] == 0.0
    catalog = make_catalog(12).with_changes(**similar)
    retriever = Retriever(catalog, NoQueryEncoder(), None,  # type: ignore[arg-type]
                          ServingKnobs(retrieve_k=5, related_candidates=0, similar_candidates=2))
    out = retriever.run(RequestState(buyer(), context()))
    # 8 and 9, best first; 4 scores but the user bought it already, so it is not an explore candidate.
    assert out.rows[(out.sources & SOURCE_SIMILAR) > 0].tolist() == [8, 9]


def test_same_shoppers_table_is_an_asymmetric_cosine_over_shoppers() -> None:
    # Shoppers: u0 {0, 1}, u1 {0, 1, 2}, u2 {0}, u3 {1, 2}, u4 {2}, u5 {0}: (0,1) shared by 2, (1,2) by 2, (0,2)
    # by 1; item 0 has 4 shoppers, items 1 and 2 have 3.
    users = np.asarray([0, 0, 1, 1, 1, 1, 2, 3, 3, 4, 5])
    rows = np.asarray([0, 1, 0, 1, 2, 1, 0, 1, 2, 2, 0])  # u1 buys 1 twice: still one shopper
    offsets, partners, scores = bought_by_same_shoppers(users, rows, n_items=3)
    shoppers = {0: 4, 1: 3, 2: 3}

    def score(i: int, j: int) -> float:
        return 2 / (shoppers[i] ** SIMILAR_ALPHA * shoppers[j] ** (1 - SIMILAR_ALPHA))

    assert offsets.tolist() == [0, 1, 3, 4]
    # (0,2) is below the minimum of 2 shoppers; from 1, item 2 comes first: item 0's extra shopper discounts it.
    assert partners.tolist() == [1, 2, 0, 1]
    assert scores == pytest.approx([score(0, 1), score(1, 2), score(1, 0), score(2, 1)])
    assert score(0, 1) < score(1, 0)  # asymmetric: mostly P(j | i)


def test_retrieval_inputs_are_ranks_and_z_scores_within_the_request() -> None:
    x = features(buyer(), [3, 4, 5], [0.9, np.nan, 0.5], [SOURCE_ANN, SOURCE_HISTORY, SOURCE_ANN])
    assert x[0, F["retrieval_rank"]] == 0.0 and x[2, F["retrieval_rank"]] == 0.5
    assert x[[0, 2], F["retrieval_score_z"]] == pytest.approx([1.0, -1.0])
    assert np.isnan(x[1, F["retrieval_rank"]]) and np.isnan(x[1, F["retrieval_score_z"]])
    shifted = features(buyer(), [3, 4, 5], [9.0, np.nan, 5.0], [SOURCE_ANN, SOURCE_HISTORY, SOURCE_ANN])
    np.testing.assert_allclose(shifted[:, [F["retrieval_rank"], F["retrieval_score_z"]]],
                               x[:, [F["retrieval_rank"], F["retrieval_score_z"]]])  # another embedding scale


def test_users_without_statistics_or_history() -> None:
    stored = UserProfile(user_id="u", known=True, history_rows=np.asarray([3]),
                         history_weights=np.asarray([3.0], np.float32), history_last_ts=np.asarray([NOW - DAY]))
    x = features(stored, [3], [0.5], [SOURCE_ANN])
    assert np.isnan(x[0, F["user_item_purchases"]])  # a store without repeat statistics: unknown, not zero
    cold = features(UserProfile.cold("c"), [3], [0.5], [SOURCE_ANN])
    assert cold[0, F["user_item_purchases"]] == 0 and np.isnan(cold[0, F["days_since_item_purchase"]])


def test_history_candidates_mix_recent_and_most_bought() -> None:
    user = UserProfile(user_id="u", known=True, history_rows=np.arange(6),
                       history_weights=np.asarray([1, 1, 1, 9, 2, 5], np.float32),
                       history_last_ts=NOW - np.arange(6, dtype=np.float64))
    assert history_candidates(user, 4).tolist() == [0, 1, 3, 5]
    assert history_candidates(user, 10).tolist() == list(range(6))


def test_item_repeat_rate_and_reorder_interval() -> None:
    # Item 0: user 0 buys it 3 times (days 0, 2, 6), user 1 once; item 1: user 1 once; item 2: nobody.
    users = np.asarray([0, 0, 0, 1, 1])
    rows = np.asarray([0, 0, 0, 0, 1])
    ts = np.asarray([0.0, 2.0, 6.0, 1.0, 3.0]) * 86400
    rate, days = item_repeat_stats(users, rows, ts, n_items=3)
    prior = 1 / 3  # 1 repeater among 3 (user, item) pairs
    assert rate[0] == pytest.approx((1 + 5 * prior) / (2 + 5)) and rate[1] == pytest.approx(5 * prior / 6)
    assert np.isnan(rate[2])
    assert days[0] == pytest.approx(3.0) and np.isnan(days[1])  # (6 - 0) / 2


def test_bought_together_scores_by_cosine() -> None:
    # Baskets: {0,1}, {0,1}, {0,2}, {1}: pair (0,1) in 2 baskets; item 0 in 3, item 1 in 3; (0,2) only once.
    baskets = np.asarray(["a", "a", "b", "b", "c", "c", "d"])
    rows = np.asarray([0, 1, 0, 1, 0, 2, 1])
    offsets, partners, scores = bought_together(baskets, rows, n_items=3)
    assert offsets.tolist() == [0, 1, 2, 2] and partners.tolist() == [1, 0]
    assert scores == pytest.approx([2 / 3, 2 / 3])
    keys = basket_keys(np.asarray(["u", "u", "v"]), np.asarray(["s1", "", ""]), np.asarray([0.0, 10.0, 10.0]))
    assert keys.tolist() == ["u|s|s1", "u|d|0", "v|d|0"]


def test_ranker_requests_are_anchored_at_each_basket_start() -> None:
    import pandas as pd

    from tastebud_training.ranker_examples import _session_keys

    events = pd.DataFrame({"user_id": ["u"] * 5, "ts": [100.0, 160.0, 5000.0, 5100.0, 90000.0],
                           "session_id": ["s1", "s1", "s2", "s2", ""]})
    keys = _session_keys(events)
    assert events.groupby(keys)["ts"].min().sort_values().tolist() == [100.0, 5000.0, 90000.0]  # session-less: its day
    no_sessions = pd.DataFrame({"user_id": ["u"] * 3, "ts": [10.0, 20.0, 86400.0 + 5]})
    assert pd.Series(_session_keys(no_sessions)).nunique() == 2


def test_ranker_learns_from_logged_pages_only_when_asked(tiny_dataset) -> None:
    """Impression groups (a logged page, labelled by what was engaged with) are opt-in: by default every group is a
    retrieval group, the candidate set the ranker orders when serving."""
    from tastebud_training.ranker_examples import build_examples
    from tastebud_training.snapshot import build_catalog, build_user_table

    interactions = tiny_dataset.interactions
    assert (interactions["event_type"] == "impression").any()  # the tiny simulated log has pages to learn from
    start = float(interactions["ts"].quantile(0.8))
    end = float(interactions["ts"].max()) + 1
    catalog = build_catalog(tiny_dataset, start)
    users = build_user_table(tiny_dataset, catalog, start, [])
    retriever = Retriever(catalog, NoQueryEncoder(), None, ServingKnobs())  # type: ignore[arg-type]
    kwargs = dict(catalog=catalog, users=users, retriever=retriever, interactions=interactions, label_start=start,
                  label_end=end, progress=False)
    default = build_examples(**kwargs)
    assert default.groups_by_source["impressions"] == 0 and default.groups_by_source["retrieval"] > 0
    with_pages = build_examples(**kwargs, impression_groups=True)
    assert with_pages.groups_by_source["impressions"] > 0
    assert with_pages.n_groups == sum(with_pages.groups_by_source.values())


def test_a_ranker_request_is_labelled_by_the_basket_it_starts(tiny_dataset) -> None:
    """Next-basket labels (the default): the request at a basket's start is labelled by that basket alone; window
    labels add every later positive of the window."""
    from dataclasses import replace

    import pandas as pd

    from tastebud_training.ranker_examples import build_examples
    from tastebud_training.snapshot import build_catalog, build_user_table

    before = tiny_dataset.interactions
    start = float(before["ts"].max()) + 1
    user = str(before["user_id"].iloc[0])
    items = tiny_dataset.items["item_id"].astype(str).tolist()[:3]
    # The user bought the three items before (so they are history candidates), then one per basket in the window.
    basket = {"user_id": user, "event_type": "purchase", "session_id": "", "request_id": ""}
    window = pd.DataFrame([{**basket, "item_id": item, "ts": start + day * 86400.0 + 3600, "session_id": f"w{day}"}
                           for day, item in enumerate(items)])
    history = pd.DataFrame([{**basket, "item_id": item, "ts": start - 86400.0 * 2, "session_id": "h"}
                            for item in items])
    log = pd.concat([before, history, window], ignore_index=True).reindex(columns=before.columns)
    dataset = replace(tiny_dataset, interactions=log.fillna({c: "" for c in ("session_id", "request_id")}))
    catalog = build_catalog(dataset, start)
    users = build_user_table(dataset, catalog, start, [])
    retriever = Retriever(catalog, NoQueryEncoder(), None, ServingKnobs())  # type: ignore[arg-type]
    kwargs = dict(catalog=catalog, users=users, retriever=retriever, interactions=dataset.interactions,
                  label_start=start, label_end=start + 10 * 86400.0, progress=False)

    def positives_per_group(horizon: str) -> list[int]:
        examples = build_examples(**kwargs, label_horizon=horizon)
        assert examples.n_groups == 3 and set(examples.group_users) == {user}
        return [int((examples.labels[examples.qid == qid] > 0).sum()) for qid in np.unique(examples.qid)]

    assert positives_per_group("next-basket") == [1, 1, 1]
    assert sorted(positives_per_group("window")) == [1, 2, 3]
    with pytest.raises(ValueError, match="label_horizon"):
        build_examples(**kwargs, label_horizon="forever")
