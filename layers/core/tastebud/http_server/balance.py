"""Keep-alive connections spread evenly over the worker processes.

The workers share one listening socket, and the kernel hands a new connection to whichever worker accepts first.
When clients open their connections in a burst (a load balancer's pool, wrk), one idle worker can accept nearly
all of them; keep-alive then pins those clients to it for good while the other workers sit idle (measured with
8 connections on 2 workers: 7/1 and 8/0 splits, one core busy of two). So each worker publishes its number of open
connections in shared memory, and a worker holding more than its fair share (the total divided by the live
workers, rounded up) answers the next request with ``Connection: close``: that client reconnects, and the
connection goes to a worker that is free to accept it. Nothing is lost: the answer is complete, and the client's
next request goes on the new connection.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

from tastebud.processes import process_alive

MAX_WORKERS = 64


class ConnectionBalance:
    """Open connections per worker in shared memory; create it in the master, before the workers are forked."""

    def __init__(self, slots: int = MAX_WORKERS) -> None:
        context = multiprocessing.get_context("fork")
        self._pids: Any = context.RawArray("i", slots)
        self._counts: Any = context.RawArray("i", slots)
        self._lock = context.Lock()
        self._slot = -1

    def join(self) -> None:
        """In a worker after the fork: claim a slot (a free one, or one whose worker is gone)."""
        pid = os.getpid()
        with self._lock:
            for slot, owner in enumerate(self._pids):
                if owner == 0 or owner == pid or not process_alive(owner):
                    self._pids[slot], self._counts[slot], self._slot = pid, 0, slot
                    return

    def leave(self) -> None:
        if self._slot >= 0 and self._pids[self._slot] == os.getpid():
            self._pids[self._slot] = self._counts[self._slot] = 0
        self._slot = -1

    def publish(self, open_connections: int) -> None:
        """Record this worker's open connections. Each worker also calls this every 0.1 s (the server's tick), not
        only when it answers: an idle worker's count would otherwise stay at its last busy value, the busy worker's
        fair share would look reached, and nothing would move (measured: 16 connections on one worker of two for a
        whole 30 s open-loop run, the other worker still counted with the 16 it held in an earlier run)."""
        if self._slot >= 0:
            self._counts[self._slot] = open_connections

    def over_fair_share(self, open_connections: int) -> bool:
        """Record this worker's open connections; True when it holds more than its fair share."""
        if self._slot < 0:
            return False
        self._counts[self._slot] = open_connections
        total = live = 0
        for slot, owner in enumerate(self._pids):
            if owner and (slot == self._slot or process_alive(owner)):
                total += self._counts[slot]
                live += 1
        return live > 1 and open_connections > -(-total // live)
