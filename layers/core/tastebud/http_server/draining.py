"""Graceful worker shutdown that loses no request on keep-alive connections.

uvicorn's own shutdown closes every connection that is between two requests at that instant. Under load, a
keep-alive connection is "between two requests" while its client's next request is already on the wire or in
the socket buffer, so stopping or restarting a worker drops those requests (the client sees the connection
close without an answer). :class:`DrainingServer` instead

1. stops accepting (the master and the other workers keep the shared listening socket, so new connections go
   to them),
2. answers every request that arrives on an open connection, with ``Connection: close`` (the app adds it once
   :meth:`LambdaAsgiApp.begin_draining` was called), so each client moves to a new connection after its next
   answer,
3. closes a connection only after it has stayed idle for ``idle_grace_s`` since draining began (a client that
   sends nothing for that long is not mid-request; an idle keep-alive connection may be closed at any time in
   HTTP/1.1, and clients check for that before reusing one),
4. then does what uvicorn does: waits for in-flight requests, runs the lifespan shutdown.

gunicorn's ``graceful_timeout`` still bounds the whole shutdown (the worker is killed after it).
Written against uvicorn 0.54 (``requirements/local.txt`` pins it): it reads the server's connection set and each
HTTP protocol's current request cycle.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from uvicorn.server import Server

logger = logging.getLogger("uvicorn.error")

IDLE_GRACE_S = 0.5
POLL_S = 0.01


def _is_idle(connection: Any) -> bool:
    cycle = getattr(connection, "cycle", None)
    return cycle is None or bool(cycle.response_complete)


class DrainingServer(Server):
    """A uvicorn server whose shutdown drains keep-alive connections instead of cutting them."""

    idle_grace_s: float = IDLE_GRACE_S

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        logger.info("Shutting down: draining connections")
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        begin_draining = getattr(self.config.app, "begin_draining", None)
        if begin_draining is not None:
            begin_draining()

        loop = asyncio.get_running_loop()
        idle_since: dict[Any, float] = {}
        while self.server_state.connections and not self.force_exit:
            now = loop.time()
            for connection in list(self.server_state.connections):
                if not _is_idle(connection):
                    idle_since.pop(connection, None)
                elif now - idle_since.setdefault(connection, now) >= self.idle_grace_s:
                    connection.shutdown()  # idle: closes the transport
            await asyncio.sleep(POLL_S)

        try:
            await asyncio.wait_for(self._wait_tasks_to_complete(), timeout=self.config.timeout_graceful_shutdown)
        except TimeoutError:
            logger.error("Cancel %s running task(s), timeout graceful shutdown exceeded", len(self.server_state.tasks))
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()
