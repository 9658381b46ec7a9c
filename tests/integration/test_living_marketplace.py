"""The living marketplace on one machine: events, catalog and merchant changes, durable state, version hot swap.

GIVEN a runtime over the tiny trained artifacts with its own embedded Redis and data directory,
WHEN the marketplace changes through the runtime (the same calls the HTTP routes make),
THEN the very next request reflects it, nothing is applied twice, and versions swap with zero failed requests.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tastebud.api.http import create_handler
from tastebud.artifacts import CURRENT, LocalArtifactStore, Manifest
from tastebud.composition.local import build_runtime
from tastebud.domain import SOURCE_HISTORY, RequestContext
from tastebud.live.runtime import ServingRuntime, VersionRefusedError
from tastebud.local_server import LocalLambdaContext
from tastebud.recommendation import RequestState
from tastebud.settings import Settings

from helpers import load_event, private_artifacts, response_json

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("frozen_heap")]  # as a serving worker (conftest)
CONTEXT = LocalLambdaContext(aws_request_id="test")


@pytest.fixture
def artifacts(tiny_artifacts: Path, tmp_path: Path) -> Path:
    """A private copy: tests publish versions into it."""
    return private_artifacts(tiny_artifacts, tmp_path / "artifacts")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def start(artifacts: Path, data_dir: Path, redis_path: Path) -> ServingRuntime:
    runtime = build_runtime(Settings(artifacts=artifacts, redis_db_path=redis_path, data_dir=data_dir), watch=False)
    assert isinstance(runtime, ServingRuntime)
    return runtime


@pytest.fixture
def runtime(artifacts: Path, data_dir: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    runtime = start(artifacts, data_dir, tmp_path / "redis" / "live.rdb")
    yield runtime
    runtime.close()


def an_item_to_buy(runtime: ServingRuntime, user_id: str) -> str:
    """An in-stock item of an open merchant that the user has never had a positive on."""
    catalog = runtime.view.catalog
    seen = set(runtime.view.profile(user_id, []).history_rows.tolist())
    for row in catalog.popular_rows("all")[50:].tolist():
        item_id = str(catalog.item_ids[row])
        if row not in seen and not runtime.stock.out_of_stock([item_id])[0]:
            return item_id
    raise AssertionError("no candidate item")


def purchase(event_id: str, user_id: str, item_id: str, **extra: object) -> dict[str, object]:
    return {"event_id": event_id, "user_id": user_id, "item_id": item_id, "event_type": "purchase",
            "timestamp": time.time() - 5, **extra}


def history_candidates(runtime: ServingRuntime, user_id: str) -> list[str]:
    """Item ids that the retrieval stage returned from the user's history (source bit HISTORY)."""
    events, _ = runtime._live_reads.read_user(user_id)
    view = runtime.view
    request = RequestState(view.profile(user_id, events), RequestContext(now=time.time()))
    candidates = view.service.retriever.run(request)
    rows = candidates.rows[(candidates.sources & SOURCE_HISTORY) > 0]
    return view.catalog.item_ids[rows].tolist()


def latest_positive(runtime: ServingRuntime, user_id: str) -> str:
    profile = runtime.view.profile(user_id, runtime._live_reads.read_user(user_id)[0])
    return str(runtime.view.catalog.item_ids[profile.history_rows[0]])


def test_an_event_is_reflected_in_the_next_recommendation(runtime: ServingRuntime, active_user: str) -> None:
    item = an_item_to_buy(runtime, active_user)
    assert item not in history_candidates(runtime, active_user)

    result = runtime.live.ingest_events([purchase("ev-1", active_user, item)])

    assert (result.accepted, result.duplicates, result.failures) == (1, 0, [])
    assert latest_positive(runtime, active_user) == item
    assert item in history_candidates(runtime, active_user)
    page = runtime.recommend(active_user, k=100)
    assert item in [i.item_id for i in page.items]


def test_a_cold_user_becomes_known_by_an_event(runtime: ServingRuntime) -> None:
    item = an_item_to_buy(runtime, "brand-new-user")
    runtime.live.ingest_events([purchase("ev-cold", "brand-new-user", item)])
    assert history_candidates(runtime, "brand-new-user") == [item]


def test_a_replayed_batch_changes_nothing(runtime: ServingRuntime, active_user: str) -> None:
    item = an_item_to_buy(runtime, active_user)
    batch = [purchase("ev-a", active_user, item), purchase("ev-b", active_user, item, quantity=2)]
    assert runtime.live.ingest_events(batch).accepted == 2
    profile = runtime.view.profile(active_user, runtime._live_reads.read_user(active_user)[0])

    replay = runtime.live.ingest_events(batch)

    assert (replay.accepted, replay.duplicates) == (0, 2)
    again = runtime.view.profile(active_user, runtime._live_reads.read_user(active_user)[0])
    np.testing.assert_array_equal(again.history_weights, profile.history_weights)
    row = runtime.view.catalog.row_of(item)
    assert float(again.history_weights[again.history_rows == row][0]) == 6.0  # two purchases, counted once each


def test_bad_records_are_reported_one_by_one_and_the_rest_applied(runtime: ServingRuntime, active_user: str) -> None:
    item = an_item_to_buy(runtime, active_user)
    batch: list[object] = [
        purchase("ok-1", active_user, item),
        purchase("bad-item", active_user, "no-such-item"),
        purchase("x" * 129, active_user, item),
        purchase("future", active_user, item, timestamp=time.time() + 86400),
        purchase("nan", active_user, item, timestamp=float("nan")),
        {"event_id": "kind", "user_id": active_user, "item_id": item, "event_type": "like", "timestamp": 1},
        purchase("ok-1", active_user, item),
        "not an object",
    ]
    result = runtime.live.ingest_events(batch)
    assert result.accepted == 1
    fields = {(f.index, f.field) for f in result.failures}
    assert fields == {(1, "item_id"), (2, "event_id"), (3, "timestamp"), (4, "timestamp"), (5, "event_type"),
                      (6, "event_id"), (7, "body")}
    assert all(f.message for f in result.failures)


def test_events_go_to_the_data_directory_partitioned_by_day(runtime: ServingRuntime, data_dir: Path,
                                                            active_user: str) -> None:
    item = an_item_to_buy(runtime, active_user)
    runtime.live.ingest_events([purchase("log-1", active_user, item, timestamp=1_764_000_000)])
    runtime.live.ingest_events([purchase("log-1", active_user, item, timestamp=1_764_000_000)])  # a replay: not logged
    part = data_dir / "interactions" / "day=2025-11-24.csv"
    frame = pd.read_csv(part, dtype=str)
    assert frame[["event_id", "user_id", "item_id", "event_type"]].values.tolist() == [
        ["log-1", active_user, item, "purchase"]]


def test_the_next_training_reads_the_logged_events(tiny_data: Path, tmp_path: Path) -> None:
    from tastebud.adapters.data_dir_log import DataDirLog
    from tastebud.event_codec import parse_event
    from tastebud_training.data import load_dataset

    data = tmp_path / "copy"
    shutil.copytree(tiny_data, data)
    before = load_dataset(data)
    item = str(before.items["item_id"].iloc[0])
    DataDirLog(data).append_events([parse_event(purchase("t-1", "log-user", item), require_event_id=True)])

    after = load_dataset(data)

    assert len(after.interactions) == len(before.interactions) + 1
    assert after.interactions["user_id"].eq("log-user").sum() == 1


def test_acknowledged_events_survive_a_restart(artifacts: Path, data_dir: Path, tmp_path: Path,
                                               active_user: str) -> None:
    redis_path = tmp_path / "restart" / "live.rdb"
    first = start(artifacts, data_dir, redis_path)
    item = an_item_to_buy(first, active_user)
    assert first.live.ingest_events([purchase("durable-1", active_user, item)]).accepted == 1
    first.close()
    first._live._client.shutdown(nosave=True)  # a crash: no final save, only the append-only file remains

    second = start(artifacts, data_dir, redis_path)
    try:
        assert latest_positive(second, active_user) == item
        assert second.live.ingest_events([purchase("durable-1", active_user, item)]).duplicates == 1
    finally:
        second.close()


def test_a_closed_merchant_is_never_served_and_the_page_stays_full(runtime: ServingRuntime, active_user: str) -> None:
    first = runtime.recommend(active_user, k=20)
    merchant = first.items[0].merchant_id

    runtime.live.set_merchant(merchant, False, None)

    page = runtime.recommend(active_user, k=20)
    assert merchant not in {i.merchant_id for i in page.items}
    assert len(page.items) == 20
    runtime.live.set_merchant(merchant, True, None)
    assert merchant in {i.merchant_id for i in runtime.recommend(active_user, k=20).items}


def test_a_merchant_out_of_delivery_range_is_not_served(runtime: ServingRuntime, active_user: str) -> None:
    catalog = runtime.view.catalog
    first = runtime.recommend(active_user, k=20, lat=52.52, lon=13.40)
    merchant = first.items[0].merchant_id
    row = catalog.merchant_row_of(merchant)
    assert row is not None
    # A radius that ends 1 km short of the request's location.
    from tastebud.features.ranker_features import haversine_km

    distance = float(haversine_km(52.52, 13.40, catalog.merchant_lat[[row]], catalog.merchant_lon[[row]])[0])
    runtime.live.set_merchant(merchant, True, max(distance - 1.0, 0.1))

    near = runtime.recommend(active_user, k=20, lat=52.52, lon=13.40)
    assert merchant not in {i.merchant_id for i in near.items}
    at_merchant = runtime.recommend(active_user, k=100, lat=float(catalog.merchant_lat[row]),
                                    lon=float(catalog.merchant_lon[row]))
    assert merchant in {i.merchant_id for i in at_merchant.items}


def test_a_deleted_item_is_never_served(runtime: ServingRuntime, active_user: str) -> None:
    top = runtime.recommend(active_user, k=10).items[0].item_id
    runtime.live.delete_item(top)
    for _ in range(3):
        assert top not in [i.item_id for i in runtime.recommend(active_user, k=100).items]


def publish_copy(artifacts: Path, *, name: str, model_version: str, break_with: str | None = None) -> None:
    """Publish a copy of the live version under a new name (what `tastebud train` does, minus the training)."""
    store = LocalArtifactStore(artifacts)
    source = store.current_dir()
    staging = store.staging_dir(name)
    shutil.copytree(source, staging, dirs_exist_ok=True)
    manifest = json.loads((staging / "manifest.json").read_text())
    manifest.update(version=name, model_version=model_version)
    if break_with == "features":
        manifest["feature_version"] = "ranker-features-v0"
    (staging / "manifest.json").write_text(json.dumps(manifest))
    if break_with == "ranker":
        (staging / "ranker.onnx").write_bytes(b"not an onnx model")
    store.publish(staging, name)


def test_a_hot_swap_under_concurrent_requests_fails_nothing(runtime: ServingRuntime, artifacts: Path,
                                                            active_user: str) -> None:
    failures: list[object] = []
    models: list[str] = []
    stop = threading.Event()

    def client() -> None:
        own = create_handler(lambda: runtime)  # one resolver per thread, as one per worker; the runtime is shared
        while not stop.is_set():
            response = own(load_event("recommend", user_id=active_user, k=10), CONTEXT)
            if response["statusCode"] != 200 or len(response_json(response)["items"]) != 10:
                failures.append(response)
            else:
                models.append(response_json(response)["model_version"])

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        publish_copy(artifacts, name="v-next", model_version="model-next")
        swap = runtime.check_current()
        publish_copy(artifacts, name="v-after", model_version="model-after")
        runtime.check_current()
        time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert failures == []
    assert swap is not None and swap.swapped and swap.version == "v-next"
    assert models[-1] == "model-after" and "model-next" in models
    assert runtime.version_name == "v-after"


def test_live_changes_are_reapplied_on_top_of_a_new_version(runtime: ServingRuntime, artifacts: Path,
                                                            active_user: str) -> None:
    item = an_item_to_buy(runtime, active_user)
    runtime.live.ingest_events([purchase("carry-1", active_user, item)])
    merchant = runtime.recommend(active_user, k=5).items[0].merchant_id
    runtime.live.set_merchant(merchant, False, None)

    publish_copy(artifacts, name="v-carry", model_version="model-carry")
    runtime.reload()

    assert latest_positive(runtime, active_user) == item
    assert merchant not in {i.merchant_id for i in runtime.recommend(active_user, k=20).items}


@pytest.mark.parametrize(("broken", "message"), [("ranker", "ranker.onnx"),
                                                  ("features", "ranker-features-v0")])
def test_a_broken_version_is_refused_and_the_old_one_keeps_serving(runtime: ServingRuntime, artifacts: Path,
                                                                   active_user: str, broken: str,
                                                                   message: str) -> None:
    live = runtime.version_name
    publish_copy(artifacts, name=f"v-broken-{broken}", model_version="model-broken", break_with=broken)

    with pytest.raises(VersionRefusedError) as refused:
        runtime.reload()

    assert message in str(refused.value) or broken == "ranker"
    assert runtime.version_name == live
    assert runtime.check_current() is None  # the watcher does not retry a refused version in a loop
    assert len(runtime.recommend(active_user, k=10).items) == 10
    assert (artifacts / CURRENT).read_text().strip() == f"v-broken-{broken}"
    assert Manifest.read(runtime.view.version.directory).version == live


def test_the_http_routes_follow_the_contract(runtime: ServingRuntime, active_user: str) -> None:
    handler = create_handler(lambda: runtime)
    item = an_item_to_buy(runtime, active_user)
    event = load_event("events_post", events=[purchase("http-1", active_user, item),
                                              purchase("http-2", active_user, "unknown-item")])
    body = response_json(handler(event, CONTEXT))
    assert body == {"accepted": 1, "duplicates": 0, "failures": [
        {"index": 1, "event_id": "http-2", "field": "item_id", "message": "unknown item_id 'unknown-item'"}]}

    merchant = runtime.recommend(active_user, k=5).items[0].merchant_id
    closing = load_event("merchant_close")
    closing["pathParameters"] = {"merchant_id": merchant}
    closing["rawPath"] = closing["requestContext"]["http"]["path"] = f"/v1/merchants/{merchant}"
    response = handler(closing, CONTEXT)
    assert response["statusCode"] == 200 and response_json(response)["open"] is False

    unknown = load_event("merchant_close")
    assert handler(unknown, CONTEXT)["statusCode"] in (200, 404)
    unknown_merchant = handler(load_event("item_upsert", merchant_id="no-such-merchant"), CONTEXT)
    assert unknown_merchant["statusCode"] == 404 and response_json(unknown_merchant)["error"]["field"] == "merchant_id"
    control = handler(load_event("item_upsert", merchant_id="m\r1"), CONTEXT)
    assert control["statusCode"] == 400 and response_json(control)["error"]["field"] == "merchant_id"
    assert response_json(handler(load_event("item_upsert", price=-1), CONTEXT))["error"]["field"] == "price"


def test_a_new_item_is_embedded_retrieved_and_served_when_it_matches(runtime: ServingRuntime, tiny_dataset,  # type: ignore[no-untyped-def]
                                                                     active_user: str) -> None:
    from tastebud.domain import SOURCE_FRESH, ItemDraft

    assert runtime.view.version.embedder is not None, "the version must ship its ONNX item embedder"
    items = tiny_dataset.items.set_index("item_id")
    favourite = latest_positive(runtime, active_user)
    base = items.loc[favourite]
    draft = ItemDraft(item_id="new-signature-dish", merchant_id=str(base["merchant_id"]),
                      title=f"{base['title']} (chef's special)", category=str(base["category"]),
                      description=str(base["description"]), price=float(base["price"]))

    runtime.live.upsert_items([draft])

    view = runtime.view
    row = view.catalog.row_of("new-signature-dish")
    assert row is not None and "new-signature-dish" in view.fresh_item_ids
    events, _ = runtime._live_reads.read_user(active_user)
    request = RequestState(view.profile(active_user, events), RequestContext(now=time.time()))
    candidates = view.service.retriever.run(request)
    fresh = candidates.rows[(candidates.sources & SOURCE_FRESH) > 0].tolist()
    assert row in fresh
    served = runtime.recommend(active_user, k=100)
    assert "new-signature-dish" in [i.item_id for i in served.items]


def test_an_item_upsert_with_a_bad_image_is_refused_and_nothing_is_stored(runtime: ServingRuntime) -> None:
    from tastebud.domain import ItemDraft
    from tastebud.errors import NotFoundError

    merchant = str(runtime.view.catalog.merchant_ids[0])
    seq = runtime.view.seq
    with pytest.raises(NotFoundError) as refused:
        runtime.live.upsert_items([ItemDraft("bad-photo", merchant, "Soup", "soups", image_uri="/no/such/photo.png")])
    assert refused.value.field == "image_uri"
    assert runtime.view.catalog.row_of("bad-photo") is None and runtime._live.catalog_seq() == seq


def test_two_workers_see_each_others_changes_on_their_next_call(artifacts: Path, data_dir: Path,
                                                                tmp_path: Path, active_user: str) -> None:
    """Two runtimes on one embedded Redis, as two `tastebud serve` workers are."""
    from tastebud.domain import ItemDraft

    redis_path = tmp_path / "shared" / "live.rdb"
    first, second = start(artifacts, data_dir, redis_path), start(artifacts, data_dir, redis_path)
    try:
        merchant = str(first.view.catalog.merchant_ids[0])
        first.live.upsert_items([ItemDraft("made-on-worker-1", merchant, "Lentil soup", "soups")])
        event = purchase("on-worker-2", active_user, "made-on-worker-1")
        assert second.live.ingest_events([event]).accepted == 1  # worker 2 knows the item without a request first
        second.live.set_merchant(merchant, False, None)
        assert merchant not in {i.merchant_id for i in first.recommend(active_user, k=20).items}
        second.live.delete_item("made-on-worker-1")
        assert "made-on-worker-1" not in [i.item_id for i in first.recommend(active_user, k=100).items]
        assert first.view.catalog.row_of("made-on-worker-1") is None  # a deleted fresh item is gone from the view
    finally:
        second.close()
        first.close()


def test_a_swap_lets_the_old_version_go_in_a_worker_that_froze_its_heap(runtime: ServingRuntime,
                                                                         artifacts: Path) -> None:
    import gc
    import weakref

    from tastebud import heap

    old = weakref.ref(runtime.view.version)
    heap.freeze_startup_heap()  # as each HTTP worker does after start-up (the module's heap is frozen too: conftest)
    publish_copy(artifacts, name="v-release", model_version="model-release")
    assert runtime.reload().swapped
    assert old() is None  # released by the swap's refreeze, not kept forever in the frozen generation
    assert gc.get_freeze_count() > 0


def test_a_runtime_dropped_without_close_is_freed_by_reference_counting(artifacts: Path, data_dir: Path,
                                                                        tmp_path: Path) -> None:
    """Its parts hold no reference back to it (no cycle). With one, runtimes that tests dropped lived on until a
    garbage collection freed them, with their embedded Redis clients, inside a later request's Redis call: that
    request's 50 ms Redis budget was spent and a write answered 503."""
    import gc
    import weakref

    runtime = start(artifacts, data_dir, tmp_path / "dropped" / "live.rdb")
    clients = runtime._clients
    dropped = weakref.ref(runtime)
    gc.disable()
    try:
        del runtime
        assert dropped() is None
    finally:
        gc.enable()
        clients.close()
