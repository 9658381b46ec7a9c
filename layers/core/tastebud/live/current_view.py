"""One worker's current view: the served version with every live catalog change applied.

A change is durable in Redis first, with a sequence number; any worker that sees the sequence move (every request
reads it in the same round trip as the user's events) rebuilds its view before the request runs. Readers never
wait: a rebuild or a version swap replaces the view with one reference assignment, and a request keeps the view
it started with.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tastebud.adapters.redis_live_state import RedisLiveState
from tastebud.errors import DependencyError
from tastebud.live.view import LiveView
from tastebud.serving_version import ServingVersion

logger = logging.getLogger(__name__)

# The version -> its view over the live catalog state as Redis holds it now (tastebud.live.view.build_view).
BuildView = Callable[[ServingVersion], LiveView]


class CurrentView:
    def __init__(self, version: ServingVersion, *, build: BuildView, reads: RedisLiveState) -> None:
        self._build = build
        self._reads = reads  # the request path's client (its short deadline)
        self._lock = threading.Lock()  # one rebuild at a time; readers never take it
        self._view = build(version)

    @property
    def view(self) -> LiveView:
        """The view as this worker holds it (no I/O: health answers with it while Redis is down)."""
        return self._view

    def build(self, version: ServingVersion) -> LiveView:
        return self._build(version)

    def install(self, view: LiveView) -> None:
        """Serve ``view`` from the next request on (a new version, built and smoke-tested)."""
        with self._lock:
            self._view = view

    def caught_up(self) -> LiveView:
        """The view with every catalog change applied, whichever worker received it (one Redis round trip).

        Write routes validate ids against it: an item upserted through another worker exists here too.
        """
        self.sync(self._reads.catalog_seq())
        return self._view

    def sync(self, seq: int) -> None:
        """Rebuild the view over the live catalog state unless one at least as new is already serving."""
        if seq <= self._view.seq:
            return
        with self._lock:
            if self._view.seq < seq:
                self._view = self._build(self._view.version)

    def sync_after_write(self, seq: int) -> None:
        """The write is durable; applying it to this worker's view now only saves its next request the rebuild (which
        that request does anyway, seeing the sequence moved). A Redis failure here must not turn an acknowledged
        write into a 503: a slowed Redis (50 ms per reply) made an item upsert answer 503 after it was stored."""
        try:
            self.sync(seq)
        except DependencyError as exc:
            logger.warning("change %d stored; the view catches up on the next request (%s)", seq, exc)
