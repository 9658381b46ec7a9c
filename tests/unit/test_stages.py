"""The four stages on hand-built catalogs: merging, filtering, degradation, fairness, stock over-fetch."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tastebud.adapters.embedded.scann_index import BruteForceIndex
from tastebud.catalog import DOMAIN_CODE
from tastebud.domain import SOURCE_ANN, SOURCE_HISTORY, SOURCE_POPULAR, Candidates, UserProfile
from tastebud.pipeline.reasons import reasons_for
from tastebud.pipeline.stages.fairness import (
    FLAG_EXPOSURE_FLOOR,
    FLAG_MERCHANT_CAP,
    FLAG_NEW_MERCHANT,
    FairnessDiversity,
)
from tastebud.pipeline.stages.rerank import Reranker
from tastebud.pipeline.stages.retrieve import Retriever
from tastebud.pipeline.stages.stock_filter import StockFilter
from tastebud.recommendation import RequestState
from tastebud.settings import ServingKnobs

from factories import (
    NOW,
    FailingEncoder,
    FailingRanker,
    MemoryStock,
    PopularityRanker,
    VectorEncoder,
    context,
    make_catalog,
    make_service,
    make_users,
    unit_vectors,
)

KNOBS = ServingKnobs(retrieve_k=8, history_candidates=3, popular_candidates=4)
NOBODY = make_users({}).user("nobody")  # a user without a basket


def request(user: UserProfile = NOBODY, k: int = 20, **context_changes: object) -> RequestState:
    return RequestState(user, context(**context_changes), k)  # type: ignore[arg-type]


def retriever(n: int = 30, encoder: object | None = None) -> Retriever:
    catalog = make_catalog(n, n_merchants=6)
    vectors = unit_vectors(n)
    return Retriever(catalog, encoder or VectorEncoder(vectors), BruteForceIndex(vectors), KNOBS)  # type: ignore[arg-type]


def test_retrieve_merges_sources_without_duplicates() -> None:
    users = make_users({"u": [0, 1, 2, 3]})
    state = request(users.user("u"))
    out = retriever().run(state)
    assert np.unique(out.rows).size == len(out)
    assert state.degraded == []
    assert (out.sources & SOURCE_ANN).any() and (out.sources & SOURCE_POPULAR).any()
    history = out.sources & SOURCE_HISTORY > 0
    assert set(out.rows[history].tolist()) == {0, 1, 2}  # history_candidates = 3 most recent
    assert np.isnan(out.retrieval_scores[(out.sources & SOURCE_ANN) == 0]).all()


def test_cold_user_is_served_by_popularity() -> None:
    out = retriever().run(request(make_users({}).user("stranger")))
    assert out.rows[:5].tolist() == [0, 1, 2, 3, 4]  # make_catalog popularity decreases with the row
    assert np.all(out.sources == SOURCE_POPULAR)


def test_domain_filter_and_exclusions_apply_to_every_source() -> None:
    users = make_users({"u": [0, 1, 2, 3]})
    out = retriever().run(request(users.user("u"), domain="grocery", exclude_item_ids=("i1", "nope")))
    catalog = make_catalog(30, n_merchants=6)
    assert np.all(catalog.item_domain[out.rows] == DOMAIN_CODE["grocery"])
    assert 1 not in out.rows.tolist()


def test_items_not_created_yet_are_not_recommended() -> None:
    r = retriever()
    r._catalog.item_created_at[2] = NOW + 3600
    out = r.run(request())
    assert 2 not in out.rows.tolist()


def test_encoder_failure_degrades_to_history_and_popularity() -> None:
    users = make_users({"u": [5, 6]})
    state = request(users.user("u"))
    out = retriever(encoder=FailingEncoder()).run(state)
    assert state.degraded == ["retrieve"] and state.errors == []  # an outage, not a bug
    assert len(out) > 0 and not (out.sources & SOURCE_ANN).any()


def test_ranker_failure_keeps_retrieval_order() -> None:
    catalog = make_catalog(10)
    candidates = Candidates(rows=np.asarray([4, 2, 7]), retrieval_scores=np.zeros(3, np.float32),
                            sources=np.ones(3, np.int8))
    state = request()
    out = Reranker(catalog, FailingRanker()).run(state, candidates)
    assert state.degraded == ["rerank"]
    assert np.argsort(-out.scores).tolist() == [0, 1, 2]  # type: ignore[arg-type]


def scored(rows: list[int], scores: list[float]) -> Candidates:
    return Candidates(rows=np.asarray(rows), retrieval_scores=np.zeros(len(rows), np.float32),
                      sources=np.full(len(rows), SOURCE_ANN, np.int8), scores=np.asarray(scores, np.float32))


def test_merchant_cap_limits_items_per_merchant_on_the_page() -> None:
    catalog = make_catalog(24, n_merchants=4)  # merchant = row % 4
    knobs = ServingKnobs(max_per_merchant=2, category_penalty=0.0, low_popularity_boost=0.0, new_merchant_boost=0.0)
    rows = [0, 4, 8, 12, 1, 2]  # four items of merchant 0 score highest
    out = FairnessDiversity(catalog, knobs).run(request(), scored(rows, [10, 9, 8, 7, 1, 0.5]), slots=4)
    page = out.rows[:4].tolist()
    assert page == [0, 4, 1, 2]
    assert set(out.rows[4:].tolist()) == {8, 12}
    assert all(f & FLAG_MERCHANT_CAP for f in out.flags[4:])  # type: ignore[index]


def test_a_shoppers_own_groceries_are_not_capped_penalised_or_demoted() -> None:
    """Grocery items the user bought keep their ranked places (issue 22: on a one-store log the cap reshuffled
    them); an item never bought is an exploration and is capped as before."""
    from tastebud.features.history import with_events

    catalog = make_catalog(24, n_merchants=4)  # merchant = row % 4, domain = row % 2: merchant 1 sells groceries
    knobs = ServingKnobs(max_per_merchant=2, category_penalty=5.0, low_popularity_boost=0.0, new_merchant_boost=0.0)
    rows, scores = [1, 5, 9, 13, 17, 21, 0, 2], [10, 9, 8, 7, 6, 5.5, 1, 0.5]
    twice = [1, 5, 9, 13, 1, 5, 9, 13, 17]  # 17 bought once (still the shopper's), 21 never
    user = with_events(make_users({}).user("shopper"), np.asarray(twice), ["purchase"] * len(twice),
                       np.full(len(twice), NOW - 86400.0))
    stage = FairnessDiversity(catalog, knobs)
    assert stage.run(request(), scored(rows, scores), slots=4).rows[:4].tolist() == [1, 5, 0, 2]  # nobody's basket
    out = stage.run(request(user), scored(rows, scores), slots=7)
    assert out.rows[:7].tolist() == [1, 5, 9, 13, 17, 0, 2]  # the basket in ranked order; 21 waits for the cap
    catalog.merchant_created_at[[0, 2]] = NOW - 3600.0  # items 0 and 2 now come from emerging (new) merchants
    floored = FairnessDiversity(catalog, replace(knobs, exposure_floor=0.5, emerging_popularity_pct=0.0))
    assert floored.run(request(), scored(rows, scores), slots=4).rows[:4].tolist() == [1, 5, 0, 2]
    page = floored.run(request(user), scored(rows, scores), slots=4).rows[:4].tolist()
    assert page == [1, 5, 9, 13]  # the floor finds no place that is not the user's own basket
    # Boosts act on the explore places: the user's own items keep their scores, explorations are boosted.
    boosting = FairnessDiversity(catalog, replace(knobs, low_popularity_boost=1.0, category_penalty=0.0))
    plain = boosting.run(request(), scored([13, 0, 2], [7, 6.9, 6.8]), slots=3)
    mine = boosting.run(request(user), scored([13, 0, 2], [7, 6.9, 6.8]), slots=3)
    assert mine.scores is not None and plain.scores is not None
    assert mine.scores[mine.rows.tolist().index(13)] == pytest.approx(7.0)
    assert plain.scores[plain.rows.tolist().index(13)] > 7.0


def test_merchant_cap_holds_per_screenful_of_a_long_page() -> None:
    catalog = make_catalog(160, n_merchants=8)  # merchant = row % 8
    knobs = ServingKnobs(max_per_merchant=3, category_penalty=0.0, low_popularity_boost=0.0, new_merchant_boost=0.0,
                         new_item_boost=0.0)
    rows = [r for r in range(160) if r % 8 == 0] + [r for r in range(160) if r % 8 != 0]  # merchant 0 scores highest
    out = FairnessDiversity(catalog, knobs).run(request(), scored(rows, list(range(160, 0, -1))), slots=40)
    merchants = catalog.item_merchant[out.rows]
    assert (merchants[:20] == 0).sum() == 3 and (merchants[20:40] == 0).sum() == 3  # 3 per screen, not per page


def test_new_merchants_are_boosted_and_flagged() -> None:
    catalog = make_catalog(8, n_merchants=4, new_merchants=(3,))
    knobs = ServingKnobs(new_merchant_boost=3.0, low_popularity_boost=0.0, category_penalty=0.0)
    out = FairnessDiversity(catalog, knobs).run(request(), scored([0, 1, 2, 3], [4, 3, 2, 1]), slots=4)
    assert out.rows[0] == 3
    assert out.flags[0] & FLAG_NEW_MERCHANT  # type: ignore[index]


def test_exposure_floor_gives_emerging_merchants_their_share_of_the_page() -> None:
    catalog = make_catalog(12, n_merchants=4, new_merchants=(3,))  # merchant = row % 4; 3 is new
    catalog = catalog.with_changes(merchant_popularity_pct=np.asarray([1.0, 0.9, 0.8, 0.7]))  # none unpopular
    knobs = ServingKnobs(new_merchant_boost=0.0, low_popularity_boost=0.0, category_penalty=0.0, max_per_merchant=9,
                         exposure_floor=0.5)
    rows = [0, 1, 2, 4, 5, 6, 3, 7, 11]  # merchant 3's items (3, 7, 11) score lowest
    out = FairnessDiversity(catalog, knobs).run(request(), scored(rows, [9, 8, 7, 6, 5, 4, 3, 2, 1]), slots=4)
    assert out.rows[:4].tolist() == [0, 1, 3, 7]  # 2 of 4 slots: the best two emerging items replace the last two
    assert out.rows[4:6].tolist() == [2, 4]  # the demoted items lead what follows
    assert [bool(f & FLAG_EXPOSURE_FLOOR) for f in out.flags[:4]] == [False, False, True, True]  # type: ignore[index]
    assert "shown for a fair share of new and smaller merchants" in reasons_for(int(out.sources[2]),
                                                                                int(out.flags[2]))  # type: ignore[index]
    unset = FairnessDiversity(catalog, replace(knobs, exposure_floor=0.0)).run(
        request(), scored(rows, [9, 8, 7, 6, 5, 4, 3, 2, 1]), slots=4)
    assert unset.rows[:4].tolist() == [0, 1, 2, 4]


def test_exposure_floor_holds_in_every_screenful_of_a_long_page() -> None:
    catalog = make_catalog(80, n_merchants=4, new_merchants=(3,)).with_changes(
        merchant_popularity_pct=np.asarray([1.0, 0.9, 0.8, 0.7]))
    knobs = ServingKnobs(new_merchant_boost=0.0, low_popularity_boost=0.0, category_penalty=0.0, max_per_merchant=99,
                         exposure_floor=0.25, new_item_boost=0.0)
    others = [r for r in range(80) if r % 4 != 3]
    rows = others + [r for r in range(80) if r % 4 == 3]  # merchant 3's 20 items score lowest
    out = FairnessDiversity(catalog, knobs).run(request(), scored(rows, list(range(80, 0, -1))), slots=40)
    merchants = catalog.item_merchant[out.rows]
    assert (merchants[:20] == 3).sum() == 5 and (merchants[20:40] == 3).sum() == 5


def test_category_penalty_spreads_categories() -> None:
    catalog = make_catalog(12, n_merchants=12)  # category = row % 3
    knobs = ServingKnobs(category_penalty=3.0, low_popularity_boost=0.0, new_merchant_boost=0.0)
    out = FairnessDiversity(catalog, knobs).run(request(), scored([0, 3, 6, 1, 2], [5, 4.9, 4.8, 4, 3.9]), slots=3)
    assert sorted(catalog.item_category[out.rows[:3]].tolist()) == [0, 1, 2]


def test_stock_filter_overfetches_to_fill_the_page() -> None:
    catalog = make_catalog(40)
    stock = MemoryStock(out=[f"i{r}" for r in range(0, 30)])
    candidates = scored(list(range(40)), list(np.linspace(1, 0, 40)))
    out = StockFilter(catalog, stock, serve_without_filter=False).run(request(k=5), candidates)
    assert out.rows.tolist() == [30, 31, 32, 33, 34]
    assert stock.calls == 2  # first window of 2k+10, then the rest in one call


def test_stock_outage_falls_back_to_the_snapshot_and_says_so() -> None:
    catalog = make_catalog(10)
    state = request(k=3)
    filt = StockFilter(catalog, MemoryStock(fail=True), serve_without_filter=False,
                       fallback_out_of_stock=frozenset({"i0"}))
    out = filt.run(state, scored(list(range(10)), list(np.linspace(1, 0, 10))))
    assert out.rows.tolist() == [1, 2, 3] and state.degraded == ["stock"]


def test_service_returns_k_unique_items_with_stage_timings() -> None:
    stock = MemoryStock(out=["i0", "i1"])
    service = make_service(stock=stock, ranker=PopularityRanker())
    result = service.recommend("u1", k=5)
    ids = [item.item_id for item in result.items]
    assert len(ids) == 5 and len(set(ids)) == 5 and not {"i0", "i1"} & set(ids)
    assert [item.rank for item in result.items] == [1, 2, 3, 4, 5]
    assert set(result.stage_ms) == {"retrieve", "rerank", "fairness", "stock", "total"}
    assert all(item.reasons for item in result.items)
    assert result.degraded == []


def test_prefetched_stock_gives_the_same_page_in_one_lookup() -> None:
    catalog = make_catalog(40)
    out_ids = [f"i{r}" for r in range(0, 30, 2)]
    retrieved = scored(list(range(40)), list(np.linspace(1, 0, 40)))
    ranked = retrieved.take(np.asarray([35, 3, 1, 0, 2, 30, 31, 7, 4, 6, 5, 9]))  # ranking reorders and cuts
    direct = StockFilter(catalog, MemoryStock(out=out_ids), serve_without_filter=False).run(request(k=5), ranked)
    stock = MemoryStock(out=out_ids)
    filt = StockFilter(catalog, stock, serve_without_filter=False)
    prefetch = filt.prefetch(retrieved)
    out = filt.run(request(k=5), ranked, prefetch)
    assert out.rows.tolist() == direct.rows.tolist() == [35, 3, 1, 30, 31]
    assert stock.calls == 1  # every retrieved candidate in the one lookup started before ranking


def test_prefetched_stock_outage_falls_back_to_the_snapshot() -> None:
    catalog = make_catalog(10)
    state = request(k=3)
    filt = StockFilter(catalog, MemoryStock(fail=True), serve_without_filter=False,
                       fallback_out_of_stock=frozenset({"i0"}))
    candidates = scored(list(range(10)), list(np.linspace(1, 0, 10)))
    out = filt.run(state, candidates, filt.prefetch(candidates))
    assert out.rows.tolist() == [1, 2, 3] and state.degraded == ["stock"]


def test_response_document_is_the_result_without_internal_fields() -> None:
    from dataclasses import asdict

    result = make_service(ranker=PopularityRanker()).recommend("u1", k=5)
    expected = asdict(result)
    del expected["stage_errors"]
    document = result.document()
    assert document == expected
    document["items"][0]["title"] = "added by explain"  # the caller may extend it: the result stays as it was
    assert not hasattr(result.items[0], "title") and "title" not in vars(result.items[0])


def naive_greedy(values: list[float], merchants: list[int], categories: list[int], slots: int, penalty: float,
                 cap: int) -> list[int]:
    chosen: list[int] = []
    for _ in range(slots):
        best, best_value = None, -np.inf
        for i, v in enumerate(values):
            if i in chosen or sum(merchants[j] == merchants[i] for j in chosen) >= cap:
                continue
            current = v - penalty * sum(categories[j] == categories[i] for j in chosen)
            if current > best_value:
                best, best_value = i, current
        if best is None:
            break
        chosen.append(best)
    return chosen


def test_lazy_greedy_matches_the_naive_definition() -> None:
    from tastebud.pipeline.stages.fairness import _greedy

    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        values = rng.normal(size=n).tolist()
        merchants = rng.integers(0, 6, n).tolist()
        categories = rng.integers(0, 4, n).tolist()
        slots, penalty, cap = int(rng.integers(1, n + 1)), float(rng.uniform(0, 1)), int(rng.integers(1, 4))
        order, _ = _greedy(values, merchants, categories, [False] * n, slots, penalty, cap)
        expected = naive_greedy(values, merchants, categories, slots, penalty, cap)
        assert order[: len(expected)].tolist() == expected
        assert sorted(order.tolist()) == list(range(n))
