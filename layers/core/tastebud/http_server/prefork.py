"""`tastebud serve`: a gunicorn master that forks uvicorn worker processes, each serving :class:`LambdaAsgiApp`.

Why this pair (docs/SERVING.md has the measurements):

* gunicorn's master supervises the workers: it forks ``workers`` processes that share one listening socket,
  replaces a worker that dies, restarts them one by one on SIGHUP, and on SIGTERM stops accepting, lets each
  worker finish its in-flight requests (``graceful_timeout``) and exits. Forking lets the master import heavy
  modules once (``preload``: ScaNN imports TensorFlow, 3.4 s and most of a worker's memory) and share those pages
  copy-on-write, while each worker still builds its own service from the factory after the fork.
* uvicorn's worker speaks HTTP/1.1 with keep-alive through uvloop + httptools: every TCP socket is TCP_NODELAY, so
  a response is never held back by Nagle + delayed ACK (the stdlib server's 40 ms stall), and per-request
  overhead is tens of microseconds.

The service is built per worker process by ``handler_factory`` (called at the worker's lifespan start-up, before
it accepts connections); nothing built in the master (sockets, Redis connections, ONNX sessions) is shared.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from uvicorn_worker import UvicornWorker

from tastebud.api.request_guard import MAX_BODY_BYTES
from tastebud.http_server.asgi import HandlerFactory, LambdaAsgiApp
from tastebud.http_server.balance import ConnectionBalance
from tastebud.http_server.draining import DrainingServer
from tastebud.http_server.timeline import WorkerTimeline


class BalancedDrainingServer(DrainingServer):
    """The draining server that also publishes its open connections on every tick (0.1 s; see balance.py)."""

    async def on_tick(self, counter: int) -> bool:
        publish = getattr(self.config.app, "publish_connections", None)
        if publish is not None:
            publish()
        return await super().on_tick(counter)


class TastebudWorker(UvicornWorker):
    """uvicorn's gunicorn worker with uvloop + httptools, lifespan on (the factory runs there), no websockets and
    no uvicorn access log (LambdaAsgiApp writes JSON access lines with the request id)."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": "uvloop", "http": "httptools", "lifespan": "on", "ws": "none",
                                     "access_log": False, "server_header": False, "date_header": True}
    STOPPING: ClassVar[tuple[int, ...]] = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
    # The master's signal queue as this worker inherited it at the fork (set by post_fork).
    masters_signals: queue.SimpleQueue[Any] | None = None

    def init_signals(self) -> None:
        """uvicorn_worker's handlers, then the stop the master asked for while this worker was being forked.

        From the fork until here the worker still runs the master's Python handlers, which only queue a signal in
        the worker's copy of the master's queue. A SIGTERM from the master's stop (``kill_workers``) that lands in
        that window was lost: the worker went on serving and the master waited its whole ``graceful_timeout``
        (30 s) before killing it; `tastebud serve` outlived a killed `tastebud chaos`, which restarts workers, by
        20 s. Now the worker acts on it: SIGTERM's action is the default one here (uvicorn's server installs its
        own when it starts), so a worker that has not booted ends at once.
        """
        super().init_signals()
        asked_to_stop = False
        while self.masters_signals is not None:
            try:
                asked_to_stop |= self.masters_signals.get_nowait() in self.STOPPING
            except queue.Empty:
                break
        if asked_to_stop:  # SIGTERM for a quick stop too: SIGQUIT's default action would dump core
            os.kill(os.getpid(), signal.SIGTERM)

    async def _serve(self) -> None:
        """uvicorn_worker's own ``_serve`` with a :class:`DrainingServer` (no request lost when a worker stops)."""
        self.config.app = self.wsgi
        server = BalancedDrainingServer(config=self.config)
        if isinstance(self.wsgi, LambdaAsgiApp):
            self.wsgi.count_connections_with(lambda: len(server.server_state.connections))
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


@dataclass(frozen=True)
class ServerOptions:
    """How the local server listens and manages its workers."""

    host: str = "127.0.0.1"
    port: int = 3000
    workers: int = 1
    # SIGTERM: in-flight requests get this long to finish before their worker is killed.
    graceful_timeout_s: int = 30
    # Idle keep-alive connections are closed after this long (above the 60 s idle timeout of AWS load balancers).
    keepalive_s: int = 75
    # A worker that neither boots (loads its service) nor answers for this long is killed and replaced.
    worker_timeout_s: int = 300
    access_log: bool = True
    max_body_bytes: int = MAX_BODY_BYTES
    log_level: str = "info"
    # Each worker keeps a per-request timeline and writes it here when it stops (http_server/timeline.py).
    timeline_dir: Path | None = None


def _configure_access_log(enabled: bool) -> None:
    """One JSON object per line on stdout (the lines are already JSON; the formatter adds nothing)."""
    logger = logging.getLogger("tastebud.access")
    logger.handlers.clear()
    logger.propagate = False
    if enabled:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    else:
        logger.setLevel(logging.CRITICAL + 1)


class PreforkServer(BaseApplication):
    """A gunicorn application whose workers each build their handler with ``handler_factory``."""

    def __init__(self, handler_factory: HandlerFactory, options: ServerOptions, *,
                 after_fork: Callable[[], None] | None = None,
                 on_ready: Callable[[str], None] | None = None) -> None:
        self._handler_factory = handler_factory
        self._options = options
        self._after_fork = after_fork
        self._on_ready = on_ready
        self._balance = ConnectionBalance()  # before the fork: the workers share its memory
        super().__init__()

    def load_config(self) -> None:
        options = self._options
        after_fork, on_ready, balance = self._after_fork, self._on_ready, self._balance

        def post_fork(server: Any, worker: Any) -> None:
            if isinstance(worker, TastebudWorker):
                worker.masters_signals = server.SIG_QUEUE
            _configure_access_log(options.access_log)
            balance.join()
            if after_fork is not None:
                after_fork()

        def worker_exit(server: Any, worker: Any) -> None:
            balance.leave()

        def when_ready(server: Any) -> None:
            host, port = server.LISTENERS[0].sock.getsockname()[:2]
            if on_ready is not None:
                on_ready(f"http://{host}:{port}")

        settings: dict[str, Any] = {
            "bind": [f"{options.host}:{options.port}"],
            "workers": options.workers,
            "worker_class": TastebudWorker,
            "graceful_timeout": options.graceful_timeout_s,
            "keepalive": options.keepalive_s,
            "timeout": options.worker_timeout_s,
            "preload_app": False,  # the ASGI app is built in each worker; heavy imports are preloaded by the caller
            "accesslog": None,
            "errorlog": "-",
            "loglevel": options.log_level,
            "proc_name": "tastebud-serve",
            "control_socket_disable": True,  # one fixed socket path per user: two servers would collide
            "post_fork": post_fork,
            "worker_exit": worker_exit,
            "when_ready": when_ready,
        }
        assert self.cfg is not None
        for name, value in settings.items():
            self.cfg.set(name, value)

    def load(self) -> LambdaAsgiApp:
        timeline = WorkerTimeline(self._options.timeline_dir) if self._options.timeline_dir is not None else None
        return LambdaAsgiApp(self._handler_factory, max_body_bytes=self._options.max_body_bytes,
                             access_log=self._options.access_log, balance=self._balance, timeline=timeline)


def serve(handler_factory: HandlerFactory, options: ServerOptions, *, after_fork: Callable[[], None] | None = None,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Run the server until SIGTERM/SIGINT (graceful: in-flight requests finish). Blocks; exits the process with
    gunicorn's status (3 when a worker cannot boot, e.g. its factory raised)."""
    PreforkServer(handler_factory, options, after_fork=after_fork, on_ready=on_ready).run()
