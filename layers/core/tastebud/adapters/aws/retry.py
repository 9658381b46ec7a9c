"""Retries with capped exponential backoff and full jitter (AWS Architecture Blog, "Exponential Backoff And
Jitter"), with an injectable sleep and random source so that tests run with zero delay and no flakiness."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` calls at most; before call n+1 sleep uniform(0, min(max_delay, base_delay * 2**n)).

    The request path uses one retry with a few milliseconds of jitter (its budget is ~100 ms); batch paths
    (Kinesis, bulk loads) use more attempts and longer delays.
    """

    attempts: int = 2
    base_delay: float = 0.005
    max_delay: float = 0.05
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    uniform: Callable[[float, float], float] = field(default=random.uniform, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be >= 1")

    def delay(self, retry: int) -> float:
        """Jittered delay before retry number ``retry`` (0-based)."""
        return self.uniform(0.0, min(self.max_delay, self.base_delay * (2**retry)))

    def call(self, operation: Callable[[], T], retryable: Callable[[Exception], bool]) -> T:
        """Run ``operation``; retry it while it raises an exception ``retryable`` accepts."""
        for retry in range(self.attempts):
            try:
                return operation()
            except Exception as exc:
                if retry + 1 >= self.attempts or not retryable(exc):
                    raise
                self.sleep(self.delay(retry))
        raise AssertionError("unreachable")  # pragma: no cover


NO_RETRY = RetryPolicy(attempts=1)
