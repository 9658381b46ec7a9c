"""Local servers for end-to-end tests: uvicorn in a thread (one process) and `tastebud serve` as a subprocess.

Both serve :class:`tastebud.http_server.asgi.LambdaAsgiApp` with uvicorn's httptools protocol, the same code path
as a worker of `tastebud serve`; the subprocess adds the gunicorn master (worker processes, restarts, signals).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120.0
_LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)")


@contextmanager
def threaded_server(handler_factory: Callable[[], object], **app_options: Any) -> Iterator[str]:
    """uvicorn serving the Lambda handler from a thread of this process; yields its base URL. ``app_options`` go to
    LambdaAsgiApp (e.g. ``timeline``)."""
    import uvicorn

    from tastebud.http_server.asgi import LambdaAsgiApp

    app = LambdaAsgiApp(handler_factory, access_log=False, **app_options)  # type: ignore[arg-type]
    config = uvicorn.Config(app, host="127.0.0.1", port=0, loop="uvloop", http="httptools", lifespan="on",
                            ws="none", access_log=False, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class ServerProcess:
    """A `tastebud serve`-like subprocess: the gunicorn master and its worker processes."""

    process: subprocess.Popen[str]
    url: str
    log: list[str] = field(default_factory=list)

    @property
    def master_pid(self) -> int:
        return self.process.pid

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.master_pid}/task/{self.master_pid}/children").read_text().split()
        return {int(pid) for pid in children if _is_worker(int(pid))}

    def wait_for_workers(self, count: int, exclude: frozenset[int] = frozenset(),
                         timeout_s: float = START_TIMEOUT_S) -> set[int]:
        """Wait until ``count`` workers run, none of them in ``exclude``; returns their pids."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if len(pids) == count and not pids & exclude and all(_booted(self.log, pid) for pid in pids):
                return pids
            time.sleep(0.05)
        tail = "".join(self.log[-40:])
        raise TimeoutError(f"workers did not reach {count} (now {self.worker_pids()}); log:\n{tail}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout_s)


def _is_worker(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False
    return "redis-server" not in command and "redis_keeper" not in command  # the master's other children


def _booted(log: list[str], pid: int) -> bool:
    """uvicorn logs this once the worker's lifespan start-up (its service build) has finished."""
    return any(f"[{pid}]" in line and "Application startup complete" in line for line in list(log))


def start_server_process(args: list[str], env: dict[str, str] | None = None) -> ServerProcess:
    """Start ``python -m <args>`` and wait for its "listening on URL" line; stderr is collected in ``log``."""
    environment = {**os.environ, **(env or {})}
    paths = [str(ROOT / "layers" / "core"), str(ROOT / "training"), str(ROOT / "tests")]
    environment["PYTHONPATH"] = os.pathsep.join([*paths, environment.get("PYTHONPATH", "")])
    process = subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, env=environment)
    log: list[str] = []
    found: list[str] = []

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            match = _LISTENING.search(line)
            if match and not found:
                found.append(match.group(1))

    threading.Thread(target=read_stderr, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not found:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("server did not start:\n" + "".join(log[-60:]))
        time.sleep(0.05)
    return ServerProcess(process, found[0], log)


def start_tastebud_serve(artifacts: Path, *, workers: int, extra: tuple[str, ...] = (),
                         env: dict[str, str] | None = None) -> ServerProcess:
    # --data: accepted events and items go next to the artifacts copy, never into the shared tiny data set.
    server = start_server_process(["tastebud_cli.app", "serve", "--artifacts", str(artifacts), "--port", "0",
                                   "--workers", str(workers), "--no-access-log", "--data",
                                   str(artifacts.parent / "data"), *extra], env)
    try:
        server.wait_for_workers(workers)
    except TimeoutError:
        server.stop(signal.SIGKILL)  # never leave a half-started server (and its Redis) behind
        raise
    return server
