"""CandidateIndex on Amazon OpenSearch Service k-NN (the admin side, mapping, bulk load and alias swap, is
``opensearch_admin``).

Index design (one document per item, ``_id`` = item id):
  - ``embedding``: ``knn_vector`` of the two-tower dimension (128), engine **faiss**, method **HNSW**,
    space **innerproduct** (the towers' outputs are L2-normalised, so inner product = cosine, and it is
    what the model was trained to rank by). faiss rather than lucene: faiss HNSW supports efficient
    filtering (k-NN plugin >= 2.9) AND a configurable ``ef_search``, which we need at ~200 neighbours
    (DESIGN §6: HNSW needs ef ~ 1024 for recall 0.96-0.98 at k=200 on hard data; learned embeddings are
    clustered and easier, so 512 is the default, raise it if `tastebud bench` recall drops).
    faiss reads ``ef_search`` from the METHOD's ``parameters`` (set at index creation, not updatable) or
    per query (``method_parameters``, k-NN >= 2.16); the index setting ``knn.algo_param.ef_search`` is
    read by nmslib only, so it is not set here (the faiss default, 100, is below k).
    ``m`` = 32 links per node (memory ~ 1.1 * (4*128 + 8*32) B per vector = ~0.85 GB per 1M items),
    ``ef_construction`` = 256.
  - ``domain`` (keyword), ``merchant_id`` (keyword), ``in_stock`` and ``merchant_open`` (boolean): filter
    fields, applied INSIDE the k-NN query (``knn.embedding.filter``), so k results come back even under
    restrictive filters (efficient filtering, not post-filtering).

Scores: for ``innerproduct`` OpenSearch reports ``ip + 1`` when ip >= 0 and ``1 / (1 - ip)`` when ip < 0
(k-NN "spaces" documentation); ``inner_product`` inverts that so callers see the model's own scores.

Zero-downtime rebuilds: every build goes to a new concrete index ``<alias>-<index_version>``; serving
always queries the alias, and ``OpenSearchIndexAdmin.swap_alias`` moves it in ONE atomic ``_aliases`` call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tastebud.adapters.aws.retry import NO_RETRY, RetryPolicy
from tastebud.catalog import DOMAINS, Catalog
from tastebud.circuit import guarded_call
from tastebud.errors import DependencyError

VECTOR_FIELD = "embedding"
STAGE = "retrieve"


def inner_product(scores: np.ndarray) -> np.ndarray:
    """OpenSearch ``innerproduct`` scores -> the raw inner products."""
    scores = np.asarray(scores, dtype=np.float64)
    safe = np.where(scores > 0, scores, 1.0)
    return np.where(scores >= 1.0, scores - 1.0, 1.0 - 1.0 / safe).astype(np.float32)


def describe_error(exc: Exception) -> str:
    """opensearch-py errors carry the HTTP status and OpenSearch's error type/reason: keep both."""
    status = getattr(exc, "status_code", None)
    info = getattr(exc, "info", None)
    if isinstance(info, dict) and isinstance(info.get("error"), dict):
        error = info["error"]
        return f"HTTP {status} {error.get('type')}: {error.get('reason')}"
    return f"{type(exc).__name__}: {exc}"


def is_outage(exc: Exception) -> bool:
    """Does this failure of a write say the domain is unhealthy? Connection errors, timeouts, 429 and 5xx do;
    a 4xx answer about one document (404 missing, 409 conflict) does not: the domain answered."""
    status = getattr(exc, "status_code", None)
    return not isinstance(status, int) or status == 429 or status >= 500


def is_retryable(exc: Exception) -> bool:
    from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
    from opensearchpy.exceptions import TransportError

    if isinstance(exc, OpenSearchConnectionError):  # includes ConnectionTimeout
        return True
    return isinstance(exc, TransportError) and exc.status_code in (429, 502, 503, 504)


class OpenSearchIndex:
    """Queries the alias with an efficient-filtered k-NN query and maps hits back to catalog rows.

    Args:
        client: an ``opensearchpy.OpenSearch`` client (SigV4-signed in AWS; built by the composition root).
        alias: the index alias serving reads (swapped atomically by rebuilds).
        catalog: maps a hit's ``_id`` (item id) to its catalog row; ids unknown to the catalog are dropped
            (an index newer than the artifacts the function loaded).
        version: the index version this process serves (reported in responses).
        require_in_stock / require_open: also filter on the documents' ``in_stock`` / ``merchant_open``
            flags inside the k-NN query. Documents without the field pass (``must_not: false``).
        timeout: per-request budget in seconds (sent to OpenSearch AND used as the socket timeout).
        ef_search: faiss HNSW's search list size for THIS query (``method_parameters``; at least k); None uses
            the one the index was created with (``index_body``).
        breaker: circuit breaker of the domain (``tastebud.circuit``), shared with the admin's stock
            updates: one search (retry included) counts once; while it is open ``search`` fails at once.
    """

    def __init__(self, client: Any, alias: str, catalog: Catalog, version: str, *, require_in_stock: bool = True,
                 require_open: bool = True, timeout: float = 0.1, retry: RetryPolicy = NO_RETRY,
                 breaker: Any = None, ef_search: int | None = None) -> None:
        self._client = client
        self._alias = alias
        self._catalog = catalog
        self._version = version
        self._require_in_stock = require_in_stock
        self._require_open = require_open
        self._timeout = timeout
        self._retry = retry
        self._breaker = breaker
        self._ef_search = ef_search

    @property
    def version(self) -> str:
        return self._version

    def query(self, query: np.ndarray, k: int, domain: str = "all") -> dict[str, Any]:
        """The request body: one k-NN clause with the filters inside it; only ids and scores come back."""
        must: list[dict[str, Any]] = []
        must_not: list[dict[str, Any]] = []
        if domain != "all":
            if domain not in DOMAINS:
                raise ValueError(f"unknown domain {domain!r}")
            must.append({"term": {"domain": domain}})
        if self._require_in_stock:
            must_not.append({"term": {"in_stock": False}})
        if self._require_open:
            must_not.append({"term": {"merchant_open": False}})
        knn: dict[str, Any] = {"vector": [round(float(x), 7) for x in np.asarray(query, np.float32).tolist()], "k": k}
        if must or must_not:
            knn["filter"] = {"bool": {key: value for key, value in (("filter", must), ("must_not", must_not))
                                      if value}}
        if self._ef_search is not None:
            knn["method_parameters"] = {"ef_search": max(int(self._ef_search), k)}
        return {"size": k, "_source": False, "query": {"knn": {VECTOR_FIELD: knn}}}

    def search(self, query: np.ndarray, k: int, *, domain: str = "all") -> tuple[np.ndarray, np.ndarray]:
        body = self.query(query, k, domain)

        def call() -> Any:
            return self._client.search(index=self._alias, body=body, request_timeout=self._timeout,
                                       params={"filter_path": "hits.hits._id,hits.hits._score,timed_out"})

        def call_and_parse() -> tuple[np.ndarray, np.ndarray]:
            return self.parse(self._retry.call(call, is_retryable))

        return guarded_call(self._breaker, STAGE, f"opensearch k-NN on {self._alias}", call_and_parse,
                            describe=describe_error)

    def parse(self, response: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Hits -> (catalog rows, inner products), best first; unknown ids dropped."""
        hits = (response.get("hits") or {}).get("hits") or []
        if response.get("timed_out") and not hits:
            raise DependencyError(STAGE, f"opensearch k-NN on {self._alias}: timed out with no hits")
        row_of = self._catalog.row_of
        rows: list[int] = []
        scores: list[float] = []
        for hit in hits:
            row = row_of(str(hit["_id"]))
            if row is not None:
                rows.append(row)
                scores.append(float(hit["_score"]))
        return np.asarray(rows, dtype=np.int64), inner_product(np.asarray(scores))
