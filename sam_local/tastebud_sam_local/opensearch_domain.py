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

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import urllib3

from tastebud_sam_local.http_thread import serve_in_thread
from tastebud_sam_local.opensearch_documents import DocumentApi
from tastebud_sam_local.opensearch_force_merge import ForceMergeApi
from tastebud_sam_local.opensearch_knn import KnnSearchApi
from tastebud_sam_local.opensearch_replies import Reply, json_reply, opensearch_error


class FakeOpenSearchDomain(DocumentApi, ForceMergeApi, KnnSearchApi):
    """An OpenSearch Service domain in memory (see the module docstring): as a urllib3 pool (``urlopen``) for
    in-process tests, or behind ``serve_opensearch`` over HTTP. Its APIs are in its base classes; this routes."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []
        self.failures: list[Reply | Exception] = []  # served (FIFO) before normal routing

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
