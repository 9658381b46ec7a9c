"""The composition root: the ONE place that reads settings and builds clients, adapters and the service.

* ``build_runtime``: what serves requests. The embedded backend gets a ``ServingRuntime`` (live events, fresh
  items, merchant state, version hot swap); the AWS backend the service wired over AWS adapters.
* ``load_stages``: stages 1–3 of one artifact version, for offline evaluation.
The HTTP handler, the CLI, bench and the tests all build through here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tastebud.adapters.embedded.user_table import UserTable
from tastebud.adapters.embedded_redis_supervisor import EmbeddedRedisSupervisor
from tastebud.adapters.guarded_redis import SwappableClient, budget_bounded, no_retries, redis_breaker
from tastebud.adapters.redis_clients import RedisClients
from tastebud.adapters.redis_stock import embedded_redis
from tastebud.artifacts import LocalArtifactStore, Manifest
from tastebud.catalog import Catalog
from tastebud.errors import ArtifactsMissingError
from tastebud.live.runtime import ServingRuntime
from tastebud.pipeline.stages.fairness import FairnessDiversity
from tastebud.pipeline.stages.rerank import Reranker
from tastebud.pipeline.stages.retrieve import Retriever
from tastebud.recommendation import Versions
from tastebud.serving_port import Serving
from tastebud.serving_version import check_manifest, load_encoder, load_version
from tastebud.settings import ServingKnobs, Settings

__all__ = ["RankingStages", "build_runtime", "check_manifest", "lazy_runtime", "load_encoder", "load_stages",
           "redis_clients"]


@dataclass(frozen=True)
class RankingStages:
    """Stages 1–3 and what they read, loaded from one artifact version (offline evaluation)."""

    manifest: Manifest
    directory: Path
    catalog: Catalog
    users: UserTable
    retriever: Retriever
    reranker: Reranker
    fairness: FairnessDiversity

    @property
    def versions(self) -> Versions:
        m = self.manifest
        return Versions(m.model_version, m.index_version, m.feature_version)


def load_stages(artifacts: Path, knobs: ServingKnobs) -> RankingStages:
    """Load the current artifact version under ``artifacts`` and build the ranking stages."""
    if not artifacts.is_dir():
        raise ArtifactsMissingError(
            f"artifact directory {artifacts} does not exist; "
            "build it with `tastebud train --data DIR --out ARTIFACTS` (or `make demo`)"
        )
    version = load_version(LocalArtifactStore(artifacts).current_dir(), with_embedder=False)
    catalog = version.catalog
    return RankingStages(
        manifest=version.manifest,
        directory=version.directory,
        catalog=catalog,
        users=version.users,
        retriever=Retriever(catalog, version.encoder, version.index, knobs),
        reranker=Reranker(catalog, version.ranker),
        fairness=FairnessDiversity(catalog, knobs),
    )


def build_runtime(settings: Settings, *, redis_client: Any = None, clock: Callable[[], float] = time.time,
                  watch: bool = True) -> Serving:
    """What serves requests for these settings (see the module docstring). ``redis_client``: the caller's (tests,
    bench), not closed with the runtime; ``watch``: follow CURRENT and supervise the embedded Redis in a thread."""
    if settings.backend == "aws":
        from tastebud.composition.aws import build_aws_service

        return build_aws_service(settings, clock=clock)
    LocalArtifactStore(settings.artifacts).current_version()  # no artifacts: say so before starting anything
    clients = redis_clients(settings, redis_client)
    try:
        runtime = ServingRuntime(settings, clients, clock=clock)
    except BaseException:
        clients.close()  # e.g. a broken version: the Redis server this call started must not outlive it
        raise
    if watch:
        runtime.start_watching()
    return runtime


def redis_clients(settings: Settings, given: Any = None) -> RedisClients:
    """The local runtime's Redis clients (tastebud.adapters.redis_clients): ``given`` for both; else the server
    ``settings.redis_url`` names; else an embedded server in ``settings.stock_db_path``, supervised."""
    knobs = settings.knobs
    breaker = redis_breaker("redis", fail_max=knobs.redis_breaker_fail_max, reset_timeout_s=knobs.redis_breaker_reset_s)
    if given is not None:
        return RedisClients(given, given, breaker, owned=False)
    # The request path's deadline is the stock stage's budget; writes (events, catalog) may wait for fsync.
    deadline_s = knobs.redis_timeout_ms / 1000
    write_deadline_s = knobs.redis_write_timeout_ms / 1000
    if url := settings.redis_url:
        def client(timeout_s: float) -> Any:
            return budget_bounded(redis.Redis.from_url(url, socket_timeout=timeout_s,
                                                       socket_connect_timeout=timeout_s, retry=no_retries(),
                                                       driver_info=None))

        return RedisClients(client(deadline_s), client(write_deadline_s), breaker)
    db_path = settings.stock_db_path

    def start_server() -> Any:
        return budget_bounded(embedded_redis(db_path, socket_timeout=write_deadline_s))

    def request_client_for(server: Any) -> Any:
        return budget_bounded(redis.Redis(unix_socket_path=server.socket_file, socket_timeout=deadline_s,
                                          socket_connect_timeout=deadline_s, retry=no_retries(), driver_info=None))

    server = start_server()
    write_client = SwappableClient(server)
    request_client = SwappableClient(request_client_for(server))
    supervisor = EmbeddedRedisSupervisor(db_path, write_client, request_client, start_server=start_server,
                                         request_client_for=request_client_for, breaker=breaker)
    return RedisClients(request_client, write_client, breaker, supervisor)


def lazy_runtime(load_settings: Callable[[], Settings]) -> Callable[[], Serving]:
    """Build on first use, once per process (Lambda init or a local server worker's first request)."""
    lock = threading.Lock()
    built: list[Serving] = []

    def provide() -> Serving:
        if not built:
            with lock:
                if not built:
                    built.append(build_runtime(load_settings()))
        return built[0]

    return provide

