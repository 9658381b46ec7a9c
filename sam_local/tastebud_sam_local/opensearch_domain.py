"""An OpenSearch Service domain in memory, for tests (in process) and `sam local` (over HTTP): the REST API subset
the adapters use, answered with the documented bodies.

``FakeOpenSearchDomain`` answers create index, HEAD/GET/DELETE index (GET with wildcards), _settings, _bulk,
_refresh, _forcemerge, _count, _alias/_aliases, _update (with ``require_alias``), _update_by_query (term query +
painless assignment), k-NN _search with efficient filters, ``_plugins/_knn/warmup``,
``_forcemerge?wait_for_completion=false`` (``{"task": "<node>:<n>"}``) with ``GET _tasks`` / ``GET _tasks/<id>``
(running for ``merge_polls`` reads, then ``completed`` with the merge's response, as a stored task result); error
bodies ``{"error": {"root_cause": [...], "type", "reason"}, "status"}``. Its k-NN is exact (brute force) and its
scores follow the k-NN "spaces" table for ``innerproduct``. Like OpenSearch, ``_update`` on a missing target
without ``require_alias`` auto-creates a plain index of that name. Tests plug it under opensearch-py's transport as
its urllib3 pool, so requests go through the real client (SigV4 signing included); ``serve_opensearch`` puts it
behind an HTTP server. It proves the wire contract, nothing about the real HNSW graph.
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import urllib3

from tastebud_sam_local.http_thread import serve_in_thread

Reply = tuple[int, dict[str, str], bytes]


def json_reply(status: int, document: Any) -> Reply:
    return status, {"content-type": "application/json; charset=UTF-8"}, json.dumps(document).encode()


def opensearch_error(status: int, kind: str, reason: str, **extra: Any) -> Reply:
    """The error body every OpenSearch REST endpoint uses."""
    cause = {"type": kind, "reason": reason, **extra}
    return json_reply(status, {"error": {"root_cause": [cause], **cause}, "status": status})


class FakeOpenSearchDomain:
    """An OpenSearch Service domain in memory (see the module docstring): as a urllib3 pool (``urlopen``) for
    in-process tests, or behind ``serve_opensearch`` over HTTP."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.indices: dict[str, dict[str, Any]] = {}
        self.aliases: dict[str, set[str]] = {}
        self.failures: list[Reply | Exception] = []  # served (FIFO) before normal routing
        self.clock_ms = 1_760_000_000_000  # creation_date of the next index (ms), strictly increasing
        self.tasks: dict[str, dict[str, Any]] = {}  # background tasks (force merges) by "<node>:<number>"
        self.merge_polls = 1  # GET _tasks/<id> answers completed=false this many times, then true
        self._generation = 0  # bumped by every request that may change documents: the k-NN matrices' cache key
        self._matrices: dict[tuple[Any, ...], tuple[list[str], np.ndarray, dict[str, np.ndarray]]] = {}

    # --- urllib3 pool interface used by Urllib3HttpConnection.perform_request
    def urlopen(self, method: str, url: str, body: bytes | None = None, retries: Any = None,
                headers: dict[str, str] | None = None, **kwargs: Any) -> urllib3.HTTPResponse:
        parts = urlsplit(url)
        if method not in ("GET", "HEAD") and not parts.path.endswith(("/_search", "/_count")):
            self._generation += 1
        self.requests.append({"method": method, "path": parts.path, "query": parse_qs(parts.query),
                              "headers": dict(headers or {}), "body": body, "timeout": kwargs.get("timeout")})
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            status, reply_headers, payload = failure
        else:
            status, reply_headers, payload = self._route(method, parts.path, body or b"", parse_qs(parts.query))
        return urllib3.HTTPResponse(body=io.BytesIO(payload), status=status, headers=reply_headers,
                                    preload_content=True)

    def close(self) -> None:
        pass

    # --- the REST API subset the adapters use
    def _route(self, method: str, path: str, body: bytes, query: dict[str, list[str]]) -> Reply:
        segments = [unquote(s) for s in path.split("/") if s]
        if method == "PUT" and len(segments) == 1:
            return self._create(segments[0], json.loads(body))
        if method == "HEAD" and len(segments) == 1:
            return (200 if segments[0] in self.indices else 404), {"content-type": "application/json"}, b""
        if method == "DELETE" and len(segments) == 1:
            return self._delete(segments[0])
        if method == "GET" and len(segments) == 1 and not segments[0].startswith("_"):
            return self._get_indices(segments[0])
        if method == "PUT" and len(segments) == 2 and segments[1] == "_settings":
            return self._put_settings(segments[0], json.loads(body))
        if method == "POST" and len(segments) == 2 and segments[1] == "_forcemerge":
            if query.get("wait_for_completion") == ["false"]:
                return self._start_task(segments[0], query)
            return self._shards_reply(segments[0], query)
        if method == "GET" and segments == ["_tasks"]:
            return self._list_tasks(query)
        if method == "GET" and len(segments) == 2 and segments[0] == "_tasks":
            return self._get_task(segments[1])
        if method == "GET" and segments[:3] == ["_plugins", "_knn", "warmup"] and len(segments) == 4:
            return self._shards_reply(segments[3], query)
        if method in ("GET", "POST") and len(segments) == 2 and segments[1] == "_count":
            return self._count(segments[0])
        if method == "POST" and len(segments) == 2 and segments[1] == "_update_by_query":
            return self._update_by_query(segments[0], json.loads(body))
        if method == "POST" and segments[-1] == "_bulk":
            return self._bulk(segments[0] if len(segments) == 2 else None, body)
        if method == "POST" and segments[-1] == "_refresh":
            return json_reply(200, {"_shards": {"total": 2, "successful": 1, "failed": 0}})
        if method == "GET" and segments[0] == "_alias":
            return self._get_alias(segments[1])
        if method == "POST" and segments == ["_aliases"]:
            return self._update_aliases(json.loads(body))
        if method in ("POST", "GET") and segments[-1] == "_search":
            return self._search(segments[0], json.loads(body), query)
        if method == "POST" and len(segments) == 3 and segments[1] == "_update":
            return self._update(segments[0], segments[2], json.loads(body), query)
        return opensearch_error(400, "illegal_argument_exception", f"no handler for {method} {path}")

    def _resolve(self, name: str) -> list[str] | None:
        if name in self.indices:
            return [name]
        members = self.aliases.get(name)
        return sorted(members) if members else None

    def _create(self, name: str, body: dict[str, Any]) -> Reply:
        if name in self.indices:
            return opensearch_error(400, "resource_already_exists_exception", f"index [{name}/x] already exists",
                                    index=name)
        self.clock_ms += 1
        settings = dict((body.get("settings") or {}).get("index") or {})
        self.indices[name] = {"body": body, "docs": {}, "settings": {**settings, "creation_date": str(self.clock_ms)}}
        return json_reply(200, {"acknowledged": True, "shards_acknowledged": True, "index": name})

    def _missing(self, name: str) -> Reply:
        return opensearch_error(404, "index_not_found_exception", f"no such index [{name}]",
                                **{"resource.type": "index_or_alias", "resource.id": name, "index": name})

    def _delete(self, name: str) -> Reply:
        if name not in self.indices:
            return self._missing(name)
        del self.indices[name]
        for members in self.aliases.values():
            members.discard(name)
        return json_reply(200, {"acknowledged": True})

    def _get_indices(self, pattern: str) -> Reply:
        """GET /<index>: a wildcard that matches nothing is ``{}`` (allow_no_indices), a missing name a 404."""
        names = [n for n in sorted(self.indices) if fnmatch.fnmatchcase(n, pattern)] if "*" in pattern else (
            self._resolve(pattern) or [])
        if not names and "*" not in pattern:
            return self._missing(pattern)
        return json_reply(200, {n: {"aliases": {a: {} for a, members in self.aliases.items() if n in members},
                               "mappings": self.indices[n]["body"].get("mappings", {}),
                               "settings": {"index": {k: str(v) for k, v in self.indices[n]["settings"].items()}}}
                           for n in names})

    def _put_settings(self, name: str, body: dict[str, Any]) -> Reply:
        if name not in self.indices:
            return self._missing(name)
        self.indices[name]["settings"].update(body.get("index", body))
        return json_reply(200, {"acknowledged": True})

    def _shards_reply(self, name: str, query: dict[str, list[str]]) -> Reply:
        """_forcemerge and k-NN warm-up both answer with the shard summary of the work done."""
        if name not in self.indices:
            return self._missing(name)
        settings = self.indices[name]["settings"]
        total = int(settings.get("number_of_shards", 1)) * (1 + int(settings.get("number_of_replicas", 1)))
        return json_reply(200, {"_shards": {"total": total, "successful": total, "failed": 0}})

    def _start_task(self, name: str, query: dict[str, list[str]]) -> Reply:
        if name not in self.indices:
            return self._missing(name)
        task_id = f"oTUltX4IQMOUUVeiohTt8A:{1000 + len(self.tasks)}"
        segments = query.get("max_num_segments", ["-1"])[0]
        self.tasks[task_id] = {"index": name, "reads": 0, "description": (
            f"Force-merge indices [{name}], maxSegments[{segments}], onlyExpungeDeletes[false], flush[true], "
            "primaryOnly[false]")}
        return json_reply(200, {"task": task_id})

    def _task_info(self, task_id: str, task: dict[str, Any]) -> dict[str, Any]:
        node, number = task_id.split(":")
        return {"node": node, "id": int(number), "type": "transport", "action": "indices:admin/forcemerge",
                "description": task["description"], "start_time_in_millis": self.clock_ms,
                "running_time_in_nanos": 1_000_000, "cancellable": False, "cancelled": False, "headers": {}}

    def _list_tasks(self, query: dict[str, list[str]]) -> Reply:
        pattern = query.get("actions", ["*"])[0]
        running = {task_id: self._task_info(task_id, task) for task_id, task in self.tasks.items()
                   if task["reads"] < self.merge_polls and fnmatch.fnmatchcase("indices:admin/forcemerge", pattern)}
        nodes = {"oTUltX4IQMOUUVeiohTt8A": {"name": "data-node-1", "roles": ["data", "ingest"], "tasks": running}}
        return json_reply(200, {"nodes": nodes if running else {}})

    def _get_task(self, task_id: str) -> Reply:
        task = self.tasks.get(task_id)
        if task is None:
            return opensearch_error(404, "resource_not_found_exception",
                                    f"task [{task_id}] isn't running and hasn't stored its results")
        task["reads"] += 1
        if task["reads"] <= self.merge_polls:
            return json_reply(200, {"completed": False, "task": self._task_info(task_id, task)})
        _, _, merged = self._shards_reply(task["index"], {})
        return json_reply(200, {"completed": True, "task": self._task_info(task_id, task),
                                "response": json.loads(merged)})

    def _count(self, target: str) -> Reply:
        indices = self._resolve(target)
        if not indices:
            return self._missing(target)
        count = sum(len(self.indices[i]["docs"]) for i in indices)
        return json_reply(200, {"count": count, "_shards": {"total": len(indices), "successful": len(indices),
                                                        "skipped": 0, "failed": 0}})

    def _update_by_query(self, target: str, body: dict[str, Any]) -> Reply:
        """The subset the adapters send: a ``term`` query and ``ctx._source.<field> = params.<name>``."""
        indices = self._resolve(target)
        if not indices:
            return self._missing(target)
        script = body["script"]
        assignment = re.fullmatch(r"ctx\._source\.(\w+) = params\.(\w+)", script["source"].strip())
        if assignment is None:
            return opensearch_error(400, "script_exception", "compile error", lang=script.get("lang", "painless"))
        field, param = assignment.groups()
        updated = 0
        for index in indices:
            for doc in self.indices[index]["docs"].values():
                if _matches(doc, {"bool": {"filter": [body["query"]]}}):
                    doc[field] = script["params"][param]
                    updated += 1
        return json_reply(200, {"took": 5, "timed_out": False, "total": updated, "updated": updated, "deleted": 0,
                           "batches": 1 if updated else 0, "version_conflicts": 0, "noops": 0,
                           "retries": {"bulk": 0, "search": 0}, "throttled_millis": 0, "requests_per_second": -1.0,
                           "throttled_until_millis": 0, "failures": []})

    def _dimension(self, index: str) -> int:
        return int(self.indices[index]["body"]["mappings"]["properties"]["embedding"]["dimension"])

    def _bulk(self, default_index: str | None, body: bytes) -> Reply:
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        items, errors = [], False
        for action, document in zip(lines[::2], lines[1::2], strict=True):
            meta = action["index"]
            index = meta.get("_index", default_index)
            if index not in self.indices:
                return opensearch_error(404, "index_not_found_exception", f"no such index [{index}]", index=index)
            if len(document.get("embedding", [])) != self._dimension(index):
                errors = True
                items.append({"index": {"_index": index, "_id": meta["_id"], "status": 400, "error": {
                    "type": "mapper_parsing_exception", "reason": "failed to parse field [embedding] of type "
                    f"[knn_vector] in document with id '{meta['_id']}'"}}})
                continue
            self.indices[index]["docs"][meta["_id"]] = document
            items.append({"index": {"_index": index, "_id": meta["_id"], "_version": 1, "result": "created",
                                    "status": 201, "_seq_no": 0, "_primary_term": 1}})
        return json_reply(200, {"took": 3, "errors": errors, "items": items})

    def _get_alias(self, alias: str) -> Reply:
        members = self.aliases.get(alias)
        if not members:
            return json_reply(404, {"error": f"alias [{alias}] missing", "status": 404})
        return json_reply(200, {index: {"aliases": {alias: {}}} for index in sorted(members)})

    def _update_aliases(self, body: dict[str, Any]) -> Reply:
        for action in body["actions"]:  # all or nothing, like OpenSearch
            (kind, spec), = action.items()
            if spec["index"] not in self.indices:
                return opensearch_error(404, "index_not_found_exception", f"no such index [{spec['index']}]")
        for action in body["actions"]:
            (kind, spec), = action.items()
            members = self.aliases.setdefault(spec["alias"], set())
            (members.add if kind == "add" else members.discard)(spec["index"])
        return json_reply(200, {"acknowledged": True})

    def _update(self, target: str, doc_id: str, body: dict[str, Any], query: dict[str, list[str]]) -> Reply:
        if query.get("require_alias") == ["true"] and target not in self.aliases:
            return opensearch_error(404, "index_not_found_exception",
                                    f"no such index [{target}] and [require_alias] request flag is [true] and "
                                    f"[{target}] is not an alias", index=target)
        if target not in self.indices and not self.aliases.get(target):
            self._create(target, {})  # action.auto_create_index: a plain index NAMED like the target
        indices = self._resolve(target)
        if not indices:
            return self._missing(target)
        docs = self.indices[indices[0]]["docs"]
        if doc_id not in docs:
            return opensearch_error(404, "document_missing_exception", f"[{doc_id}]: document missing",
                                    index=indices[0], shard="0")
        docs[doc_id].update(body["doc"])
        return json_reply(200, {"_index": indices[0], "_id": doc_id, "_version": 2, "result": "updated",
                           "_shards": {"total": 2, "successful": 1, "failed": 0}})

    def _matrix(self, indices: list[str], field: str) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
        """Ids, vectors and the other fields' columns of ``indices``, rebuilt only after documents changed."""
        key = (tuple(indices), field, self._generation)
        if key not in self._matrices:
            docs = {doc_id: doc for index in indices for doc_id, doc in self.indices[index]["docs"].items()}
            ids = list(docs)
            with_vector = [doc for doc in docs.values() if field in doc]
            width = len(with_vector[0][field]) if with_vector else 0
            matrix = np.asarray([doc.get(field, [0.0] * width) for doc in docs.values()], dtype=np.float64)
            names = {name for doc in docs.values() for name in doc if name != field}
            columns = {name: np.asarray([doc.get(name, _MISSING) for doc in docs.values()], dtype=object)
                       for name in names}
            self._matrices = {key: (ids, matrix.reshape(len(ids), width), columns)}  # keep only the newest
        return self._matrices[key]

    def _search(self, target: str, body: dict[str, Any], query: dict[str, list[str]]) -> Reply:
        indices = self._resolve(target)
        if not indices:
            return opensearch_error(404, "index_not_found_exception", f"no such index [{target}]",
                                    **{"resource.type": "index_or_alias", "resource.id": target, "index": target})
        (field, knn), = body["query"]["knn"].items()
        all_ids, matrix, columns = self._matrix(indices, field)
        keep = np.flatnonzero(_matching(columns, len(all_ids), knn.get("filter")))
        vector = np.asarray(knn["vector"], dtype=np.float64)
        if keep.size and vector.size != matrix.shape[1]:
            return opensearch_error(400, "search_phase_execution_exception", "all shards failed",
                                    phase="query")
        ip = matrix[keep] @ vector if keep.size else np.zeros(0)
        scores = np.where(ip >= 0, ip + 1.0, 1.0 / (1.0 - np.minimum(ip, 0.0)))  # k-NN "spaces": innerproduct
        order = np.argsort(-scores, kind="stable")[: min(knn["k"], body.get("size", 10))]
        hits = [{"_index": indices[0], "_id": all_ids[keep[i]], "_score": float(scores[i])} for i in order]
        if "filter_path" in query:  # what filter_path=hits.hits._id,hits.hits._score,timed_out leaves
            return json_reply(200, {"timed_out": False, "hits": {"hits": [{"_id": h["_id"], "_score": h["_score"]}
                                                                    for h in hits]}})
        return json_reply(200, {"took": 4, "timed_out": False,
                           "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                           "hits": {"total": {"value": len(hits), "relation": "eq"},
                                    "max_score": hits[0]["_score"] if hits else None, "hits": hits}})


_MISSING = object()  # a field a document does not have: equal to no term value


def _matching(columns: dict[str, np.ndarray], size: int, spec: dict[str, Any] | None) -> np.ndarray:
    """``_matches`` over every document at once (the columns of the filtered fields)."""
    keep = np.ones(size, dtype=bool)
    if not spec:
        return keep
    clauses = spec["bool"]
    for clause, wanted in [(c, True) for c in clauses.get("filter", [])] + \
                          [(c, False) for c in clauses.get("must_not", [])]:
        (name, value), = clause["term"].items()
        column = columns.get(name)
        hit = np.zeros(size, dtype=bool) if column is None else np.asarray(column == value, dtype=bool)
        keep &= hit if wanted else ~hit
    return keep


def _matches(doc: dict[str, Any], spec: dict[str, Any] | None) -> bool:
    if not spec:
        return True
    clauses = spec["bool"]

    def term(clause: dict[str, Any]) -> bool:
        (name, value), = clause["term"].items()
        return name in doc and doc[name] == value

    return all(term(c) for c in clauses.get("filter", [])) and not any(term(c) for c in clauses.get("must_not", []))


def serve_opensearch(domain: FakeOpenSearchDomain, host: str, port: int = 0) -> ThreadingHTTPServer:
    """``domain`` over HTTP on ``host:port`` (0: any free port), in a daemon thread; ``shutdown()`` stops it."""
    lock = threading.Lock()  # the domain's dicts are not thread-safe; requests are answered one at a time

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real domain

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            with lock:
                response = domain.urlopen(self.command, self.path, body, headers=dict(self.headers))
            payload = response.data or b""
            self.send_response(response.status)
            for name, value in response.headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return serve_in_thread(Handler, host, port, "opensearch-standin")
