"""Open-loop, fixed-rate HTTP load (the wrk2 way): latency measured from each request's SCHEDULED send time.

A closed-loop generator (wrk, the throughput runs of `tastebud bench --http`) sends the next request on a connection
only after the previous answer: when the server stalls, the generator stops sending, and the requests that a real
client population would have sent during the stall are never measured ("coordinated omission", Gil Tene). Here the
send times are fixed in advance, request ``n`` at ``start + n / rate``, whatever the server does:

* a ticker thread sleeps until each scheduled time (``time.sleep``: clock_nanosleep, tens of microseconds late, where
  an asyncio timer is up to 1 ms late) and hands request ``n`` to the event loop (``call_soon_threadsafe``);
* request ``n`` goes on keep-alive connection ``n % connections`` (HTTP/1.1, no pipelining); if that connection is
  still waiting for an earlier answer, the request waits its turn, and the wait counts; a connection answered
  with ``Connection: close`` (the server rebalancing its workers) is reopened for the next request;
* latency = time the whole answer was read − SCHEDULED send time. ``send_lag`` (actual write − scheduled) is also
  reported: it is the generator's own share (plus any wait for a busy connection) and should stay well under 1 ms.

Answers are parsed by httptools (the parser uvicorn uses) on uvloop when installed. Percentiles are exact (every
latency is kept: tens of thousands of floats), so no HdrHistogram approximation is needed.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httptools
import numpy as np

DEFAULT_CONNECTIONS = 16
DRAIN_TIMEOUT_S = 10.0  # after the last scheduled send: answers still missing then count as errors
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass(frozen=True)
class OpenLoopResult:
    target_rate: float
    connections: int
    duration_s: float
    scheduled: int
    completed: int
    achieved_rate: float  # answered requests per second of the schedule's length
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    errors: int
    error_detail: dict[str, int]
    send_lag_p50_ms: float  # actual write − scheduled time: the generator's own delay (+ waits for a busy connection)
    send_lag_p99_ms: float
    service_p99_ms: float  # answer − actual write: what a closed-loop tool would have reported as p99
    latencies_ms: list[float] = field(default_factory=list, repr=False, compare=False)
    # With ``id_prefix``: per request n (header X-Request-Id: <id_prefix><n>), CLOCK_MONOTONIC seconds (NaN: not
    # sent / not answered), to join with the server's timeline.
    scheduled_s: list[float] = field(default_factory=list, repr=False, compare=False)
    sent_s: list[float] = field(default_factory=list, repr=False, compare=False)
    answered_s: list[float] = field(default_factory=list, repr=False, compare=False)


def request_bytes(host: str, path: str, body: bytes | None, request_id: str | None = None) -> bytes:
    """A POST of the JSON ``body``, or a GET when ``body`` is None."""
    extra = f"X-Request-Id: {request_id}\r\n" if request_id is not None else ""
    if body is None:
        return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection: write a request, resolve a future when its whole answer has been parsed."""

    def __init__(self) -> None:
        self.transport: Any = None  # asyncio's or uvloop's transport (uvloop's is not an asyncio.Transport)
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def on_message_complete(self) -> None:  # httptools callback
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(self._parser.get_status_code())
        if not self._parser.should_keep_alive():
            # ``Connection: close`` (the server sheds the connection, see tastebud.http_server.balance): send
            # nothing more on it (RFC 9112 §9.6). Writing the next request before the server's FIN arrives
            # would be answered by a reset and counted as the server's error.
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionError("connection closed by the server"))

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def send(self, payload: bytes) -> asyncio.Future[int]:
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return self._waiter


class _Run:
    """The state of one open-loop run (event-loop side)."""

    def __init__(self, host: str, port: int, payloads: Sequence[bytes], *, rate: float, count: int,
                 connections: int) -> None:
        self.host, self.port = host, port
        self.payloads = payloads
        self.rate = rate
        self.count = count
        self.connections = connections
        self.start = 0.0
        self.done_at = np.full(count, np.nan)
        self.sent_at = np.full(count, np.nan)
        self.errors: dict[str, int] = {}
        self.queues: list[asyncio.Queue[int | None]] = []
        self.outstanding = count

    def scheduled(self, n: int) -> float:
        return self.start + n / self.rate

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_Connection, self.host, self.port)
        sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
        if sock is not None:
            import socket

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return protocol

    async def worker(self, queue: asyncio.Queue[int | None], connection: _Connection) -> None:
        while True:
            n = await queue.get()
            if n is None:
                break
            try:
                if connection.closed:
                    connection = await self._connect()
                self.sent_at[n] = time.perf_counter()
                status = await connection.send(self.payloads[n % len(self.payloads)])
                self.done_at[n] = time.perf_counter()
                if status != 200:
                    self.error(f"status_{status}")
                    self.done_at[n] = np.nan
            except (OSError, ConnectionError, httptools.HttpParserError) as exc:
                self.error(type(exc).__name__)
                if connection.transport is not None:
                    connection.transport.close()
                connection.closed = True
            finally:
                self.outstanding -= 1
        if connection.transport is not None:
            connection.transport.close()

    def fire(self, n: int) -> None:
        self.queues[n % self.connections].put_nowait(n)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        opened = [await self._connect() for _ in range(self.connections)]
        self.queues = [asyncio.Queue() for _ in range(self.connections)]
        workers = [asyncio.create_task(self.worker(q, c)) for q, c in zip(self.queues, opened, strict=True)]
        self.start = time.perf_counter() + 0.05
        ticker = threading.Thread(target=self._tick, args=(loop,), name="open-loop-ticker", daemon=True)
        ticker.start()
        deadline = self.scheduled(self.count) + DRAIN_TIMEOUT_S
        while self.outstanding > 0 and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        ticker.join(timeout=1.0)
        for queue in self.queues:
            queue.put_nowait(None)
        _, pending = await asyncio.wait(workers, timeout=0.5)
        for task in pending:
            task.cancel()
        for connection in opened:
            if connection.transport is not None:
                connection.transport.close()

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        """Sleep until each scheduled time, then hand the request to the loop (never skips, never bunches on
        purpose: a late tick fires at once and its latency still counts from the scheduled time)."""
        for n in range(self.count):
            delay = self.scheduled(n) - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                loop.call_soon_threadsafe(self.fire, n)
            except RuntimeError:  # the loop is closed: the run was abandoned
                return


def _ms(values: np.ndarray, q: float) -> float:
    return round(float(np.percentile(values, q)) * 1e3, 3) if values.size else float("nan")


def open_loop_load(url: str, bodies: Sequence[bytes | None], *, rate: float, duration_s: float,
                   connections: int = DEFAULT_CONNECTIONS, path: str = "/v1/recommendations",
                   id_prefix: str | None = None) -> OpenLoopResult:
    """POST ``bodies`` (GET for None) round-robin at ``rate`` requests/s for ``duration_s`` over keep-alive
    connections. ``id_prefix``: request n carries ``X-Request-Id: <id_prefix><n>`` and the result keeps every
    request's scheduled, sent and answered time."""
    if rate <= 0 or duration_s <= 0 or connections < 1:
        raise ValueError("rate and duration_s must be > 0, connections >= 1")
    parts = urlsplit(url)
    host, port = str(parts.hostname), int(parts.port or 80)
    count = max(1, int(rate * duration_s))
    if id_prefix is not None:
        payloads = [request_bytes(f"{host}:{port}", path, bodies[n % len(bodies)], f"{id_prefix}{n}")
                    for n in range(count)]
    else:
        payloads = [request_bytes(f"{host}:{port}", path, body) for body in bodies]
    state = _Run(host, port, payloads, rate=rate, count=count, connections=connections)
    _run_loop(state.run())

    scheduled = state.start + np.arange(count) / rate
    answered = ~np.isnan(state.done_at)
    latency = (state.done_at - scheduled)[answered]
    sent = ~np.isnan(state.sent_at)
    send_lag = (state.sent_at - scheduled)[sent]
    service = (state.done_at - state.sent_at)[answered]
    unanswered = int(count - answered.sum() - sum(state.errors.values()))
    errors = dict(state.errors)
    if unanswered > 0:
        errors["unanswered"] = unanswered
    schedule_s = count / rate
    return OpenLoopResult(
        target_rate=round(rate, 1), connections=connections, duration_s=round(schedule_s, 2), scheduled=count,
        completed=int(answered.sum()), achieved_rate=round(float(answered.sum()) / schedule_s, 1),
        p50_ms=_ms(latency, 50), p90_ms=_ms(latency, 90), p99_ms=_ms(latency, 99), p999_ms=_ms(latency, 99.9),
        max_ms=round(float(latency.max()) * 1e3, 3) if latency.size else float("nan"),
        errors=int(sum(errors.values())), error_detail=errors,
        send_lag_p50_ms=_ms(send_lag, 50), send_lag_p99_ms=_ms(send_lag, 99), service_p99_ms=_ms(service, 99),
        latencies_ms=[round(float(x) * 1e3, 4) for x in latency],
        **({"scheduled_s": scheduled.tolist(), "sent_s": state.sent_at.tolist(), "answered_s": state.done_at.tolist()}
           if id_prefix is not None else {}),
    )


def _run_loop(coroutine: Any) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in requirements/local.txt
        asyncio.run(coroutine)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coroutine)


def recommendation_bodies(users: Sequence[str], k: int) -> list[bytes]:
    return [json.dumps({"user_id": str(user), "k": k}).encode() for user in users]
