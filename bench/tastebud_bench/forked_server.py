"""`tastebud serve`'s server (gunicorn master + uvicorn workers) around an already built service, forked from the
benchmark's process after the service is built (copy-on-write): `tastebud bench --http` and the experiments."""

from __future__ import annotations

import http.client
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tastebud.api.http import create_handler
from tastebud.live.runtime import ServingRuntime
from tastebud.pipeline.service import RecommendationService
from tastebud_bench.cpu_accounting import process_cpu_seconds

SERVER_START_TIMEOUT_S = 120.0


def _serve_forked(service: RecommendationService | ServingRuntime, workers: int, url_pipe: Any,
                  after_fork: Callable[[], None] | None, timeline_dir: Path | None = None) -> None:
    """The child process: becomes the gunicorn master of ``workers`` workers around ``service``."""
    from tastebud.http_server.prefork import ServerOptions, serve

    if after_fork is not None:
        after_fork()  # before gunicorn forks again: its workers inherit the result
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nothing on the bench's stdout (it may be the --json report)
    serve(lambda: create_handler(lambda: service),
          ServerOptions(port=0, workers=workers, access_log=False, log_level="warning", timeline_dir=timeline_dir),
          on_ready=url_pipe.send)


class ForkedServer:
    """`tastebud serve`'s server around an already built service, in a child process (context manager)."""

    def __init__(self, service: RecommendationService | ServingRuntime, workers: int,
                 after_fork: Callable[[], None] | None = None, timeline_dir: Path | None = None) -> None:
        self._service = service
        self._workers = workers
        self._after_fork = after_fork
        self._timeline_dir = timeline_dir
        self._process: Any = None
        self.url = ""

    def __enter__(self) -> ForkedServer:
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(target=_serve_forked, daemon=False,
                                        args=(self._service, self._workers, sender, self._after_fork,
                                              self._timeline_dir))
        self._process.start()
        if not receiver.poll(SERVER_START_TIMEOUT_S):
            self._process.kill()
            raise RuntimeError("the HTTP server did not start")
        self.url = receiver.recv()
        _wait_healthy(self.url, self._workers)
        return self

    def cpu_seconds(self) -> float:
        """User + system CPU time of the master and its workers so far (Linux /proc)."""
        return process_cpu_seconds([self._process.pid, *self.worker_pids()])

    def worker_pids(self) -> list[int]:
        master = self._process.pid
        return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]

    def __exit__(self, *exc: object) -> None:
        os.kill(self._process.pid, signal.SIGTERM)
        self._process.join(timeout=60)
        if self._process.is_alive():
            self._process.kill()


def _wait_healthy(url: str, workers: int) -> None:
    """Every worker answers /health (new connections spread over the workers)."""
    parts = urlsplit(url)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    healthy = 0
    while healthy < 4 * workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} is not healthy")
        connection = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=5)
        try:
            connection.request("GET", "/health")
            healthy += connection.getresponse().status == 200
        except OSError:
            time.sleep(0.1)
        finally:
            connection.close()
