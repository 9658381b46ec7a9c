"""The OpenSearch k-NN adapter on the wire: the exact request it sends (path, SigV4, body with the filters
INSIDE the k-NN clause), how it reads documented responses and error bodies, and the admin path
(mapping, bulk load, atomic alias swap, in-stock flag updates)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from aws_doubles import FakeOpenSearchDomain, json_reply, opensearch_client, opensearch_error
from urllib3.exceptions import ReadTimeoutError

from tastebud.adapters.aws.opensearch_admin import OpenSearchIndexAdmin, index_body
from tastebud.adapters.aws.opensearch_index import OpenSearchIndex, inner_product
from tastebud.adapters.aws.retry import RetryPolicy
from tastebud.errors import DependencyError

from factories import make_catalog, unit_vectors

N, DIM = 40, 8
VECTORS = unit_vectors(N, dim=DIM, seed=4)


@pytest.fixture
def domain() -> FakeOpenSearchDomain:
    return FakeOpenSearchDomain()


@pytest.fixture
def admin(domain: FakeOpenSearchDomain) -> OpenSearchIndexAdmin:
    return OpenSearchIndexAdmin(opensearch_client(domain), "items", retry=RetryPolicy(attempts=2, sleep=lambda s: None))


@pytest.fixture
def index(domain: FakeOpenSearchDomain, admin: OpenSearchIndexAdmin) -> OpenSearchIndex:
    catalog = make_catalog(N)
    name = admin.create("v1", DIM)
    admin.bulk_load(name, admin.documents(catalog, VECTORS))
    admin.swap_alias(name)
    domain.requests.clear()
    return OpenSearchIndex(opensearch_client(domain), "items", catalog, "v1", timeout=0.08)


def test_search_request_is_one_signed_knn_query_with_filters_inside(index: OpenSearchIndex,
                                                                   domain: FakeOpenSearchDomain) -> None:
    index.search(VECTORS[3], 5, domain="grocery")
    (request,) = domain.requests
    assert request["method"] == "POST" and request["path"] == "/items/_search"  # the ALIAS, never a concrete index
    assert request["query"] == {"filter_path": ["hits.hits._id,hits.hits._score,timed_out"]}
    assert request["timeout"] == 0.08
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/es/aws4_request" in headers["authorization"]
    assert "x-amz-date" in headers  # signed for the domain host (urllib3 adds the Host header itself)
    assert headers["content-type"] == "application/json"
    body = json.loads(request["body"])
    assert body == {
        "size": 5,
        "_source": False,
        "query": {"knn": {"embedding": {
            "vector": [round(float(x), 7) for x in VECTORS[3].tolist()],
            "k": 5,
            "filter": {"bool": {"filter": [{"term": {"domain": "grocery"}}],
                                "must_not": [{"term": {"in_stock": False}}, {"term": {"merchant_open": False}}]}},
        }}},
    }


def test_all_domains_and_no_flags_means_no_filter(domain: FakeOpenSearchDomain, admin: OpenSearchIndexAdmin) -> None:
    index = OpenSearchIndex(opensearch_client(domain), "items", make_catalog(N), "v1", require_in_stock=False,
                            require_open=False)
    assert "filter" not in index.query(VECTORS[0], 10)["query"]["knn"]["embedding"]


def test_filters_are_applied_in_the_query_so_k_results_still_come_back(index: OpenSearchIndex,
                                                                       admin: OpenSearchIndexAdmin) -> None:
    admin.set_in_stock("i1", False)
    rows, scores = index.search(VECTORS[1], 10, domain="grocery")
    catalog = make_catalog(N)
    assert rows.size == 10 and 1 not in rows.tolist()  # out of stock: filtered, yet still 10 results
    assert np.all(catalog.item_domain[rows] == 1)
    np.testing.assert_allclose(scores, VECTORS[rows] @ VECTORS[1], atol=1e-5)


def test_hits_parse_back_to_rows_and_inner_products_unknown_ids_dropped(index: OpenSearchIndex) -> None:
    response = {"timed_out": False, "hits": {"hits": [
        {"_id": "i7", "_score": 1.5}, {"_id": "not-in-catalog", "_score": 1.2}, {"_id": "i2", "_score": 0.5}]}}
    rows, scores = index.parse(response)
    assert rows.tolist() == [7, 2] and rows.dtype == np.int64
    np.testing.assert_allclose(scores, [0.5, -1.0])  # 1.5 = ip + 1; 0.5 = 1 / (1 - ip)


def test_score_transform_inverts_the_documented_formula() -> None:
    ip = np.asarray([-3.0, -0.5, 0.0, 0.25, 0.99], dtype=np.float64)
    scores = np.where(ip >= 0, ip + 1.0, 1.0 / (1.0 - ip))
    np.testing.assert_allclose(inner_product(scores), ip, atol=1e-6)


def test_empty_hits_are_an_empty_result_not_an_error(index: OpenSearchIndex, domain: FakeOpenSearchDomain) -> None:
    domain.failures.append(json_reply(200, {"timed_out": False, "hits": {"hits": []}}))
    rows, scores = index.search(VECTORS[0], 10)
    assert rows.size == scores.size == 0


@pytest.mark.parametrize(("reply", "expected"), [
    (opensearch_error(404, "index_not_found_exception", "no such index [items]", index="items"),
     "HTTP 404 index_not_found_exception: no such index [items]"),
    (opensearch_error(400, "search_phase_execution_exception", "all shards failed", phase="query"),
     "HTTP 400 search_phase_execution_exception: all shards failed"),
    (opensearch_error(403, "security_exception", "no permissions for [indices:data/read/search]"),
     "HTTP 403 security_exception"),
    (opensearch_error(500, "circuit_breaking_exception", "[parent] Data too large"), "HTTP 500"),
    (json_reply(200, {"timed_out": True, "hits": {"hits": []}}), "timed out with no hits"),
])
def test_error_bodies_become_dependency_errors_naming_the_cause(index: OpenSearchIndex, domain: FakeOpenSearchDomain,
                                                                reply: object, expected: str) -> None:
    domain.failures.append(reply)  # type: ignore[arg-type]
    with pytest.raises(DependencyError, match="retrieve") as caught:
        index.search(VECTORS[0], 10)
    assert expected in str(caught.value)


def test_timeouts_and_429_are_retried_once_then_fail(domain: FakeOpenSearchDomain) -> None:
    index = OpenSearchIndex(opensearch_client(domain), "items", make_catalog(N), "v1",
                            retry=RetryPolicy(attempts=2, sleep=lambda s: None))
    domain.failures += [ReadTimeoutError(None, "/items/_search", "Read timed out. (read timeout=0.08)"),
                        opensearch_error(429, "es_rejected_execution_exception", "rejected execution of search")]
    with pytest.raises(DependencyError, match="429 es_rejected_execution_exception"):
        index.search(VECTORS[0], 10)
    assert len(domain.requests) == 2


def test_a_transient_failure_then_success_is_served(index: OpenSearchIndex, domain: FakeOpenSearchDomain) -> None:
    retrying = OpenSearchIndex(opensearch_client(domain), "items", make_catalog(N), "v1",
                               retry=RetryPolicy(attempts=2, sleep=lambda s: None))
    domain.failures.append(opensearch_error(503, "unavailable_shards_exception", "primary shard is not active"))
    rows, _ = retrying.search(VECTORS[0], 3)
    assert rows.tolist()[0] == 0 and len(domain.requests) == 2


# The k-NN plugin's documented method parameters per engine for HNSW ("Methods and engines"): faiss reads ef_search
# from here (not updatable); nmslib reads the INDEX setting knn.algo_param.ef_search; lucene ignores both (ef = k).
HNSW_PARAMETERS = {"faiss": {"ef_search", "ef_construction", "m", "encoder"},
                   "lucene": {"ef_construction", "m"}}


def test_mapping_is_knn_faiss_hnsw_innerproduct_with_filter_fields() -> None:
    body = index_body(128)
    assert body["settings"]["index"]["knn"] is True
    vector = body["mappings"]["properties"]["embedding"]
    assert vector == {"type": "knn_vector", "dimension": 128, "method": {
        "name": "hnsw", "engine": "faiss", "space_type": "innerproduct",
        "parameters": {"m": 32, "ef_construction": 256, "ef_search": 512}}}
    assert {name: spec["type"] for name, spec in body["mappings"]["properties"].items() if name != "embedding"} == {
        "domain": "keyword", "merchant_id": "keyword", "category": "keyword", "in_stock": "boolean",
        "merchant_open": "boolean"}


def test_the_designed_ef_search_is_where_faiss_reads_it() -> None:
    """Issue 20 #11: ``knn.algo_param.ef_search`` is an nmslib setting; a faiss index searched with faiss's default
    (100 < k = 200) and the designed recall was never configured."""
    body = index_body(128, ef_search=640)
    method = body["mappings"]["properties"]["embedding"]["method"]
    assert set(method["parameters"]) <= HNSW_PARAMETERS[method["engine"]]
    assert method["parameters"]["ef_search"] == 640 >= 200  # ef must exceed k (~200 neighbours)
    if method["engine"] != "nmslib":
        assert not any(key.startswith("knn.algo_param") for key in body["settings"]["index"]), body["settings"]


def test_a_per_query_ef_search_goes_in_method_parameters_and_never_below_k(domain: FakeOpenSearchDomain) -> None:
    index = OpenSearchIndex(opensearch_client(domain), "items", make_catalog(N), "v1", ef_search=64)
    knn = index.query(VECTORS[0], 100)["query"]["knn"]["embedding"]
    assert knn["method_parameters"] == {"ef_search": 100}  # k-NN >= 2.16 query format; ef >= k
    assert OpenSearchIndex(opensearch_client(domain), "items", make_catalog(N), "v1", ef_search=512).query(
        VECTORS[0], 10)["query"]["knn"]["embedding"]["method_parameters"] == {"ef_search": 512}
    assert "method_parameters" not in OpenSearchIndex(opensearch_client(domain), "items", make_catalog(N),
                                                      "v1").query(VECTORS[0], 10)["query"]["knn"]["embedding"]


def test_alias_swap_is_one_atomic_call_and_serving_follows_it(domain: FakeOpenSearchDomain,
                                                              admin: OpenSearchIndexAdmin,
                                                              index: OpenSearchIndex) -> None:
    catalog = make_catalog(N)
    new_vectors = unit_vectors(N, dim=DIM, seed=9)
    name = admin.create("v2", DIM)
    admin.bulk_load(name, admin.documents(catalog, new_vectors))
    domain.requests.clear()
    assert admin.swap_alias(name) == ["items-v1"]
    swaps = [r for r in domain.requests if r["path"] == "/_aliases"]
    assert len(swaps) == 1 and json.loads(swaps[0]["body"]) == {"actions": [
        {"remove": {"index": "items-v1", "alias": "items"}}, {"add": {"index": "items-v2", "alias": "items"}}]}
    assert index.search(new_vectors[5], 1)[0].tolist() == [5]  # reads now hit the new vectors
    assert domain.aliases["items"] == {"items-v2"}


def test_first_swap_creates_the_alias(domain: FakeOpenSearchDomain, admin: OpenSearchIndexAdmin) -> None:
    name = admin.create("v1", DIM)
    assert admin.swap_alias(name) == []
    assert domain.aliases["items"] == {"items-v1"}


def test_bulk_item_errors_fail_the_load(admin: OpenSearchIndexAdmin) -> None:
    name = admin.create("v1", DIM)
    catalog = make_catalog(N)
    with pytest.raises(DependencyError, match="mapper_parsing_exception"):
        admin.bulk_load(name, admin.documents(catalog, unit_vectors(N, dim=DIM + 1)))


def test_bulk_body_is_ndjson_with_ids(admin: OpenSearchIndexAdmin, domain: FakeOpenSearchDomain) -> None:
    name = admin.create("v1", DIM)
    domain.requests.clear()
    assert admin.bulk_load(name, admin.documents(make_catalog(N), VECTORS), batch=16) == N
    bulks = [r for r in domain.requests if r["path"].endswith("/_bulk")]
    assert [r["path"] for r in bulks] == ["/items-v1/_bulk"] * 3
    lines = bulks[0]["body"].decode().splitlines()
    assert json.loads(lines[0]) == {"index": {"_id": "i0"}}
    assert set(json.loads(lines[1])) == {"embedding", "domain", "merchant_id", "category", "in_stock", "merchant_open"}


def test_stock_flag_update_of_a_missing_document_is_a_dependency_error(index: OpenSearchIndex,
                                                                       admin: OpenSearchIndexAdmin) -> None:
    with pytest.raises(DependencyError, match="document_missing_exception"):
        admin.set_in_stock("nope", False)
