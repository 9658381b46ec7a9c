"""Closed-loop HTTP load for `tastebud bench --http`: ``connections`` keep-alive connections, each sending its next
recommendation request (users round-robin) as soon as the previous one is answered. wrk when installed (C, about
one core's worth of overhead less), else a Python client of one thread per connection."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

K = 20


@dataclass(frozen=True)
class LoadResult:
    connections: int
    requests: int
    duration_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_detail: dict[str, int]


def request_body(user_id: str, k: int) -> bytes:
    return json.dumps({"user_id": user_id, "k": k}).encode()


_WRK_SCRIPT = """
local users = {%(users)s}
local counter = 0
local headers = {["content-type"] = "application/json"}
request = function()
  counter = counter + 1
  local body = '{"user_id": "' .. users[(counter %% #users) + 1] .. '", "k": %(k)d}'
  return wrk.format("POST", "/v1/recommendations", headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}\\n', summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(99), e.connect, e.read, e.write, e.status,
    e.timeout))
end
"""


def wrk_load(url: str, users: Sequence[str], *, connections: int, duration_s: float, k: int = K) -> LoadResult:
    """wrk with one thread and ``connections`` keep-alive connections, POSTing recommendations round-robin."""
    with tempfile.TemporaryDirectory(prefix="tastebud-wrk-") as workdir:
        script = Path(workdir) / "recommend.lua"
        ids = ", ".join(json.dumps(str(user)) for user in users)
        script.write_text(_WRK_SCRIPT % {"users": ids, "k": k})
        command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--timeout", "10s",
                   "-s", str(script), url]
        run = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration_s + 120)
    match = re.search(r"WRK_JSON (\{.*\})", run.stdout)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{run.stdout}\n{run.stderr}")
    stats = json.loads(match.group(1))
    errors = {name: int(stats[name]) for name in ("connect", "read", "write", "status", "timeout")}
    duration = stats["duration_us"] / 1e6
    return LoadResult(connections, stats["requests"], round(duration, 2), round(stats["requests"] / duration, 1),
                      round(stats["p50_us"] / 1e3, 3), round(stats["p99_us"] / 1e3, 3), sum(errors.values()), errors)


def python_load(url: str, users: Sequence[str], *, connections: int, duration_s: float, k: int = K) -> LoadResult:
    """Fallback without wrk: ``connections`` threads, each with one keep-alive http.client connection."""
    import threading

    parts = urlsplit(url)
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures = [0] * connections
    deadline = time.monotonic() + duration_s

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=10)
        n = index
        while time.monotonic() < deadline:
            body = request_body(users[n % len(users)], k)
            n += connections
            started = time.perf_counter()
            try:
                connection.request("POST", "/v1/recommendations", body=body,
                                   headers={"content-type": "application/json"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
            if ok:
                latencies[index].append(time.perf_counter() - started)
            else:
                failures[index] += 1
        connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    samples = np.asarray([x for per_client in latencies for x in per_client])
    count = int(samples.size + sum(failures))
    return LoadResult(connections, count, round(elapsed, 2), round(count / elapsed, 1),
                      round(float(np.percentile(samples, 50)) * 1e3, 3) if samples.size else float("nan"),
                      round(float(np.percentile(samples, 99)) * 1e3, 3) if samples.size else float("nan"),
                      int(sum(failures)), {"failed": int(sum(failures))})
