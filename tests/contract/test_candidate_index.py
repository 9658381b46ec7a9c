"""One contract for every CandidateIndex adapter (as TFRS tests ScaNN and brute force together).

The OpenSearch adapter runs against ``aws_doubles.FakeOpenSearchDomain`` (the documented REST bodies, exact
k-NN underneath): the index is created, bulk-loaded and put behind its alias through the admin API exactly
as a rebuild does, then queried through opensearch-py with SigV4. The wire details are in
test_opensearch_wire.py."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from aws_doubles import FakeOpenSearchDomain, opensearch_client

from tastebud.adapters.aws.opensearch_admin import OpenSearchIndexAdmin
from tastebud.adapters.aws.opensearch_index import OpenSearchIndex
from tastebud.adapters.embedded.scann_index import BruteForceIndex, ScannIndex
from tastebud.ports import CandidateIndex

from factories import make_catalog, unit_vectors

VECTORS = unit_vectors(3000, dim=16, seed=1)
Factory = Callable[[np.ndarray, Path], CandidateIndex]


def brute_force(vectors: np.ndarray, tmp: Path) -> CandidateIndex:
    return BruteForceIndex(vectors, "v1")


def scann_reloaded(vectors: np.ndarray, tmp: Path) -> CandidateIndex:
    """Built, saved, MOVED (as publishing a version does), then loaded: the served path."""
    ScannIndex.build(vectors, "v1").save(tmp / "staging")
    shutil.move(tmp / "staging", tmp / "published")
    return ScannIndex.load(tmp / "published", "v1")


def opensearch(vectors: np.ndarray, tmp: Path) -> CandidateIndex:
    """Create + bulk-load + alias swap (the rebuild path), then query the alias (the serving path)."""
    client = opensearch_client(FakeOpenSearchDomain())
    catalog = make_catalog(vectors.shape[0])
    admin = OpenSearchIndexAdmin(client, "items")
    name = admin.create("v1", vectors.shape[1])
    admin.bulk_load(name, admin.documents(catalog, vectors), batch=700)
    admin.swap_alias(name)
    return OpenSearchIndex(client, "items", catalog, "v1")


ADAPTERS = {"brute_force": brute_force, "scann": scann_reloaded, "opensearch": opensearch}


@pytest.fixture(params=sorted(ADAPTERS))
def index(request: pytest.FixtureRequest, tmp_path: Path) -> CandidateIndex:
    return ADAPTERS[request.param](VECTORS, tmp_path)


def test_is_a_candidate_index(index: CandidateIndex) -> None:
    assert isinstance(index, CandidateIndex) and index.version == "v1"


def test_returns_k_rows_best_first_with_inner_product_scores(index: CandidateIndex) -> None:
    query = VECTORS[7]
    rows, scores = index.search(query, 50)
    assert rows.dtype == np.int64 and rows.shape == scores.shape == (50,)
    assert np.unique(rows).size == 50
    assert np.all(np.diff(scores) <= 1e-6)
    np.testing.assert_allclose(scores, VECTORS[rows] @ query, atol=1e-5)
    assert rows[0] == 7  # the item itself is its own nearest neighbour


def test_k_larger_than_the_catalog_returns_everything(tmp_path: Path) -> None:
    small = unit_vectors(20, dim=16)
    for make in ADAPTERS.values():
        rows, _ = make(small, tmp_path / make.__name__).search(small[0], 200)
        assert sorted(rows.tolist()) == list(range(20))


def test_matches_exact_search(index: CandidateIndex) -> None:
    exact = BruteForceIndex(VECTORS)
    recalls = []
    for q in range(0, 3000, 300):
        approx, _ = index.search(VECTORS[q], 100)
        truth, _ = exact.search(VECTORS[q], 100)
        recalls.append(np.intersect1d(approx, truth).size / 100)
    assert np.mean(recalls) >= 0.97


def test_scann_tree_mode_keeps_recall(tmp_path: Path) -> None:
    """Above SCANN_MIN_ITEMS_FOR_TREE the index partitions + quantises; recall@200 must stay high."""
    rng = np.random.default_rng(2)  # learned embeddings are clustered; uniform noise is not a realistic case
    centres = rng.normal(size=(150, 32))
    vectors = (centres[rng.integers(0, 150, 21_000)] + 0.5 * rng.normal(size=(21_000, 32))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = ScannIndex.build(vectors, "tree")
    exact = BruteForceIndex(vectors)
    recalls = [np.intersect1d(index.search(vectors[q], 200)[0], exact.search(vectors[q], 200)[0]).size / 200
               for q in range(0, 21_000, 1000)]
    assert np.mean(recalls) >= 0.95
