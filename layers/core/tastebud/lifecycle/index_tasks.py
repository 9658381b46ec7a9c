"""Index hot-swap tasks that talk to OpenSearch (the VPC-attached ``IndexTaskFunction``).

One Lambda, dispatched on ``event["action"]`` (statemachines/index_hot_swap.asl.json):

  create_index   the versioned index ``<alias>-<index_version>`` with replicas 0 and refresh off (fast bulk);
                 a half-built index of an earlier failed run is deleted first (re-runs are harmless)
  bulk_load      one chunk ``[start, end)`` of catalog rows (a Map iteration); per-document failures are
                 RETURNED (``failed``) so the state machine's Choice fails the Map and rolls back
  start_merge    ``_forcemerge`` to one segment in the BACKGROUND (``wait_for_completion=false``); returns the
                 task id. At 100k-1M vectors the merge (which rebuilds the faiss graphs) takes far longer than a
                 client timeout, so the state machine polls it (Wait -> merge_status -> Choice). No refresh
                 first: Lucene's forceMerge flushes the indexing buffer itself, inside the background task (a
                 refresh of a full buffer builds its graphs in the request, under the client timeout)
  merge_status   ``GET _tasks/<id>``: done or not; a failed merge raises; a task OpenSearch no longer knows
                 (its node restarted) is started again (a merge of merged segments is quick)
  settle         replicas + refresh interval back to serving values, and a refresh (quick once merged: it
                 opens a reader on the merged segment) so that verify counts every document
  warm_up        k-NN warm-up (loads the HNSW graphs into memory: the first queries on a cold graph take
                 seconds) under a bounded request timeout; ``warm: false`` = still loading, ask again
  verify         document count == catalog size, and recall@k of a deterministic sample of item vectors
                 against exact inner-product search over the version's index_vectors.npy
  flip           ONE atomic ``_aliases`` call, then ONE S3 PUT of LIVE.json (index + endpoint + artifacts)
  rollback       alias and LIVE.json back to the previous live version; the half-built index deleted
  cleanup        delete ``<alias>-*`` indices beyond the newest ``keep`` (the live one always kept)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tastebud.adapters.aws.live_pointer import LivePointer, read_live, write_live
from tastebud.adapters.aws.opensearch_admin import OpenSearchIndexAdmin
from tastebud.adapters.aws.opensearch_index import OpenSearchIndex
from tastebud.catalog import Catalog
from tastebud.errors import DependencyError


@dataclass
class IndexDeps:
    opensearch: Any
    s3: Any
    bucket: str
    prefix: str
    alias: str
    cache: Path

    @property
    def admin(self) -> OpenSearchIndexAdmin:
        return OpenSearchIndexAdmin(self.opensearch, self.alias)


def _status(exc: Exception) -> int | None:
    return getattr(exc, "status_code", None)


def _version_file(deps: IndexDeps, version: str, name: str) -> Path:
    """One file of an artifact version, downloaded once per warm container."""
    path = deps.cache / version / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".part")
        deps.s3.download_file(deps.bucket, f"{deps.prefix}/versions/{version}/{name}", str(partial))
        partial.replace(path)
    return path


def _catalog_and_vectors(deps: IndexDeps, version: str) -> tuple[Catalog, np.ndarray]:
    catalog = Catalog.load(_version_file(deps, version, "catalog.npz"))
    vectors = np.load(_version_file(deps, version, "index_vectors.npy"), mmap_mode="r")
    return catalog, vectors


def _exists(deps: IndexDeps, index: str) -> bool:
    return bool(deps.opensearch.indices.exists(index=index))


def create_index(event: dict[str, Any], deps: IndexDeps) -> dict[str, Any]:
    index, live = event["index"], event.get("live") or {}
    if index == live.get("index"):
        raise DependencyError("index", f"{index} is the live index; refusing to rebuild it in place")
    if _exists(deps, index):
        deps.opensearch.indices.delete(index=index)  # a half-built index of an earlier failed run
    deps.admin.create(event["index_version"], int(event["dimension"]), replicas=0, refresh_interval="-1")
    return {"index": index, "created": True}


def bulk_load(event: dict[str, Any], deps: IndexDeps) -> dict[str, Any]:
    start, end = int(event["start"]), int(event["end"])
    catalog, vectors = _catalog_and_vectors(deps, event["version"])
    documents = OpenSearchIndexAdmin.documents(catalog, vectors)
    chunk = (doc for row, doc in enumerate(documents) if start <= row < end)
    try:
        loaded = deps.admin.bulk_load(event["index"], chunk, refresh=False)
    except DependencyError as exc:
        return {"start": start, "end": end, "loaded": 0, "failed": end - start, "error": str(exc)}
    return {"start": start, "end": end, "loaded": loaded, "failed": 0}


def start_merge(event: dict[str, Any], deps: IndexDeps) -> dict[str, Any]:
    index = event["index"]
    return {"index": index, "task": deps.admin.start_force_merge(index)}


def merge_status(event: dict[str, Any], deps: IndexDeps) -> dict[str, Any]:
    index, task = event["index"], str(event["task"])
    status = deps.admin.task_status(task)
    if not status["found"]:  # its node restarted, and the result with it: merge again (idempotent)
        return {"index": index, "task": deps.admin.start_force_merge(index), "done": False, "restarted": True}
    if status["error"]:
        raise DependencyError("index", f"force merge of {index} (task {task}) failed: {status['error']}")
    return {"index": index, "task": task, "done": status["completed"], "restarted": False}


def settle(event: dict[str, Any], deps: IndexDeps) -> dict[str, Any]:
    index = event["index"]
    serving = {"number_of_replicas": int(event.get("replicas", 1)), "refresh_interval": "30s"}
    deps.opensearch.indices.put_settings(index=index, body={"index": serving})
    deps.opensearch.indices.refresh(index=index)
    return {"index": index}


def warm_up(event: dict[str, Any], deps: IndexDeps) -> dict[str, Any]:
    index = event["index"]
    # Below the client's own timeout (60 s) and far below the Lambda's (900 s): a timeout is an answer here.
    warmed = deps.admin.warm_up(index, timeout=float(event.get("timeout", 45.0)))
    shards = warmed["shards"] or {}
    return {"index": index, "warm": warmed["warm"], "warmed_shards": shards.get("successful", 0)}


def verify(event: dict[str, Any], deps: IndexDeps) -> dict[str, Any]:
    index = event["index"]
    catalog, vectors = _catalog_and_vectors(deps, event["version"])
    count = int(deps.opensearch.count(index=index)["count"])
    k = min(int(event.get("k", 200)), catalog.size)
    rng = np.random.default_rng(int(event.get("seed", 7)))
    sample = rng.choice(catalog.size, size=min(int(event.get("samples", 50)), catalog.size), replace=False)
    ef_search = event.get("ef_search")
    ann = OpenSearchIndex(deps.opensearch, index, catalog, event["index_version"], require_in_stock=False,
                          require_open=False, timeout=10.0, ef_search=int(ef_search) if ef_search else None)
    matrix = np.asarray(vectors, dtype=np.float32)
    hits = 0
    for row in sample.tolist():
        query = matrix[row]
        exact = np.argsort(-(matrix @ query), kind="stable")[:k]
        rows, _ = ann.search(query, k)
        hits += len(set(rows.tolist()) & set(exact.tolist()))
    recall = hits / (k * sample.size) if sample.size else 0.0
    min_recall = float(event.get("min_recall", 0.9))
    ok = count == catalog.size and recall >= min_recall
    reason = "" if ok else (f"{count} documents for {catalog.size} items" if count != catalog.size
                            else f"recall@{k} {recall:.3f} < {min_recall}")
    return {"ok": ok, "count": count, "expected": catalog.size, "recall": round(recall, 4), "k": k, "reason": reason}


def flip(event: dict[str, Any], deps: IndexDeps) -> dict[str, Any]:
    live = event.get("live")
    pointer = LivePointer(version=event["version"], model_version=event["model_version"],
                          index_version=event["index_version"], index=event["index"], endpoint=event["endpoint"],
                          previous={k: v for k, v in live.items() if k != "previous"} if live else None)
    deps.admin.swap_alias(event["index"])
    write_live(deps.s3, deps.bucket, deps.prefix, pointer)
    return json.loads(pointer.to_json())


def rollback(event: dict[str, Any], deps: IndexDeps) -> dict[str, Any]:
    """Everything back on the previous live version; safe to run whatever step failed (and twice)."""
    index, live = event.get("index"), event.get("live")
    done: list[str] = []
    current = read_live(deps.s3, deps.bucket, deps.prefix)
    if live:
        previous = LivePointer(**{k: live[k] for k in ("version", "model_version", "index_version", "index",
                                                        "endpoint")}, previous=live.get("previous"))
        if current is None or current.version != previous.version:
            write_live(deps.s3, deps.bucket, deps.prefix, previous)
            done.append("pointer restored")
        if _exists(deps, previous.index):
            removed = deps.admin.swap_alias(previous.index)
            if removed:
                done.append(f"alias back on {previous.index}")
    elif current is not None and current.index == index:  # the very first version failed after its flip
        deps.s3.delete_object(Bucket=deps.bucket, Key=f"{deps.prefix}/LIVE.json")
        done.append("pointer removed")
    if index and index != (live or {}).get("index") and _exists(deps, index):
        deps.opensearch.indices.delete(index=index)
        done.append(f"deleted {index}")
    return {"rolled_back": True, "actions": done}


def cleanup(event: dict[str, Any], deps: IndexDeps) -> dict[str, Any]:
    keep = max(1, int(event.get("keep", 2)))
    live = read_live(deps.s3, deps.bucket, deps.prefix)
    try:
        found = deps.opensearch.indices.get(index=f"{deps.alias}-*")
    except Exception as exc:
        if _status(exc) == 404:
            return {"deleted": []}
        raise
    by_age = sorted(found, key=lambda name: int(found[name]["settings"]["index"].get("creation_date", 0)),
                    reverse=True)
    kept = set(by_age[:keep]) | ({live.index} if live else set())
    deleted = [name for name in by_age if name not in kept]
    for name in deleted:
        deps.opensearch.indices.delete(index=name)
    return {"deleted": deleted, "kept": sorted(kept)}


ACTIONS = {"create_index": create_index, "bulk_load": bulk_load, "start_merge": start_merge,
           "merge_status": merge_status, "settle": settle, "warm_up": warm_up, "verify": verify, "flip": flip,
           "rollback": rollback, "cleanup": cleanup}


def handle(event: dict[str, Any], deps: IndexDeps) -> dict[str, Any]:
    action = ACTIONS.get(str(event.get("action")))
    if action is None:
        raise ValueError(f"unknown index task action {event.get('action')!r}; one of {sorted(ACTIONS)}")
    return action(event, deps)
