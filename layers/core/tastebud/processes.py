"""Small process helpers shared by the local server, the embedded Redis supervisor and the fault soak."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
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


def terminate(process: subprocess.Popen[Any], timeout_s: float) -> int:
    """SIGTERM (a graceful stop), then SIGKILL if it has not exited within ``timeout_s``; returns its exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()
