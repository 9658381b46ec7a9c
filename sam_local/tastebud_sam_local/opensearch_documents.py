"""The in-memory domain's document APIs: _bulk, _update, _update_by_query and _count."""

from __future__ import annotations

import json
import re
from typing import Any

from tastebud_sam_local.opensearch_filters import matches
from tastebud_sam_local.opensearch_indices import IndexAndAliasApi
from tastebud_sam_local.opensearch_replies import Reply, json_reply, opensearch_error


class DocumentApi(IndexAndAliasApi):
    """``_bulk``, ``_update`` (with ``require_alias``), ``_update_by_query`` (term query + painless assignment) and
    ``_count``."""

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
                if matches(doc, {"bool": {"filter": [body["query"]]}}):
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
