"""ElastiCache for Redis as the StockStore (the RedisStockStore adapter over a TLS + AUTH client), and a
StockStore decorator that also mirrors stock flips into the OpenSearch documents' ``in_stock`` flag.

The AUTH token lives in Secrets Manager (the template generates it and hands the same secret to the
replication group through a dynamic reference); the function reads it once per container at start-up.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from tastebud.adapters.aws.opensearch_admin import OpenSearchIndexAdmin
from tastebud.adapters.guarded_redis import budget_bounded, guarded, no_retries
from tastebud.adapters.redis_stock import SNAPSHOT_KEY, RedisStockStore
from tastebud.errors import DependencyError
from tastebud.ports import PendingStock, StockStore
from tastebud.settings import SettingsError

logger = logging.getLogger(__name__)
# The stock snapshot seed writes every quantity in one MULTI: ~20 MB and ~1 s of the shard's time at 1M items.
SEED_TIMEOUT_S = 30.0
# Start-up only: the request path's connect deadline (a few ms) is no reason to skip the seed on a slow handshake.
SEED_CONNECT_TIMEOUT_S = 0.5
SEED_LOCK_KEY = "tastebud:stock:seeding"
SEED_LOCK_S = int(2 * SEED_TIMEOUT_S)  # outlives the seed's deadline: a second seeder never overlaps the first


def auth_token_from_secret(secret_id: str, *, client: Any) -> str:
    """The Redis AUTH token stored in Secrets Manager: a plain string, or JSON ``{"token": "..."}``."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        secret = client.get_secret_value(SecretId=secret_id)["SecretString"]
    except (BotoCoreError, ClientError, KeyError) as exc:  # KeyError: a binary secret has no SecretString
        raise DependencyError("stock", f"reading the redis AUTH token secret: {type(exc).__name__}: {exc}") from exc
    try:
        document = json.loads(secret)
    except ValueError:
        return str(secret)
    if isinstance(document, dict):
        if not isinstance(document.get("token"), str):
            raise SettingsError(f"secret {secret_id} is JSON without a string 'token' field")
        return str(document["token"])
    return str(secret)


def elasticache_client(url: str, auth_token: str | None, *, socket_timeout: float, connect_timeout: float,
                       allow_plaintext: bool = False) -> Any:
    """redis-py client for ElastiCache with in-transit encryption: ``rediss://`` + certificate check + AUTH.

    ``allow_plaintext``: a ``redis://`` URL (still with AUTH) is accepted too; only for a local stand-in
    (``local_endpoints_in_use``), never in a deployed stack.

    ``socket_timeout`` bounds each command's reply; ``connect_timeout`` the TCP connect and the TLS handshake (redis-py
    applies it to both). On the request path both are the stock stage's budget (``redis_timeout_ms``).
    """
    import redis

    plaintext = allow_plaintext and url.startswith("redis://")
    if not (url.startswith("rediss://") or plaintext):
        raise SettingsError(f"ElastiCache needs TLS: TASTEBUD_REDIS_URL must start with rediss://, got {url!r}")
    tls = {} if plaintext else {"ssl_cert_reqs": "required"}
    return budget_bounded(redis.Redis.from_url(
        url, password=auth_token, **tls, socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout, health_check_interval=30, retry=no_retries(), driver_info=None))


def with_socket_timeout(client: Any, socket_timeout: float, *, connect_timeout: float | None = None) -> Any:
    """A client of the same server with the same TLS and AUTH settings, its own connection and other deadlines."""
    import redis

    pool = client.connection_pool
    options = {**pool.connection_kwargs, "socket_timeout": socket_timeout}
    if connect_timeout is not None:
        options["socket_connect_timeout"] = connect_timeout
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **options))


def seed_stock_snapshot(client: Any, version: str, snapshot: dict[str, Any]) -> bool:
    """Seed an empty cache (the first deploy) from the version's stock snapshot; True when this call seeded it.

    Never again once seeded: merchants' live updates are newer than any training snapshot. The seed goes through
    its own connection with bulk deadlines: the request path's (``redis_timeout_ms``) cannot carry a catalog's
    quantities over TLS (at 300k items the MULTI timed out at every cold start and the snapshot's sold-out items
    were served). One
    container seeds (a lock): the containers that start together once LIVE.json appears would otherwise each send
    the whole snapshot, block the shard for a second each, and wipe stock updates made between two seeds. A
    failure is logged and serving goes on: stage 4 degrades per request.
    """
    seeder = with_socket_timeout(client, SEED_TIMEOUT_S, connect_timeout=SEED_CONNECT_TIMEOUT_S)
    try:
        if guarded(None, "stock", "snapshot check", seeder.exists, SNAPSHOT_KEY):
            return False
        if not guarded(None, "stock", "seed lock", seeder.set, SEED_LOCK_KEY, version, nx=True, ex=SEED_LOCK_S):
            return False  # another container is seeding (or failed to, less than SEED_LOCK_S ago)
        return RedisStockStore(seeder).load_snapshot(version, snapshot["out_of_stock"], snapshot.get("quantities", {}))
    except DependencyError:
        logger.warning("stock snapshot seed failed; serving without it", exc_info=True)
        return False
    finally:
        seeder.close()


class IndexSyncedStockStore:
    """Redis stays the source of truth (stage 4 reads it); the k-NN documents' ``in_stock`` flag follows it
    best-effort, so that the index's in-query filter stops returning items that are sold out."""

    def __init__(self, store: StockStore, index_admin: OpenSearchIndexAdmin) -> None:
        self._store = store
        self._admin = index_admin
        self.index_sync_failures = 0

    def out_of_stock(self, item_ids: Sequence[str]) -> np.ndarray:
        return self._store.out_of_stock(item_ids)

    def begin_out_of_stock(self, item_ids: Sequence[str]) -> PendingStock:
        return self._store.begin_out_of_stock(item_ids)

    def set_stock(self, item_id: str, in_stock: bool, quantity: int | None = None) -> None:
        self._store.set_stock(item_id, in_stock, quantity)
        try:
            self._admin.set_in_stock(item_id, in_stock and (quantity is None or quantity > 0))
        except DependencyError:
            self.index_sync_failures += 1  # the stock stage still filters it; the next rebuild re-syncs

    def __getattr__(self, name: str) -> Any:  # load_snapshot, ping: the Redis store's own methods
        return getattr(self._store, name)
