"""The in-memory domain's k-NN search: exact (brute force), with efficient filters, scored as the k-NN "spaces"
table says for ``innerproduct``."""

from __future__ import annotations

from typing import Any

import numpy as np

from tastebud_sam_local.opensearch_filters import MISSING, matching_rows
from tastebud_sam_local.opensearch_indices import IndexAndAliasApi
from tastebud_sam_local.opensearch_replies import Reply, json_reply, opensearch_error


class KnnSearchApi(IndexAndAliasApi):
    """k-NN ``_search``; the vectors of the searched indices as one matrix, cached until documents change."""

    def __init__(self) -> None:
        super().__init__()
        self._generation = 0  # bumped by every request that may change documents: the k-NN matrices' cache key
        self._matrices: dict[tuple[Any, ...], tuple[list[str], np.ndarray, dict[str, np.ndarray]]] = {}

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
            columns = {name: np.asarray([doc.get(name, MISSING) for doc in docs.values()], dtype=object)
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
        keep = np.flatnonzero(matching_rows(columns, len(all_ids), knn.get("filter")))
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
