"""The local runtime's background thread: keeps the embedded Redis alive, follows CURRENT, refreshes stock.

Each tick runs the tasks in order. An outage skips the tick with one line; a bug is logged with its stack and the
thread goes on: a watcher that died would silently stop hot swaps and Redis restarts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from tastebud.errors import DependencyError

logger = logging.getLogger(__name__)


class Watcher:
    def __init__(self, tasks: Sequence[Callable[[], object]], *, interval_s: float) -> None:
        self._tasks = tuple(tasks)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        try:
            for task in self._tasks:
                task()
        except DependencyError as exc:
            logger.warning("background refresh skipped: %s", exc)
        except Exception:  # the watcher must outlive any bug; the bug is logged with its stack
            logger.exception("artifact watcher / redis supervisor failed")

    def start(self) -> None:
        if self._thread is not None:
            return

        def watch() -> None:
            while not self._stop.wait(self._interval_s):
                self.tick()

        self._thread = threading.Thread(target=watch, name="tastebud-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
