"""Offline doubles for the AWS services moto cannot run faithfully (OpenSearch k-NN, SageMaker runtime).

They sit at the HTTP level, UNDER the real SDKs, so the adapters' requests go through opensearch-py's
transport (with SigV4 signing) and botocore's serializer/parser (rest-json protocol) exactly as in AWS:
  - ``FakeOpenSearchDomain`` replaces the urllib3 pool of ``opensearchpy.Urllib3HttpConnection``. It
    records every request and answers with the documented bodies of the OpenSearch REST API (create
    index, HEAD/GET/DELETE index (GET with wildcards), _settings, _bulk, _refresh, _forcemerge, _count,
    _alias/_aliases, _update (with ``require_alias``), _update_by_query (term query + painless assignment),
    k-NN _search with efficient filters, ``_plugins/_knn/warmup``, ``_forcemerge?wait_for_completion=false``
    (``{"task": "<node>:<n>"}``) with ``GET _tasks`` / ``GET _tasks/<id>`` (running for ``merge_polls`` reads,
    then ``completed`` with the merge's response, as a stored task result); error bodies
    ``{"error": {"root_cause": [...], "type", "reason"}, "status"}``). Its k-NN is exact (brute force)
    and its scores follow the k-NN "spaces" table for ``innerproduct``. Like OpenSearch, ``_update`` on a
    missing target without ``require_alias`` auto-creates a plain index of that name.
  - ``sagemaker_runtime_client`` is a real botocore client whose ``before-send`` hook answers instead of
    the network, with the raw status/headers/body SageMaker sends (``x-amzn-ErrorType`` + JSON body for
    ModelError / ValidationError / ThrottlingException).
Neither proves anything about the real model or the real HNSW graph; they prove the wire contract.
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import urllib3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.session import get_session
from opensearchpy import OpenSearch, Urllib3AWSV4SignerAuth, Urllib3HttpConnection

from tastebud.features import FEATURE_NAMES
from tastebud.history import REPEAT_COLUMNS

REGION = "eu-west-1"
ACCOUNT = "123456789012"
OPENSEARCH_HOST = "vpc-tastebud-abc123.eu-west-1.es.amazonaws.com"
CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")

Reply = tuple[int, dict[str, str], bytes]


def _json(status: int, document: Any) -> Reply:
    return status, {"content-type": "application/json; charset=UTF-8"}, json.dumps(document).encode()


def opensearch_error(status: int, kind: str, reason: str, **extra: Any) -> Reply:
    """The error body every OpenSearch REST endpoint uses."""
    cause = {"type": kind, "reason": reason, **extra}
    return _json(status, {"error": {"root_cause": [cause], **cause}, "status": status})


class FakeOpenSearchDomain:
    """urllib3-pool stand-in for an OpenSearch Service domain (see the module docstring)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.indices: dict[str, dict[str, Any]] = {}
        self.aliases: dict[str, set[str]] = {}
        self.failures: list[Reply | Exception] = []  # served (FIFO) before normal routing
        self.clock_ms = 1_760_000_000_000  # creation_date of the next index (ms), strictly increasing
        self.tasks: dict[str, dict[str, Any]] = {}  # background tasks (force merges) by "<node>:<number>"
        self.merge_polls = 1  # GET _tasks/<id> answers completed=false this many times, then true

    # --- urllib3 pool interface used by Urllib3HttpConnection.perform_request
    def urlopen(self, method: str, url: str, body: bytes | None = None, retries: Any = None,
                headers: dict[str, str] | None = None, **kwargs: Any) -> urllib3.HTTPResponse:
        parts = urlsplit(url)
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
            return _json(200, {"_shards": {"total": 2, "successful": 1, "failed": 0}})
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
        return _json(200, {"acknowledged": True, "shards_acknowledged": True, "index": name})

    def _missing(self, name: str) -> Reply:
        return opensearch_error(404, "index_not_found_exception", f"no such index [{name}]",
                                **{"resource.type": "index_or_alias", "resource.id": name, "index": name})

    def _delete(self, name: str) -> Reply:
        if name not in self.indices:
            return self._missing(name)
        del self.indices[name]
        for members in self.aliases.values():
            members.discard(name)
        return _json(200, {"acknowledged": True})

    def _get_indices(self, pattern: str) -> Reply:
        """GET /<index>: a wildcard that matches nothing is ``{}`` (allow_no_indices), a missing name a 404."""
        names = [n for n in sorted(self.indices) if fnmatch.fnmatchcase(n, pattern)] if "*" in pattern else (
            self._resolve(pattern) or [])
        if not names and "*" not in pattern:
            return self._missing(pattern)
        return _json(200, {n: {"aliases": {a: {} for a, members in self.aliases.items() if n in members},
                               "mappings": self.indices[n]["body"].get("mappings", {}),
                               "settings": {"index": {k: str(v) for k, v in self.indices[n]["settings"].items()}}}
                           for n in names})

    def _put_settings(self, name: str, body: dict[str, Any]) -> Reply:
        if name not in self.indices:
            return self._missing(name)
        self.indices[name]["settings"].update(body.get("index", body))
        return _json(200, {"acknowledged": True})

    def _shards_reply(self, name: str, query: dict[str, list[str]]) -> Reply:
        """_forcemerge and k-NN warm-up both answer with the shard summary of the work done."""
        if name not in self.indices:
            return self._missing(name)
        settings = self.indices[name]["settings"]
        total = int(settings.get("number_of_shards", 1)) * (1 + int(settings.get("number_of_replicas", 1)))
        return _json(200, {"_shards": {"total": total, "successful": total, "failed": 0}})

    def _start_task(self, name: str, query: dict[str, list[str]]) -> Reply:
        if name not in self.indices:
            return self._missing(name)
        task_id = f"oTUltX4IQMOUUVeiohTt8A:{1000 + len(self.tasks)}"
        segments = query.get("max_num_segments", ["-1"])[0]
        self.tasks[task_id] = {"index": name, "reads": 0, "description": (
            f"Force-merge indices [{name}], maxSegments[{segments}], onlyExpungeDeletes[false], flush[true], "
            "primaryOnly[false]")}
        return _json(200, {"task": task_id})

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
        return _json(200, {"nodes": nodes if running else {}})

    def _get_task(self, task_id: str) -> Reply:
        task = self.tasks.get(task_id)
        if task is None:
            return opensearch_error(404, "resource_not_found_exception",
                                    f"task [{task_id}] isn't running and hasn't stored its results")
        task["reads"] += 1
        if task["reads"] <= self.merge_polls:
            return _json(200, {"completed": False, "task": self._task_info(task_id, task)})
        _, _, merged = self._shards_reply(task["index"], {})
        return _json(200, {"completed": True, "task": self._task_info(task_id, task), "response": json.loads(merged)})

    def _count(self, target: str) -> Reply:
        indices = self._resolve(target)
        if not indices:
            return self._missing(target)
        count = sum(len(self.indices[i]["docs"]) for i in indices)
        return _json(200, {"count": count, "_shards": {"total": len(indices), "successful": len(indices),
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
        return _json(200, {"took": 5, "timed_out": False, "total": updated, "updated": updated, "deleted": 0,
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
        return _json(200, {"took": 3, "errors": errors, "items": items})

    def _get_alias(self, alias: str) -> Reply:
        members = self.aliases.get(alias)
        if not members:
            return _json(404, {"error": f"alias [{alias}] missing", "status": 404})
        return _json(200, {index: {"aliases": {alias: {}}} for index in sorted(members)})

    def _update_aliases(self, body: dict[str, Any]) -> Reply:
        for action in body["actions"]:  # all or nothing, like OpenSearch
            (kind, spec), = action.items()
            if spec["index"] not in self.indices:
                return opensearch_error(404, "index_not_found_exception", f"no such index [{spec['index']}]")
        for action in body["actions"]:
            (kind, spec), = action.items()
            members = self.aliases.setdefault(spec["alias"], set())
            (members.add if kind == "add" else members.discard)(spec["index"])
        return _json(200, {"acknowledged": True})

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
        return _json(200, {"_index": indices[0], "_id": doc_id, "_version": 2, "result": "updated",
                           "_shards": {"total": 2, "successful": 1, "failed": 0}})

    def _search(self, target: str, body: dict[str, Any], query: dict[str, list[str]]) -> Reply:
        indices = self._resolve(target)
        if not indices:
            return opensearch_error(404, "index_not_found_exception", f"no such index [{target}]",
                                    **{"resource.type": "index_or_alias", "resource.id": target, "index": target})
        (field, knn), = body["query"]["knn"].items()
        docs = {doc_id: doc for index in indices for doc_id, doc in self.indices[index]["docs"].items()}
        ids = [doc_id for doc_id, doc in docs.items() if _matches(doc, knn.get("filter"))]
        vector = np.asarray(knn["vector"], dtype=np.float64)
        if ids and vector.size != len(docs[ids[0]][field]):
            return opensearch_error(400, "search_phase_execution_exception", "all shards failed",
                                    phase="query")
        ip = np.asarray([np.dot(docs[i][field], vector) for i in ids], dtype=np.float64)
        scores = np.where(ip >= 0, ip + 1.0, 1.0 / (1.0 - ip))  # k-NN "spaces": innerproduct
        order = np.argsort(-scores, kind="stable")[: min(knn["k"], body.get("size", 10))]
        hits = [{"_index": indices[0], "_id": ids[i], "_score": float(scores[i])} for i in order]
        if "filter_path" in query:  # what filter_path=hits.hits._id,hits.hits._score,timed_out leaves
            return _json(200, {"timed_out": False, "hits": {"hits": [{"_id": h["_id"], "_score": h["_score"]}
                                                                    for h in hits]}})
        return _json(200, {"took": 4, "timed_out": False,
                           "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                           "hits": {"total": {"value": len(hits), "relation": "eq"},
                                    "max_score": hits[0]["_score"] if hits else None, "hits": hits}})


def _matches(doc: dict[str, Any], spec: dict[str, Any] | None) -> bool:
    if not spec:
        return True
    clauses = spec["bool"]

    def term(clause: dict[str, Any]) -> bool:
        (name, value), = clause["term"].items()
        return name in doc and doc[name] == value

    return all(term(c) for c in clauses.get("filter", [])) and not any(term(c) for c in clauses.get("must_not", []))


def opensearch_client(domain: FakeOpenSearchDomain, *, timeout: float = 0.08) -> OpenSearch:
    """An opensearch-py client configured like production (HTTPS, SigV4, no retries) over ``domain``."""

    class DomainConnection(Urllib3HttpConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.pool = domain  # type: ignore[assignment]

    return OpenSearch(hosts=[{"host": OPENSEARCH_HOST, "port": 443}], use_ssl=True, verify_certs=True,
                      http_auth=Urllib3AWSV4SignerAuth(CREDENTIALS, REGION, "es"), connection_class=DomainConnection,
                      timeout=timeout, max_retries=0, retry_on_timeout=False)


# ---------------------------------------------------------------- SageMaker runtime
SageMakerResponder = Callable[[AWSPreparedRequest], "Reply | Exception"]


def sagemaker_reply(predictions: Any) -> Reply:
    """What the TF Serving container answers through InvokeEndpoint (body passed through unchanged)."""
    return 200, {"content-type": "application/json", "x-amzn-invoked-production-variant": "AllTraffic"}, \
        json.dumps({"predictions": predictions}).encode()


def sagemaker_error(kind: str, status: int, document: dict[str, Any]) -> Reply:
    return status, {"content-type": "application/json", "x-amzn-errortype": f"{kind}:http://internal.amazon.com/"
                    "coral/com.amazon.sagemaker.runtime/"}, json.dumps(document).encode()


def model_error(original_status: int, original_body: dict[str, Any]) -> Reply:
    """SageMaker's wrapping of a container 4xx/5xx: HTTP 424 ModelError with the container's own answer."""
    original = json.dumps(original_body)
    return sagemaker_error("ModelError", 424, {
        "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if original_status < 500 else "SERVER_ERROR_FROM_MODEL",
        "LogStreamArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/user-tower",
        "Message": f"Received client error ({original_status}) from primary with message \"{original}\". See "
                   f"https://{REGION}.console.aws.amazon.com/cloudwatch/home for more information.",
        "OriginalMessage": original, "OriginalStatusCode": original_status})


def sagemaker_runtime_client(respond: SageMakerResponder) -> tuple[Any, list[AWSPreparedRequest]]:
    """A real ``sagemaker-runtime`` client whose HTTP layer is ``respond`` (SDK retries off)."""
    client = get_session().create_client(
        "sagemaker-runtime", region_name=REGION, aws_access_key_id=CREDENTIALS.access_key,
        aws_secret_access_key=CREDENTIALS.secret_key,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=0.2, read_timeout=0.06))
    sent: list[AWSPreparedRequest] = []

    def before_send(request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse:
        sent.append(request)
        reply = respond(request)
        if isinstance(reply, Exception):
            raise reply
        status, headers, payload = reply
        raw = urllib3.HTTPResponse(body=io.BytesIO(payload), status=status, headers=headers, preload_content=False)
        return AWSResponse(request.url, status, headers, raw)

    # First in line: inside ``mock_aws`` moto's own before-send handler would answer with a canned body.
    client.meta.events.register_first("before-send.sagemaker-runtime.InvokeEndpoint", before_send)
    return client, sent


ENDPOINT_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")


# ---------------------------------------------------------------- DynamoDB tables as template.yaml declares them
def create_feature_tables(client: Any, profiles: str = "profiles", history: str = "history") -> None:
    client.create_table(
        TableName=profiles, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}])
    client.create_table(
        TableName=history, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}, {"AttributeName": "item_id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"},
                              {"AttributeName": "item_id", "AttributeType": "S"},
                              {"AttributeName": "last_ts", "AttributeType": "N"}],
        LocalSecondaryIndexes=[{"IndexName": "by_recency",
                                "Projection": {"ProjectionType": "INCLUDE",
                                               "NonKeyAttributes": ["weight", *REPEAT_COLUMNS]},
                                "KeySchema": [{"AttributeName": "user_id", "KeyType": "HASH"},
                                              {"AttributeName": "last_ts", "KeyType": "RANGE"}]}])


def tiny_ranker(path: Path) -> None:
    """An ONNX 'ranker' scoring by the log-popularity feature (what the XGBoost export looks like to serving)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.zeros((len(FEATURE_NAMES), 1), np.float32)
    weights[FEATURE_NAMES.index("log_popularity"), 0] = 1.0
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w"], ["variable"])], "ranker",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, len(FEATURE_NAMES)])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(weights, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), path)
