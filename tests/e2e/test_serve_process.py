"""`tastebud serve --workers 2` as a user runs it: the README's commands, workers restarted under load, graceful
SIGTERM. Bounded by request counts and timeouts, never by wall-clock assertions."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from servers import ServerProcess, start_server_process

pytestmark = pytest.mark.slow

CLIENTS = 8
MAX_REQUESTS_PER_CLIENT = 3000
PROGRESS_TIMEOUT_S = 120.0


def test_the_readme_stock_command_works_as_written(served: ServerProcess) -> None:
    """README: curl -s -X PUT localhost:3000/v1/stock/i000123 -d '{"in_stock": false}' (no content type)."""
    url = f"{served.url}/v1/stock/i000123"
    if shutil.which("curl"):
        output = subprocess.run(["curl", "-s", "-X", "PUT", url, "-d", '{"in_stock": false}'], check=True,
                                capture_output=True, text=True, timeout=60).stdout
        assert output == '{"item_id":"i000123","in_stock":false,"quantity":null}'
    response = requests.put(url, data=b'{"in_stock": true}',  # what curl -d sends
                            headers={"content-type": "application/x-www-form-urlencoded"}, timeout=30)
    assert response.status_code == 200 and response.json()["in_stock"] is True


def test_a_stock_change_is_seen_by_every_worker(served: ServerProcess, active_user: str) -> None:
    body = {"user_id": active_user, "k": 5}
    top = requests.post(f"{served.url}/v1/recommendations", json=body, timeout=30).json()["items"][0]["item_id"]
    assert requests.put(f"{served.url}/v1/stock/{top}", json={"in_stock": False}, timeout=30).status_code == 200
    for _ in range(20):  # new connections: spread over both workers
        items = requests.post(f"{served.url}/v1/recommendations", json=body, timeout=30).json()["items"]
        assert top not in {item["item_id"] for item in items}
    requests.put(f"{served.url}/v1/stock/{top}", json={"in_stock": True}, timeout=30)


def _wait(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + PROGRESS_TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def test_restarting_every_worker_under_8_clients_fails_no_request(served: ServerProcess, active_user: str) -> None:
    """Each worker in turn gets SIGTERM (what gunicorn's own restarts send: HUP, max-requests, TTOU) while 8
    keep-alive clients send requests; the master replaces it. Every request is answered 200."""
    completed = [0] * CLIENTS
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(index: int) -> None:
        with requests.Session() as session:
            for n in range(MAX_REQUESTS_PER_CLIENT):
                if stop.is_set():
                    return
                try:
                    if n % 2:
                        response = session.post(f"{served.url}/v1/recommendations",
                                                json={"user_id": active_user, "k": 5}, timeout=60)
                    else:
                        response = session.get(f"{served.url}/health", timeout=60)
                    with lock:
                        statuses[response.status_code] += 1
                except requests.RequestException as exc:
                    with lock:
                        failures.append(f"client {index} request {n}: {exc!r}")
                completed[index] = n + 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        _wait(lambda: sum(completed) >= 100, "clients started")
        original = served.worker_pids()
        assert len(original) == 2
        restarted: set[int] = set()
        for victim in sorted(original):
            before = sum(completed)
            os.kill(victim, signal.SIGTERM)
            restarted.add(victim)
            served.wait_for_workers(2, exclude=frozenset(restarted))
            _wait(lambda before=before: sum(completed) >= before + 200, "requests after the restart")  # type: ignore[misc]
        assert not served.worker_pids() & original
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=PROGRESS_TIMEOUT_S)
    assert failures == []
    assert set(statuses) == {200} and sum(statuses.values()) >= 500
    # The shared Redis outlived both workers: a stock update is stored (a Redis failure would be a 503).
    assert requests.put(f"{served.url}/v1/stock/i000123", json={"in_stock": True}, timeout=30).status_code == 200


def test_a_sigterm_while_a_worker_is_forked_stops_the_server_without_waiting_for_the_graceful_timeout(
        tmp_path: Path) -> None:
    """The master's SIGTERM reaches a worker between its fork and its own signal handlers (where the master's
    handlers only queue it): the worker still stops, so the master does not wait its graceful_timeout for it."""
    from slow_fork_server import FORK_S, GRACEFUL_TIMEOUT_S

    server = start_server_process(["slow_fork_server", str(tmp_path)])
    try:
        _wait(lambda: any(tmp_path.glob("forked-*")), "a worker inside its fork window")
        server.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        server.process.wait(timeout=GRACEFUL_TIMEOUT_S + 30)
        stopped_after_s = time.monotonic() - started
        print(f"the server stopped {stopped_after_s:.1f} s after SIGTERM (graceful timeout {GRACEFUL_TIMEOUT_S} s)")
        # The worker ends once its fork window is over; losing the signal costs the whole graceful timeout.
        assert stopped_after_s < FORK_S + (GRACEFUL_TIMEOUT_S - FORK_S) / 2, "".join(server.log[-30:])
    finally:
        server.stop(signal.SIGKILL)


def test_sigterm_lets_the_in_flight_request_finish(tmp_path: Path) -> None:
    """A request in flight when the server gets SIGTERM is answered (200), then the server exits 0."""
    server = start_server_process(["slow_handler_server", str(tmp_path)])
    try:
        worker = server.wait_for_workers(1).pop()
        answers: list[requests.Response] = []
        thread = threading.Thread(target=lambda: answers.append(requests.get(f"{server.url}/slow", timeout=120)))
        thread.start()
        _wait(lambda: (tmp_path / f"started-{worker}").exists(), "slow request in flight")
        server.process.send_signal(signal.SIGTERM)  # the master forwards it to the worker
        thread.join(timeout=PROGRESS_TIMEOUT_S)
        assert answers and answers[0].status_code == 200
        assert answers[0].json() == {"sigterm_during_request": True}
        assert server.process.wait(timeout=PROGRESS_TIMEOUT_S) == 0
    finally:
        server.stop(signal.SIGKILL)
