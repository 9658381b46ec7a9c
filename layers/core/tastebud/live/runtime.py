"""The local serving runtime: the current view, the live changes, version hot swaps and the background watcher.

It is what the HTTP handler, the CLI, bench and the tests talk to locally (``tastebud.serving_port.Serving``);
the composition root builds its Redis clients. One request reads the user's live events and the catalog change
sequence in ONE Redis round trip; when the sequence moved (an item upsert or a merchant change on any worker), the
view is rebuilt before the request runs, so every change is honoured by the next request (``CurrentView``).

Version swaps (``VersionFollower``): the watcher follows the artifacts' CURRENT pointer, and ``reload()`` serves
the admin route. A new version is loaded, gets the live state applied (fresh items re-embedded with ITS model), is
smoke-tested, and replaces the old view with one reference assignment. In-flight requests finish on the view they
started with; a version that fails to load or its smoke test is refused and the old one keeps serving.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tastebud.adapters.data_dir_log import DataDirLog
from tastebud.adapters.guarded_redis import breaker_state, within_request_budget
from tastebud.adapters.redis_clients import RedisClients
from tastebud.adapters.redis_live_state import LiveEvent, RedisLiveState
from tastebud.adapters.redis_stock import OutOfStockCache, RedisStockStore
from tastebud.artifacts import LocalArtifactStore, Manifest
from tastebud.errors import DependencyError, TastebudError
from tastebud.heap import refreeze
from tastebud.live.changes import LiveChangeWriter
from tastebud.live.current_view import CurrentView
from tastebud.live.item_vectors import ItemVectors
from tastebud.live.smoke import smoke_test
from tastebud.live.view import LiveView, build_view
from tastebud.live.watcher import Watcher
from tastebud.recommendation import Recommendation, StageTrace, Versions
from tastebud.serving_port import ServingState, SwapResult
from tastebud.serving_version import ServingVersion, load_version
from tastebud.settings import ServingKnobs, Settings
from tastebud.version_follower import Swap, VersionFollower, VersionRefusedError

__all__ = ["ServingRuntime", "SwapResult", "VersionRefusedError"]

logger = logging.getLogger(__name__)

SUPERVISE_INTERVAL_S = 0.5  # the watcher ticks at least this often: a dead embedded Redis is restarted within it
# What refuses a version (a broken file, a failed smoke test); anything else is a bug, logged with its stack.
REFUSABLE = (TastebudError, OSError, ValueError, RuntimeError)


class ServingRuntime:
    """See the module docstring. ``live`` takes the changes (events, items, merchants, reloads).

    Its parts hold no reference back to it (no cycle): a runtime a caller drops without ``close()`` is freed at
    once, with its Redis clients, not at some later garbage collection inside another request's Redis call.
    """

    def __init__(self, settings: Settings, clients: RedisClients, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.redis_budget_s = settings.knobs.redis_request_budget_ms / 1000
        self._clients = clients
        self._breaker = clients.breaker
        self._supervisor = clients.supervisor
        self._stock = RedisStockStore(clients.request, clients.breaker, write_client=clients.write)
        self._live_reads = RedisLiveState(clients.request, clients.breaker)
        self._live = RedisLiveState(clients.write, clients.breaker)
        self._live.load_scripts()
        loader = _VersionLoader(settings)
        version = loader.load(loader.current())
        snapshot = version.stock_snapshot
        self._stock.load_snapshot(version.manifest.data.get("fingerprint", version.name),
                                  snapshot.get("out_of_stock", []), snapshot.get("quantities", {}))
        # Last known out-of-stock ids (refreshed in the background): the stock stage's fallback during an outage.
        self._out_of_stock = OutOfStockCache(self._stock.all_out_of_stock())
        vectors = ItemVectors(self._live)
        current = self._current = CurrentView(version, reads=self._live_reads, build=_ViewBuilder(
            self._live, self._stock, settings.knobs, vectors, clock, self._out_of_stock))
        follower = self._follower = VersionFollower[str, LiveView](
            read_pointer=loader.current, build=lambda name: current.build(loader.load(name)),
            install=functools.partial(_install, current), serving=version.name, refusable=REFUSABLE,
            smoke_test=smoke_test, key=str)
        data_dir = loader.data_dir(version.manifest.data)
        self._changes = LiveChangeWriter(current, self._live, vectors,
                                         data_log=DataDirLog(data_dir) if data_dir is not None else None,
                                         clock=clock, redis_budget_s=self.redis_budget_s,
                                         reload=functools.partial(_reload, follower, current))
        tasks: list[Callable[[], object]] = [functools.partial(_follow, follower),
                                             functools.partial(_refresh, self._stock, self._out_of_stock)]
        if self._supervisor is not None:
            tasks.insert(0, self._supervisor.check)
        self._watcher = Watcher(tasks, interval_s=min(settings.watch_interval_s, SUPERVISE_INTERVAL_S))

    # -- what the API serves ----------------------------------------------------------------------------------------

    @property
    def view(self) -> LiveView:
        return self._current.view

    @property
    def versions(self) -> Versions:
        return self.view.version.versions

    @property
    def version_name(self) -> str:
        return self.view.version.name

    @property
    def catalog(self) -> Any:
        return self.view.catalog

    @property
    def stock(self) -> RedisStockStore:
        return self._stock

    @property
    def live(self) -> LiveChangeWriter:
        """The live changes this runtime takes (tastebud.serving_port.LiveChanges)."""
        return self._changes

    def state(self) -> ServingState:
        """What is served, read from one view (a swap during the call cannot mix two versions). The local view, not
        the caught-up one: health must answer without Redis (it reports Redis down, it does not fail with it)."""
        view = self.view
        version = view.version
        manifest = version.manifest
        return ServingState(versions=version.versions, catalog=view.catalog, version_name=version.name,
                            created_at=manifest.created_at, data_read_at=manifest.data.get("read_at"),
                            fresh_items=len(view.fresh), display_directory=version.directory)

    @within_request_budget
    def recommend(self, user_id: str, k: int = 20, domain: str = "all", lat: float | None = None,
                  lon: float | None = None, exclude_item_ids: tuple[str, ...] = (),
                  request_id: str | None = None, trace: StageTrace | None = None) -> Recommendation:
        degraded: list[str] = []
        events: list[LiveEvent] = []
        try:
            events, seq = self._live_reads.read_user(user_id)
            self._current.sync(seq)
        except DependencyError as exc:  # an outage, not a bug: one line, no stack; none while the circuit is open
            if breaker_state(self._breaker) != "down":
                logger.warning("live state unavailable, serving the version's history only: %s", exc)
            degraded.append("live_state")
        view = self.view
        if trace is not None:
            trace.display_directory = view.version.directory
        result = view.service.recommend(user_id, k, domain, lat, lon, exclude_item_ids, request_id,
                                        user=view.profile(user_id, events), trace=trace)
        return replace(result, degraded=[*degraded, *result.degraded]) if degraded else result

    @within_request_budget
    def set_stock(self, item_id: str, in_stock: bool, quantity: int | None) -> None:
        self._current.caught_up().service.set_stock(item_id, in_stock, quantity)
        self._out_of_stock.set(item_id, not in_stock or quantity == 0)

    def refresh_out_of_stock(self) -> None:
        """Copy Redis's out-of-stock set: what the stock stage falls back to while Redis is unreachable."""
        _refresh(self._stock, self._out_of_stock)

    def dependencies(self) -> dict[str, str]:
        """Each dependency: ok | degraded | down (what /health/ready reports)."""
        redis_state = breaker_state(self._breaker)
        if redis_state == "ok" and not self._stock.ping():
            redis_state = "down"
        return {"redis": redis_state, "artifacts": "degraded" if self._current_refused() else "ok",
                "item_embedder": "ok" if self.view.version.embedder is not None else "degraded"}

    def _current_refused(self) -> bool:
        """Whether CURRENT names a version that was refused (the old one serves)."""
        try:
            return self._follower.refusal(self._follower.read_pointer()) is not None
        except (TastebudError, OSError):
            return False

    # -- versions -------------------------------------------------------------------------------------------------

    def reload(self, version: str | None = None) -> SwapResult:
        """Load ``version`` (default: what CURRENT names), warm and smoke-test it, then swap atomically."""
        return _reload(self._follower, self._current, version)

    def check_current(self) -> SwapResult | None:
        """One watcher tick: swap when CURRENT names a version that is neither live nor already refused."""
        return _follow(self._follower)

    # -- lifecycle --------------------------------------------------------------------------------------------------

    def start_watching(self) -> None:
        self._watcher.start()

    def close(self) -> None:
        """Stop watching; close the clients built for it. The last user of an embedded Redis stops that server."""
        self._watcher.stop()
        self._clients.close()


class _VersionLoader:
    """Loads an artifact version by name, with the images of its data directory (new items' photos)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._store = LocalArtifactStore(settings.artifacts)

    def current(self) -> str:
        return self._store.current_version()

    def data_dir(self, manifest_data: dict[str, Any]) -> Path | None:
        """The settings' data directory, else the one the version was trained from (when it exists here)."""
        if self._settings.data_dir is not None:
            return self._settings.data_dir
        source = Path(str(manifest_data.get("source", "")))
        return source if str(source) and source.is_dir() else None

    def load(self, name: str) -> ServingVersion:
        directory = self._store.fetch(name, self._settings.artifacts)
        return load_version(directory, image_root=self.data_dir(Manifest.read(directory).data))


@dataclass(frozen=True)
class _ViewBuilder:
    """A version -> its view over the live catalog state as Redis holds it now."""

    live: RedisLiveState
    stock: RedisStockStore
    knobs: ServingKnobs
    vectors: ItemVectors
    clock: Callable[[], float]
    out_of_stock: OutOfStockCache

    def __call__(self, version: ServingVersion) -> LiveView:
        seq, items, merchants = self.live.catalog_state()
        return build_view(version, seq, items, merchants, stock=self.stock, knobs=self.knobs,
                          embed_missing=self.vectors.embed_missing, clock=self.clock, out_of_stock=self.out_of_stock)


def _install(current: CurrentView, view: LiveView) -> None:
    current.install(view)  # the old view's last reference goes here; nothing else holds it (see the class docstring)
    refreeze()  # a worker froze its start-up heap (tastebud.heap): let the old version go, freeze the new one


def _reload(follower: VersionFollower[str, LiveView], current: CurrentView, version: str | None) -> SwapResult:
    target = version or follower.read_pointer()
    swap = follower.swap_to(target)
    if swap is None:
        manifest = current.view.version.manifest
        return SwapResult(target, target, False, manifest.model_version, manifest.index_version, 0.0)
    return _swapped(swap)


def _follow(follower: VersionFollower[str, LiveView]) -> SwapResult | None:
    swap = follower.follow()
    return None if swap is None else _swapped(swap)


def _swapped(swap: Swap[str, LiveView]) -> SwapResult:
    # Changes that arrived while the new version loaded are applied by the next request (seq moved).
    manifest = swap.served.version.manifest
    logger.info("swapped artifact version %s -> %s in %.0f ms", swap.previous, swap.pointer, swap.build_ms)
    return SwapResult(swap.pointer, swap.previous, True, manifest.model_version, manifest.index_version,
                      swap.build_ms)


def _refresh(stock: RedisStockStore, out_of_stock: OutOfStockCache) -> None:
    out_of_stock.replace(stock.all_out_of_stock())
