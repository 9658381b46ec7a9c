"""What one request's stock lookup costs the Redis server and the client: SMISMEMBER (the adapter since session 6)
against the Lua loop of SISMEMBER calls it replaced, on an embedded Redis holding N items with 3% out of stock.

The server's time comes from Redis' own ``INFO commandstats`` (usec_per_call), the client's from its thread CPU time.
On ElastiCache the server time is what bounds one shard: Redis runs commands one at a time (docs/BENCHMARKS.md,
session 6).

    .venv/bin/tastebud experiment stock_lookup_cost 1000000 290
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import redis

from tastebud.adapters.redis_stock import OUT_OF_STOCK_KEY, RedisStockStore, embedded_redis

# The lookup before session 6: ids newline-joined in ONE argument, one '0'/'1' per id back.
LUA_LOOKUP = """
local flags = {}
for id in string.gmatch(ARGV[1], "[^\\n]+") do
  flags[#flags + 1] = redis.call("SISMEMBER", KEYS[1], id) == 1 and "1" or "0"
end
return table.concat(flags)
"""


def run(n_items: int, per_request: int, calls: int = 2000) -> None:
    client = embedded_redis(Path(tempfile.mkdtemp(prefix="tastebud-stock-cost-")) / "stock.rdb")
    store = RedisStockStore(client)
    ids = [f"item-{i:07d}" for i in range(n_items)]
    store.load_snapshot("cost", ids[::33], {})
    rng = np.random.default_rng(0)
    batches = [[ids[j] for j in rng.choice(n_items, per_request, replace=False)] for _ in range(calls)]
    lua = client.register_script(LUA_LOOKUP)

    def lua_loop(batch: list[str]) -> np.ndarray:
        answer = lua(keys=[OUT_OF_STOCK_KEY], args=["\n".join(batch)])
        return np.frombuffer(answer, dtype=np.uint8) == ord("1")

    assert all((store.out_of_stock(b) == lua_loop(b)).all() for b in batches[:20])
    print(f"{n_items} items, {per_request} ids per lookup, {calls} lookups; hiredis: {redis.utils.HIREDIS_AVAILABLE}")
    for name, lookup, command in (("SMISMEMBER", store.out_of_stock, "cmdstat_smismember"),
                                  ("Lua SISMEMBER loop", lua_loop, "cmdstat_evalsha")):
        client.config_resetstat()
        started = time.thread_time()
        for batch in batches:
            lookup(batch)
        client_ms = (time.thread_time() - started) / calls * 1e3
        server_us = client.info("commandstats")[command]["usec_per_call"]
        print(f"{name:20s} server {server_us / 1e3:.3f} ms per lookup, client CPU {client_ms:.3f} ms per lookup")


def main(argv: list[str]) -> None:
    """Command-line entry: `tastebud experiment stock_lookup_cost ARGS...`."""
    run(int(argv[0]) if len(argv) > 0 else 1_000_000, int(argv[1]) if len(argv) > 1 else 290)
