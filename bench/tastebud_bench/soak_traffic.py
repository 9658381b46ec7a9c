"""The fault soak's traffic: client threads, each with its own keep-alive connection and a steady pace (well below
capacity, so that a slow request shows a fault, not a queue): recommendations (full pages of 10 expected), event
batches (unique ids), stock updates and item upserts (each thread owns its items, so the last acknowledged state of
each is known).

A connection the server drops (a killed worker's in-flight request) is retried once on a new connection, as a
client behind a load balancer would; the retry is counted. A write refused with 503 is not retried (its outcome
is "refused"); one whose connection dropped is "unknown" until a later write of the same thing is acknowledged.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

PAGE = 10
READ_SHARE, EVENT_SHARE, STOCK_SHARE = 0.6, 0.2, 0.12  # the rest: item upserts


@dataclass
class Sample:
    started: float  # seconds since the soak began
    ms: float
    op: str
    status: int  # 0: no answer (connection dropped twice)
    ok: bool
    retried: bool = False


@dataclass
class Ledger:
    """What each thread's writes came to: acknowledged, refused (503) or unknown (connection dropped)."""

    events: set[str] = field(default_factory=set)
    # Acknowledged only by a retry after a dropped connection: the killed worker may have died between the Redis
    # write and the data-log append, and the retry is then a duplicate that is not logged again (a known gap).
    events_on_a_retry: set[str] = field(default_factory=set)
    stock: dict[str, bool | None] = field(default_factory=dict)  # item -> last acknowledged in_stock (None: unsure)
    items: set[str] = field(default_factory=set)
    refused: int = 0
    unknown: int = 0


class RetryingJsonConnection:
    """A keep-alive HTTP connection for JSON requests; a request whose connection dropped is sent once more on a new
    connection."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._connection = self._open()

    def _open(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._host, self._port, timeout=30)

    def request(self, method: str, path: str, body: Any) -> tuple[int, Any, bool]:
        """(status, JSON body, retried); status 0 when the connection dropped twice."""
        payload = json.dumps(body).encode() if body is not None else None
        for attempt in range(2):
            try:
                self._connection.request(method, path, body=payload, headers={"content-type": "application/json"})
                response = self._connection.getresponse()
                raw = response.read()
                return response.status, json.loads(raw) if raw else None, attempt > 0
            except (ConnectionError, http.client.HTTPException, TimeoutError):
                self._connection.close()
                self._connection = self._open()
        return 0, None, True

    def close(self) -> None:
        self._connection.close()


class Traffic:
    """The soak's clients (threads); ``samples`` and ``ledger`` fill while they run."""

    def __init__(self, url: str, users: list[str], items: list[str], merchant: str, *, clients: int, rate: float,
                 seed: int) -> None:
        self.url, self.users, self.merchant = url, users, merchant
        self.clients, self.rate = clients, rate
        self.samples: list[Sample] = []
        self.ledger = Ledger()
        self._items = items
        self._seed = seed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.t0 = time.monotonic()

    def start(self) -> None:
        self.t0 = time.monotonic()
        for index in range(self.clients):
            thread = threading.Thread(target=self._client, args=(index,), name=f"chaos-client-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _client(self, index: int) -> None:
        rng = random.Random(self._seed * 1000 + index)
        own_stock = self._items[index::self.clients][:20]  # this thread's items: their last state is known
        connection = RetryingJsonConnection(self.url)
        n = 0
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                next_at += rng.expovariate(self.rate / self.clients)
                time.sleep(max(0.0, next_at - time.monotonic()))
                n += 1
                draw = rng.random()
                if draw < READ_SHARE:
                    self._read(connection, rng.choice(self.users))
                elif draw < READ_SHARE + EVENT_SHARE:
                    self._events(connection, f"chaos-{self._seed}-{index}-{n}", rng)
                elif draw < READ_SHARE + EVENT_SHARE + STOCK_SHARE and own_stock:
                    self._stock(connection, rng.choice(own_stock), rng.random() < 0.5)
                else:
                    self._upsert(connection, f"chaos-{self._seed}-{index}-{n}")
        finally:
            connection.close()

    def _timed(self, connection: RetryingJsonConnection, op: str, method: str, path: str, body: Any,
               ok: Callable[[int, Any], bool]) -> tuple[int, Any, bool]:
        started = self.now()
        clock = time.perf_counter()
        status, document, retried = connection.request(method, path, body)
        sample = Sample(started, (time.perf_counter() - clock) * 1000, op, status, ok(status, document), retried)
        with self._lock:
            self.samples.append(sample)
        return status, document, retried

    def _read(self, connection: RetryingJsonConnection, user: str) -> None:
        self._timed(connection, "recommend", "POST", "/v1/recommendations", {"user_id": user, "k": PAGE},
                    lambda status, doc: status == 200 and len(doc.get("items", [])) == PAGE)

    def _record(self, status: int) -> bool:
        """True when acknowledged; counts refusals and unknown outcomes."""
        if status == 200:
            return True
        with self._lock:
            if status == 0:
                self.ledger.unknown += 1
            else:
                self.ledger.refused += 1
        return False

    def _events(self, connection: RetryingJsonConnection, prefix: str, rng: random.Random) -> None:
        user = rng.choice(self.users)
        events = [{"event_id": f"{prefix}-{i}", "user_id": user, "item_id": rng.choice(self._items),
                   "event_type": rng.choice(("click", "add_to_cart", "purchase")), "timestamp": time.time() - 1}
                  for i in range(2)]
        status, document, retried = self._timed(connection, "events", "POST", "/v1/events", {"events": events},
                                                lambda status, doc: status in (200, 503))
        if self._record(status) and document["accepted"] + document["duplicates"] == len(events):
            ids = {str(e["event_id"]) for e in events}
            with self._lock:
                self.ledger.events |= ids
                if retried:
                    self.ledger.events_on_a_retry |= ids

    def _stock(self, connection: RetryingJsonConnection, item: str, in_stock: bool) -> None:
        status, _, _ = self._timed(connection, "stock", "PUT", f"/v1/stock/{item}", {"in_stock": in_stock},
                                lambda status, doc: status in (200, 503))
        acknowledged = self._record(status)
        with self._lock:
            # A refused or dropped write may still have been applied: the item's state is unsure until the next ack.
            self.ledger.stock[item] = in_stock if acknowledged else None

    def _upsert(self, connection: RetryingJsonConnection, item: str) -> None:
        body = {"merchant_id": self.merchant, "title": f"Chaos soak dish {item}", "category": "soak",
                "description": "added while faults were injected", "price": 9.5}
        status, _, _ = self._timed(connection, "item", "PUT", f"/v1/items/{item}", body,
                                lambda status, doc: status in (200, 503))
        if self._record(status):
            with self._lock:
                self.ledger.items.add(item)
