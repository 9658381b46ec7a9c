"""The recent window behind ``GET /metrics.json`` and the dashboard: samples per series over the last seconds."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable

import numpy as np

WINDOW_SAMPLES = 4096  # per series; the window is the last WINDOW_S seconds or this many samples


def percentile(values: np.ndarray, q: float) -> float:
    return round(float(np.percentile(values, q)), 3)


class RecentWindow:
    """(time, value) samples per series, for p50/p99 and rates over the last ``window_s`` seconds."""

    def __init__(self, window_s: float, clock: Callable[[], float]) -> None:
        self.window_s = window_s
        self._clock = clock
        self._series: dict[tuple[str, str | None], deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()

    def add(self, key: tuple[str, str | None], value: float, at: float) -> None:
        self.add_all([(key, value)], at)

    def add_all(self, samples: Iterable[tuple[tuple[str, str | None], float]], at: float) -> None:
        """Several series' samples under one lock (a request's ~20 observations)."""
        with self._lock:
            for key, value in samples:
                series = self._series.get(key)
                if series is None:
                    series = self._series[key] = deque(maxlen=WINDOW_SAMPLES)
                series.append((at, value))

    def values(self, key: tuple[str, str | None]) -> np.ndarray:
        since = self._clock() - self.window_s
        with self._lock:
            series = list(self._series.get(key, ()))
        return np.asarray([v for t, v in series if t >= since], dtype=np.float64)

    def keys(self) -> list[tuple[str, str | None]]:
        with self._lock:
            return list(self._series)
