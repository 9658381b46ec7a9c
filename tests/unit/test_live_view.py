"""Live catalog state on hand-built catalogs: fresh items, deletions, merchant state and delivery range."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from tastebud.adapters.embedded.scann_index import BruteForceIndex
from tastebud.catalog import Catalog
from tastebud.domain import SOURCE_ANN, SOURCE_FRESH, ItemDraft
from tastebud.fresh_index import FreshItemsIndex
from tastebud.live.view import build_view
from tastebud.pipeline.stages.retrieve import Retriever
from tastebud.recommendation import RequestState
from tastebud.row_table import GrowingRows
from tastebud.serving_version import ServingVersion
from tastebud.settings import ServingKnobs

from factories import NOW, MemoryStock, PopularityRanker, VectorEncoder, context, make_catalog, make_users, unit_vectors

KNOBS = ServingKnobs(retrieve_k=8, history_candidates=3, popular_candidates=4)


def test_growing_rows_index_like_one_array() -> None:
    base = np.arange(12, dtype=np.float32).reshape(6, 2)
    table = GrowingRows(base).with_extra(np.asarray([[100, 101], [200, 201]], dtype=np.float32))
    rows = np.asarray([[0, 6], [7, 5]])
    expected = np.concatenate([base, [[100, 101], [200, 201]]])[rows]
    np.testing.assert_array_equal(table[rows], expected)
    assert table.shape == (8, 2) and table[np.asarray([1, 2])].shape == (2, 2)


def test_appended_items_extend_lookups_and_popularity_order() -> None:
    catalog = make_catalog(6, n_merchants=2)
    grown = catalog.appended(np.asarray(["a-much-longer-new-id"]), item_merchant=np.asarray([1]),
                             item_domain=np.asarray([1]), item_category=np.asarray([2]), item_price=np.asarray([3.0]),
                             item_created_at=np.asarray([NOW]), item_popularity=np.zeros(1),
                             item_recent_popularity=np.zeros(1), item_ctr=np.full(1, np.nan),
                             item_enabled=np.ones(1, bool), item_repeat_rate=np.full(1, np.nan),
                             item_reorder_days=np.full(1, np.nan))
    assert grown.size == 7 and grown.row_of("a-much-longer-new-id") == 6 and grown.row_of("i2") == 2
    assert grown.item_ids[6] == "a-much-longer-new-id"  # the id dtype widened
    assert grown.popular_rows("all")[-1] == 6 and 6 in grown.popular_rows("grocery").tolist()
    assert catalog.size == 6  # the original is untouched
    assert grown.related_offsets.size == 8 and catalog.related(np.asarray([5]))[1].size == 0
    assert grown.similar_offsets.size == 8 and grown.similar(np.asarray([6]))[1].size == 0


def test_appending_needs_every_item_array() -> None:
    with pytest.raises(ValueError, match="item_ctr"):
        make_catalog(3).appended(np.asarray(["x"]), item_merchant=np.asarray([0]))


def test_catalogs_saved_before_merchant_state_load_with_defaults(tmp_path) -> None:  # type: ignore[no-untyped-def]
    catalog = make_catalog(4)
    path = tmp_path / "catalog.npz"
    arrays = {k: v for k, v in np.load(_saved(catalog, path)).items()
              if k not in ("item_enabled", "merchant_open", "merchant_radius_km", "item_repeat_rate",
                           "item_reorder_days", "related_offsets", "related_rows", "related_scores",
                           "similar_offsets", "similar_rows", "similar_scores")}
    np.savez(path, **arrays)
    loaded = Catalog.load(path)
    assert loaded.item_enabled.all() and loaded.merchant_open.all() and np.isinf(loaded.merchant_radius_km).all()
    assert np.isnan(loaded.item_repeat_rate).all() and loaded.related_offsets.tolist() == [0] * 5
    assert loaded.similar_offsets.tolist() == [0] * 5 and loaded.similar_rows.size == 0


def _saved(catalog: Catalog, path):  # type: ignore[no-untyped-def]
    catalog.save(path)
    return path


def retriever(catalog: Catalog, vectors: np.ndarray, fresh: FreshItemsIndex | None = None) -> Retriever:
    from tastebud.fresh_index import EMPTY_FRESH_INDEX

    return Retriever(catalog, VectorEncoder(vectors), BruteForceIndex(vectors), KNOBS, fresh or EMPTY_FRESH_INDEX)


def test_closed_merchants_and_disabled_items_are_never_candidates_and_the_set_stays_full() -> None:
    catalog = make_catalog(60, n_merchants=6)
    vectors = unit_vectors(60)
    users = make_users({"u": [0, 6, 12]})  # all of merchant 0
    is_open = np.ones(6, bool)
    is_open[0] = False
    enabled = np.ones(60, bool)
    enabled[[1, 7]] = False
    closed = catalog.with_changes(merchant_open=is_open, item_enabled=enabled)

    candidates = retriever(closed, vectors).run(RequestState(users.user("u"), context()))

    assert not np.isin(closed.item_merchant[candidates.rows], [0]).any()
    assert not np.isin(candidates.rows, [1, 7]).any()
    assert int(((candidates.sources & SOURCE_ANN) > 0).sum()) >= KNOBS.retrieve_k


def test_merchants_out_of_delivery_range_are_filtered_by_the_request_location() -> None:
    catalog = make_catalog(30, n_merchants=6)  # merchants along lat 52.52, lon 13.30 .. 13.50
    radius = np.full(6, 3.0)
    near_only = catalog.with_changes(merchant_radius_km=radius)
    vectors = unit_vectors(30)
    users = make_users({"u": [0, 1]})
    far_west = retriever(near_only, vectors).run(RequestState(users.user("u"), context(lat=52.52, lon=13.30)))
    merchants = set(near_only.item_merchant[far_west.rows].tolist())
    assert merchants <= {0, 1}  # 13.30 and 13.34 are within 3 km; 13.38 and beyond are not


def test_fresh_items_are_retrieved_by_exact_search_and_marked() -> None:
    catalog = make_catalog(30, n_merchants=6)
    vectors = unit_vectors(30)
    users = make_users({"u": [4, 9]})
    query = VectorEncoder(vectors).encode(users.user("u"), context())
    assert query is not None
    # An existing row re-embedded as fresh exactly at the user's query: it must come first.
    fresh = FreshItemsIndex(np.asarray([20]), query[None, :])
    candidates = retriever(catalog, vectors, fresh).run(RequestState(users.user("u"), context()))
    assert candidates.rows[0] == 20 and candidates.sources[0] & SOURCE_FRESH


class TitleEmbedder:
    """ItemEmbedder double: the vector of the catalog row whose id is the draft's title (deterministic)."""

    def __init__(self, catalog: Catalog, vectors: np.ndarray) -> None:
        self.catalog, self.vectors = catalog, vectors
        self.calls = 0

    def embed(self, drafts: Sequence[ItemDraft], *, merchant_rows: np.ndarray, category_rows: np.ndarray,
              domains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        rows = [self.catalog.row_of(d.title) for d in drafts]
        return self.vectors[rows], np.ones((len(drafts), 4), np.float32)


def version_over(catalog: Catalog, vectors: np.ndarray, embedder: TitleEmbedder) -> ServingVersion:
    from tastebud.artifacts import Manifest

    manifest = Manifest(version="v1", model_version="m", index_version="i", feature_version="f", created_at=NOW - 10,
                        retrieval={"kind": "content", "text_dim": 4}, ranker={}, data={"read_at": NOW - 10})
    return ServingVersion(manifest=manifest, directory=Path("."), catalog=catalog,
                          users=make_users({"u": [3]}), encoder=VectorEncoder(vectors), index=BruteForceIndex(vectors),
                          ranker=PopularityRanker(), embedder=embedder, stock_snapshot={"out_of_stock": []})


def embed_with(version: ServingVersion):  # type: ignore[no-untyped-def]
    def embed(v, drafts, merchants, categories, domains):  # type: ignore[no-untyped-def]
        assert v.embedder is not None
        return v.embedder.embed(drafts, merchant_rows=merchants, category_rows=categories, domains=domains)

    return embed


def test_a_view_appends_new_items_indexes_them_and_drops_deleted_ones() -> None:
    catalog = make_catalog(30, n_merchants=6)
    vectors = unit_vectors(30)
    version = version_over(catalog, vectors, TitleEmbedder(catalog, vectors))
    items = {
        "new-1": {"item_id": "new-1", "merchant_id": "m2", "title": "i3", "category": "brand new category",
                  "price": 4.5, "received_at": NOW - 1},
        "i5": {"item_id": "i5", "deleted": True, "received_at": NOW - 1},
    }
    merchants = {"m1": {"merchant_id": "m1", "open": False, "delivery_radius_km": 2.0}}

    view = build_view(version, 3, items, merchants, stock=MemoryStock(), knobs=KNOBS,
                      embed_missing=embed_with(version), clock=lambda: NOW)

    row = view.catalog.row_of("new-1")
    assert row == 30 and view.seq == 3 and view.fresh_item_ids == frozenset({"new-1"})
    assert view.catalog.categories[view.catalog.item_category[row]] == "brand new category"
    assert not view.catalog.item_enabled[5] and not view.catalog.merchant_open[1]
    assert view.catalog.merchant_radius_km[1] == 2.0
    page = view.service.recommend("u", k=30, user=view.profile("u", []))
    served = {i.item_id for i in page.items}
    assert "new-1" in served and "i5" not in served
    assert not any(i.merchant_id == "m1" for i in page.items)
    new_item = next(i for i in page.items if i.item_id == "new-1")
    assert "new on the menu" in new_item.reasons


def test_upserts_the_version_already_holds_are_not_fresh_again() -> None:
    catalog = make_catalog(30, n_merchants=6)
    vectors = unit_vectors(30)
    embedder = TitleEmbedder(catalog, vectors)
    version = version_over(catalog, vectors, embedder)
    old = {"i4": {"item_id": "i4", "merchant_id": "m4", "title": "i4", "category": "sushi", "received_at": NOW - 99}}
    view = build_view(version, 1, old, {}, stock=MemoryStock(), knobs=KNOBS, embed_missing=embed_with(version),
                      clock=lambda: NOW)
    assert len(view.fresh) == 0 and embedder.calls == 0


def test_live_events_after_the_version_fold_into_the_profile() -> None:
    from tastebud.adapters.redis_live_state import LiveEvent

    catalog = make_catalog(30, n_merchants=6)
    vectors = unit_vectors(30)
    version = version_over(catalog, vectors, TitleEmbedder(catalog, vectors))
    view = build_view(version, 0, {}, {}, stock=MemoryStock(), knobs=KNOBS, embed_missing=embed_with(version),
                      clock=lambda: NOW)
    events = [LiveEvent("i9", "purchase", NOW - 5, NOW - 5), LiveEvent("i3", "click", NOW - 4, NOW - 4),
              LiveEvent("i8", "purchase", NOW - 3, NOW - 20),  # received before the version's data: already in it
              LiveEvent("i7", "impression", NOW - 2, NOW - 2), LiveEvent("gone", "purchase", NOW, NOW)]
    profile = view.profile("u", events)
    assert profile.history_rows.tolist() == [3, 9]  # i3 most recent (NOW-4), then i9; base i3 merged
    assert profile.history_weights.tolist() == [4.0, 3.0]  # base purchase of i3 (3) + click (1)


def test_history_fold_matches_the_training_snapshot(tiny_dataset) -> None:  # type: ignore[no-untyped-def]
    """Serving's fold of events == training's build_user_table on the same log (one history definition)."""
    from tastebud.domain import UserProfile
    from tastebud.features.history import with_events
    from tastebud_training.snapshot import build_catalog, build_user_table

    as_of = float(tiny_dataset.interactions["ts"].max() + 1)
    catalog = build_catalog(tiny_dataset, as_of)
    table = build_user_table(tiny_dataset, catalog, as_of, [])
    log = tiny_dataset.interactions
    for user_id in log["user_id"].drop_duplicates().head(25):
        events = log[log["user_id"] == user_id]
        folded = with_events(UserProfile.cold(user_id), catalog.rows_of(events["item_id"].tolist()),
                             events["event_type"].tolist(), events["ts"].to_numpy(np.float64))
        expected = table.user(user_id)
        np.testing.assert_array_equal(folded.history_rows, expected.history_rows)
        np.testing.assert_allclose(folded.history_weights, expected.history_weights)
        np.testing.assert_array_equal(folded.history_last_ts, expected.history_last_ts)
        np.testing.assert_allclose(folded.history_repeat, expected.history_repeat)
        # Events arrive in any order and in several batches (live events on top of a version): same history.
        shuffled = events.sample(frac=1.0, random_state=3)
        half = len(shuffled) // 2
        in_two = UserProfile.cold(user_id)
        for part in (shuffled.iloc[:half], shuffled.iloc[half:]):
            in_two = with_events(in_two, catalog.rows_of(part["item_id"].tolist()), part["event_type"].tolist(),
                                 part["ts"].to_numpy(np.float64))
        np.testing.assert_array_equal(in_two.history_rows, expected.history_rows)
        np.testing.assert_allclose(in_two.history_weights, expected.history_weights)
        np.testing.assert_allclose(in_two.history_repeat, expected.history_repeat)


def test_a_version_built_for_other_features_is_refused_naming_both() -> None:
    from tastebud.artifacts import Manifest
    from tastebud.errors import ArtifactMismatchError
    from tastebud.features.schema import FEATURE_VERSION
    from tastebud.serving_version import check_manifest

    manifest = Manifest(version="v", model_version="m", index_version="i", feature_version="ranker-features-v0",
                        created_at=0, retrieval={"kind": "two_tower"}, ranker={}, data={})
    with pytest.raises(ArtifactMismatchError, match=r"ranker-features-v0.*" + FEATURE_VERSION):
        check_manifest(manifest)

