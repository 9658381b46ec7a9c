"""One request's Redis calls share a budget (issue 21): once spent, the remaining calls are skipped at once.

A worker serves one request at a time, so a request that made several 50 ms calls to a slowed Redis held the
requests queued behind it (a recommendation waited 378 ms in the fault soak). The budget counts time spent in
Redis calls only: computing between them (an item's embedding) does not spend it.
"""

from __future__ import annotations

import time

import pybreaker
import pytest

from tastebud.adapters.guarded_redis import guarded, redis_breaker, request_budget
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
