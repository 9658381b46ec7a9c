"""Circuit breakers around backing services (pybreaker): Redis, and on AWS SageMaker, OpenSearch and DynamoDB.

After ``fail_max`` consecutive failed calls a breaker opens: calls are skipped for ``reset_timeout`` seconds and
fail at once with a ``DependencyError`` (no network call, so a dead dependency costs a request nothing instead
of a timeout per call); then ONE probe call is let through (half-open), which closes the breaker on success or
opens it again. Each process (a Lambda container, a server worker) has its own breakers.

One guarded call = one logical operation, retries included (the AWS adapters retry a transient error once with
jitter inside it), so ``fail_max`` counts requests that failed, not attempts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import pybreaker

from tastebud.errors import DependencyError

logger = logging.getLogger(__name__)
T = TypeVar("T")
# What /health/ready and the metrics report per dependency (and their Prometheus gauge values).
STATE_VALUES = {"ok": 0, "degraded": 1, "down": 2}


class _LogTransitions(pybreaker.CircuitBreakerListener):
    def state_change(self, breaker: pybreaker.CircuitBreaker, old: Any, new: Any) -> None:
        logger.warning("circuit %s: %s -> %s", breaker.name, getattr(old, "name", old), getattr(new, "name", new))


class _NotCounted(Exception):
    """Carries an error that says nothing about the dependency's health (e.g. a 404 for one document)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def circuit_breaker(name: str, *, fail_max: int, reset_timeout_s: float,
                    throw_new_error_on_trip: bool = True) -> pybreaker.CircuitBreaker:
    """A breaker whose transitions are logged (one WARNING line each: closed -> open -> half-open -> closed)."""
    return pybreaker.CircuitBreaker(fail_max=fail_max, reset_timeout=reset_timeout_s, name=name,
                                    listeners=[_LogTransitions()], exclude=[_NotCounted],
                                    throw_new_error_on_trip=throw_new_error_on_trip)


def breaker_state(breaker: pybreaker.CircuitBreaker | None) -> str:
    """ok (closed, no recent failure) | degraded (failures counting, or half-open) | down (open)."""
    if breaker is None:
        return "ok"
    state = breaker.current_state
    if state == pybreaker.STATE_OPEN:
        return "down"
    if state == pybreaker.STATE_HALF_OPEN or breaker.fail_counter:
        return "degraded"
    return "ok"


def guarded_call(breaker: pybreaker.CircuitBreaker | None, stage: str, what: str, call: Callable[[], T], *,
                 describe: Callable[[Exception], str] = lambda exc: f"{type(exc).__name__}: {exc}",
                 counts: Callable[[Exception], bool] | None = None) -> T:
    """Run one remote operation through ``breaker``; every failure leaves as a ``DependencyError(stage)``.

    ``call`` may raise SDK errors or DependencyError. ``counts(exc)`` says whether a failure counts against the
    dependency (default: every failure does); one that does not still fails the call, but counts as an answer
    (the service was reachable). An open circuit raises at once, without calling ``call``.
    """

    def attempt() -> T:
        try:
            return call()
        except Exception as exc:
            if counts is None or counts(exc):
                raise
            raise _NotCounted(exc) from exc

    try:
        return attempt() if breaker is None else breaker.call(attempt)
    except pybreaker.CircuitBreakerError as exc:
        assert breaker is not None
        raise DependencyError(stage, f"{what} skipped: circuit {breaker.name} open after {breaker.fail_max} "
                                     f"consecutive failures (next probe within {breaker.reset_timeout:g} s)") from exc
    except _NotCounted as wrapped:
        error = wrapped.error
        if isinstance(error, DependencyError):
            raise error from None
        raise DependencyError(stage, f"{what}: {describe(error)}") from error
    except DependencyError:
        raise
    except Exception as exc:
        raise DependencyError(stage, f"{what}: {describe(exc)}") from exc
