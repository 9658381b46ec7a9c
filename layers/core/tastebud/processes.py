"""Small process helpers shared by the local server, the embedded Redis supervisor and the fault soak."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def process_alive(pid: int | None) -> bool:
    """True while a process with this id exists (also when it belongs to another user)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed process whose parent has not reaped it yet (a daemonised redis-server's parent is init, which may
    take its time) still answers kill(pid, 0), but it runs nothing: it is dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile, or no /proc (not Linux): kill(pid, 0) has answered
        return False
    return stat[stat.rindex(")") + 2:].startswith("Z")


def end_with_parent(signum: int = signal.SIGTERM) -> None:
    """For ``subprocess.Popen(preexec_fn=...)``: the kernel sends the child ``signum`` when the thread that started it
    ends, however it ends (SIGKILL included), so the child cannot outlive its owner. Linux only; elsewhere a no-op."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)
    except (OSError, AttributeError):  # no prctl: not Linux
        return


TERMINATING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@contextlib.contextmanager
def termination_deferred() -> Iterator[None]:
    """Hold SIGTERM, SIGINT and SIGHUP until the block ends, then act on the first that arrived as it would have:
    a process that starts a daemon and hands it to its keeper inside the block never dies in between, leaving the
    daemon without an owner (SIGKILL cannot be held). A handler, not a blocked signal mask: the mask would be
    inherited by the daemon, which could then never be stopped by SIGTERM. Main thread only (where Python runs
    signal handlers); elsewhere the block runs as is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: arrived.append(signum)) for signum in TERMINATING}
    try:
        yield
    finally:
        for signum, handler in previous.items():  # None: a handler set outside Python, which cannot be put back
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        if arrived:
            os.kill(os.getpid(), arrived[0])


def terminate(process: subprocess.Popen[Any], timeout_s: float) -> int:
    """SIGTERM (a graceful stop), then SIGKILL if it has not exited within ``timeout_s``; returns its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()
