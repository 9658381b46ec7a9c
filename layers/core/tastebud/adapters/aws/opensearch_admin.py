"""The admin side of the OpenSearch k-NN index: its mapping (see ``opensearch_index`` for the design), bulk load,
force merge, warm-up, alias swap and the stock / merchant flags the k-NN filter reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from tastebud.adapters.aws.opensearch_index import VECTOR_FIELD, describe_error, is_outage, is_retryable
from tastebud.adapters.aws.retry import RetryPolicy
from tastebud.catalog import DOMAINS, Catalog
from tastebud.circuit import guarded_call
from tastebud.errors import ArtifactMismatchError, DependencyError


def index_body(dimension: int, *, m: int = 32, ef_construction: int = 256, ef_search: int = 512,
               shards: int = 1, replicas: int = 1, refresh_interval: str = "30s") -> dict[str, Any]:
    """Settings + mappings of one concrete item index (see the module docstring for the choices)."""
    return {
        "settings": {
            "index": {
                "knn": True,
                "number_of_shards": shards,
                "number_of_replicas": replicas,
                "refresh_interval": refresh_interval,
            }
        },
        "mappings": {
            "dynamic": "strict",
            "properties": {
                VECTOR_FIELD: {
                    "type": "knn_vector",
                    "dimension": dimension,
                    "method": {"name": "hnsw", "engine": "faiss", "space_type": "innerproduct",
                               "parameters": {"m": m, "ef_construction": ef_construction,
                                              "ef_search": ef_search}},
                },
                "domain": {"type": "keyword"},
                "merchant_id": {"type": "keyword"},
                "category": {"type": "keyword"},
                "in_stock": {"type": "boolean"},
                "merchant_open": {"type": "boolean"},
            },
        },
    }


class OpenSearchIndexAdmin:
    """Builds a new concrete index, bulk-loads the catalog's vectors, and swaps the alias atomically.

    ``breaker``: the serving side's circuit breaker of the domain (``tastebud.circuit``), used by the
    per-request stock updates (``set_in_stock``): while it is open they fail at once. Only outages count against
    it (connection errors, timeouts, 429, 5xx), not a 404 for one document. Batch operations (create, bulk load,
    alias swap) retry with long backoff instead and are not guarded.
    """

    def __init__(self, client: Any, alias: str, *, retry: RetryPolicy | None = None, breaker: Any = None) -> None:
        self._client = client
        self._alias = alias
        self._retry = retry or RetryPolicy(attempts=5, base_delay=0.5, max_delay=10.0)
        self._breaker = breaker

    def index_name(self, index_version: str) -> str:
        return f"{self._alias}-{index_version}".lower()

    def create(self, index_version: str, dimension: int, **parameters: Any) -> str:
        name = self.index_name(index_version)
        try:
            self._client.indices.create(index=name, body=index_body(dimension, **parameters))
        except Exception as exc:
            raise DependencyError("index", f"creating {name}: {describe_error(exc)}") from exc
        return name

    def start_force_merge(self, index: str, *, max_num_segments: int = 1) -> str:
        """Start ``_forcemerge`` in the background and return its task id (``node:number``).

        ``wait_for_completion=false`` (OpenSearch >= 2.7): a blocking force merge of 100k-1M HNSW vectors outlasts
        any client timeout (the merge rebuilds the faiss graphs). Idempotent: a force merge of ``index`` that is
        still running (this call retried after a lost answer) is returned instead of queueing a second one.
        """
        running = self.running_force_merge(index)
        if running:
            return running
        try:
            started = self._client.indices.forcemerge(index=index, params={"max_num_segments": max_num_segments,
                                                                          "wait_for_completion": "false"})
        except Exception as exc:
            raise DependencyError("index", f"force merge of {index}: {describe_error(exc)}") from exc
        task = started.get("task") if isinstance(started, dict) else None
        if not task:
            raise DependencyError("index", f"force merge of {index}: no task id in {started!r} (OpenSearch < 2.7?)")
        return str(task)

    def running_force_merge(self, index: str) -> str | None:
        """The id of a running force-merge task on ``index`` (tasks list API, detailed descriptions), if any."""
        try:
            listed = self._client.tasks.list(params={"actions": "indices:admin/forcemerge*", "detailed": "true"})
        except Exception as exc:
            raise DependencyError("index", f"listing force-merge tasks: {describe_error(exc)}") from exc
        for node in (listed.get("nodes") or {}).values():
            for task_id, task in (node.get("tasks") or {}).items():
                # descriptions read "Force-merge indices [<index>], maxSegments[1], ..."
                if f"[{index}]" in str(task.get("description", "")) and not task.get("parent_task_id"):
                    return str(task_id)
        return None

    def task_status(self, task_id: str) -> dict[str, Any]:
        """``GET _tasks/<id>``: ``{"found", "completed", "error"}``. A finished background task's result is kept in
        the ``.tasks`` index; ``found`` is False when the task is unknown (e.g. its node restarted)."""
        from opensearchpy.exceptions import NotFoundError

        try:
            described = self._client.tasks.get(task_id=task_id)
        except NotFoundError:
            return {"found": False, "completed": False, "error": None}
        except Exception as exc:
            raise DependencyError("index", f"task {task_id}: {describe_error(exc)}") from exc
        error = described.get("error")
        failures = ((described.get("response") or {}).get("_shards") or {}).get("failed", 0)
        if not error and failures:
            error = {"type": "shard_failures", "reason": f"{failures} shard(s) failed",
                     "details": described["response"]["_shards"].get("failures")}
        return {"found": True, "completed": bool(described.get("completed")), "error": error}

    def warm_up(self, index: str, *, timeout: float) -> dict[str, Any]:
        """k-NN warm-up (loads the native graphs of every shard into memory). The call returns when all shards are
        warm or times out; on a timeout the warm-up goes on in the cluster, so ``{"warm": False}`` means "ask again
        later" (a repeat over graphs already loaded returns at once). Shard failures raise."""
        from opensearchpy.exceptions import ConnectionTimeout

        try:
            answer = self._client.transport.perform_request("GET", f"/_plugins/_knn/warmup/{index}",
                                                            params={"request_timeout": timeout})
        except ConnectionTimeout:
            return {"warm": False, "shards": None}
        except Exception as exc:
            raise DependencyError("index", f"k-NN warm-up of {index}: {describe_error(exc)}") from exc
        shards = answer.get("_shards") or {}
        if shards.get("failed"):
            raise DependencyError("index", f"k-NN warm-up of {index}: {shards}")
        return {"warm": True, "shards": shards}

    def set_merchant_open(self, merchant_id: str, is_open: bool) -> int:
        """Flip ``merchant_open`` on every document of a merchant (``_update_by_query`` through the alias)."""
        body = {"query": {"term": {"merchant_id": merchant_id}},
                "script": {"source": "ctx._source.merchant_open = params.open", "lang": "painless",
                           "params": {"open": bool(is_open)}}}
        try:
            response = self._client.update_by_query(index=self._alias, body=body,
                                                    params={"conflicts": "proceed", "refresh": "true"})
        except Exception as exc:
            raise DependencyError("index", f"merchant {merchant_id} open={is_open} in {self._alias}: "
                                           f"{describe_error(exc)}") from exc
        return int(response.get("updated", 0))

    @staticmethod
    def documents(catalog: Catalog, vectors: np.ndarray, *, in_stock: np.ndarray | None = None,
                  merchant_open: np.ndarray | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """(item id, document) per catalog row; ``merchant_open`` is per MERCHANT row (missing = open)."""
        if vectors.shape[0] != catalog.size:
            raise ArtifactMismatchError(f"{vectors.shape[0]} vectors for {catalog.size} catalog items")
        merchants = catalog.merchant_ids[catalog.item_merchant].tolist()
        categories = catalog.categories[catalog.item_category].tolist()
        domains = [DOMAINS[d] for d in catalog.item_domain.tolist()]
        stock = [True] * catalog.size if in_stock is None else in_stock.tolist()
        if merchant_open is None:
            merchant_open = getattr(catalog, "merchant_open", None)  # catalogs that carry merchants' is_open
        opened = ([True] * catalog.size if merchant_open is None
                  else np.asarray(merchant_open, dtype=bool)[catalog.item_merchant].tolist())
        for row, item_id in enumerate(catalog.item_ids.tolist()):
            yield item_id, {VECTOR_FIELD: np.asarray(vectors[row], dtype=np.float32).tolist(), "domain": domains[row],
                            "merchant_id": merchants[row], "category": categories[row],
                            "in_stock": bool(stock[row]), "merchant_open": bool(opened[row])}

    def bulk_load(self, index: str, documents: Iterator[tuple[str, dict[str, Any]]], *,
                  batch: int = 500, refresh: bool = True) -> int:
        """``_bulk`` in batches (NDJSON: action line + document line); per-item errors fail the load."""
        loaded = 0
        lines: list[str] = []

        def flush() -> None:
            nonlocal loaded
            if not lines:
                return
            payload = "\n".join(lines) + "\n"
            try:
                response = self._retry.call(lambda: self._client.bulk(body=payload, index=index), is_retryable)
            except Exception as exc:
                raise DependencyError("index", f"bulk load into {index}: {describe_error(exc)}") from exc
            if response.get("errors"):
                failed = [item["index"] for item in response["items"] if "error" in item.get("index", {})]
                first = failed[0] if failed else {}
                raise DependencyError("index", f"bulk load into {index}: {len(failed)} documents failed, first: "
                                               f"{first.get('_id')}: {first.get('error')}")
            loaded += len(lines) // 2
            lines.clear()

        for item_id, document in documents:
            lines.append(json.dumps({"index": {"_id": item_id}}))
            lines.append(json.dumps(document, separators=(",", ":")))
            if len(lines) >= 2 * batch:
                flush()
        flush()
        if refresh:
            try:
                self._client.indices.refresh(index=index)
            except Exception as exc:
                raise DependencyError("index", f"refreshing {index}: {describe_error(exc)}") from exc
        return loaded

    def swap_alias(self, index: str) -> list[str]:
        """Point the alias at ``index`` and away from every other index in ONE atomic ``_aliases`` call."""
        try:
            current = list(self._client.indices.get_alias(name=self._alias))
        except Exception as exc:
            if getattr(exc, "status_code", None) != 404:
                raise DependencyError("index", f"reading alias {self._alias}: {describe_error(exc)}") from exc
            current = []
        actions: list[dict[str, Any]] = [{"remove": {"index": old, "alias": self._alias}}
                                         for old in current if old != index]
        actions.append({"add": {"index": index, "alias": self._alias}})
        try:
            self._client.indices.update_aliases(body={"actions": actions})
        except Exception as exc:
            raise DependencyError("index", f"swapping alias {self._alias} to {index}: {describe_error(exc)}") from exc
        return [old for old in current if old != index]

    def set_in_stock(self, item_id: str, in_stock: bool) -> None:
        """Partial update of one document's ``in_stock`` flag through the alias (best effort, no retries).

        ``require_alias=true``: before the first hot swap the alias does not exist, and a plain ``_update``
        would auto-create an ordinary index NAMED like the alias (which then blocks every alias swap).
        """
        guarded_call(self._breaker, "index", f"updating {item_id} in {self._alias}",
                     lambda: self._client.update(index=self._alias, id=item_id, body={"doc": {"in_stock": in_stock}},
                                                 params={"retry_on_conflict": 2, "require_alias": "true"}),
                     describe=describe_error, counts=is_outage)
