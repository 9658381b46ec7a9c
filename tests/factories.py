"""Hand-built catalogs, users and in-memory port doubles for unit tests (no training, no I/O)."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tastebud.adapters.deferred_stock import DeferredStock
from tastebud.adapters.embedded.scann_index import BruteForceIndex
from tastebud.adapters.embedded.user_table import UserTable
from tastebud.catalog import Catalog
from tastebud.domain import RequestContext, UserProfile
from tastebud.pipeline.service import RecommendationService
from tastebud.recommendation import Versions
from tastebud.settings import ServingKnobs

NOW = 1_760_000_000.0
DAY = 86400.0


def make_catalog(n_items: int = 12, *, n_merchants: int = 4, new_merchants: Sequence[int] = (),
                 popularity: Sequence[float] | None = None, item_id_format: str = "i{}") -> Catalog:
    """Items i0..i{n-1}; item r belongs to merchant r % n_merchants, category r % 3, domain r % 2."""
    rows = np.arange(n_items)
    merchant_created = np.full(n_merchants, NOW - 400 * DAY)
    merchant_created[list(new_merchants)] = NOW - 5 * DAY
    return Catalog(
        as_of=NOW,
        item_ids=np.asarray([item_id_format.format(r) for r in rows]),
        item_merchant=rows % n_merchants,
        item_domain=(rows % 2).astype(np.int8),
        item_category=rows % 3,
        item_price=np.linspace(5, 16, n_items).astype(np.float32),
        item_created_at=np.full(n_items, NOW - 100 * DAY),
        item_popularity=np.asarray(popularity if popularity is not None else n_items - rows, dtype=np.float32),
        item_recent_popularity=np.ones(n_items, dtype=np.float32),
        item_ctr=np.full(n_items, 0.1, dtype=np.float32),
        merchant_ids=np.asarray([f"m{m}" for m in range(n_merchants)]),
        merchant_created_at=merchant_created,
        merchant_lat=np.full(n_merchants, 52.52),
        merchant_lon=np.linspace(13.30, 13.50, n_merchants),
        merchant_popularity_pct=np.linspace(0, 1, n_merchants).astype(np.float32),
        categories=np.asarray(["burgers", "dairy", "sushi"]),
    )


def unit_vectors(n_items: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n_items, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def make_users(histories: dict[str, list[int]]) -> UserTable:
    """Users with histories (catalog rows, most recent first, weight 3 each)."""
    ids = sorted(histories)
    rows = [np.asarray(histories[u], dtype=np.int64) for u in ids]
    offsets = np.concatenate([[0], np.cumsum([r.size for r in rows])]).astype(np.int64)
    flat = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    return UserTable(
        user_ids=np.asarray(ids), offsets=offsets, history_rows=flat,
        history_weights=np.full(flat.size, 3.0, np.float32), history_last_ts=np.full(flat.size, NOW - DAY),
        preference_offsets=np.zeros(len(ids) + 1, np.int64), preference_rows=np.zeros(0, np.int64),
        home_lat=np.full(len(ids), 52.52), home_lon=np.full(len(ids), 13.40),
    )


def context(**changes: object) -> RequestContext:
    fields: dict[str, object] = {"now": NOW}
    fields.update(changes)
    return RequestContext(**fields)  # type: ignore[arg-type]


class VectorEncoder:
    """UserEncoder double: the mean of the user's history vectors; None for users without history."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def encode(self, user: UserProfile, context: RequestContext) -> np.ndarray | None:
        if not user.has_history:
            return None
        query = self.vectors[user.history_rows].mean(axis=0)
        return (query / np.linalg.norm(query)).astype(np.float32)


class FailingEncoder:
    def encode(self, user: UserProfile, context: RequestContext) -> np.ndarray | None:
        from tastebud.errors import DependencyError

        raise DependencyError("retrieve", "endpoint timed out")


class PopularityRanker:
    """Ranker double: scores = log popularity feature (column 3), so the order is predictable."""

    version = "popularity-ranker"

    def score(self, features: np.ndarray) -> np.ndarray:
        return features[:, 3].astype(np.float32)


class FailingRanker:
    version = "failing"

    def score(self, features: np.ndarray) -> np.ndarray:
        raise RuntimeError("onnxruntime session crashed")


class MemoryStock:
    """StockStore double (the Redis adapter is tested against a real embedded Redis elsewhere)."""

    def __init__(self, out: Sequence[str] = (), fail: bool = False) -> None:
        self.out = set(out)
        self.fail = fail
        self.calls = 0

    def out_of_stock(self, item_ids: Sequence[str]) -> np.ndarray:
        from tastebud.errors import DependencyError

        self.calls += 1
        if self.fail:
            raise DependencyError("stock", "redis timeout")
        return np.asarray([i in self.out for i in item_ids], dtype=bool)

    def begin_out_of_stock(self, item_ids: Sequence[str]) -> DeferredStock:
        return DeferredStock(lambda: self.out_of_stock(item_ids))

    def set_stock(self, item_id: str, in_stock: bool, quantity: int | None = None) -> None:
        (self.out.discard if in_stock else self.out.add)(item_id)


def make_service(*, n_items: int = 30, knobs: ServingKnobs | None = None, stock: MemoryStock | None = None,
                 ranker: object | None = None, encoder: object | None = None,
                 histories: dict[str, list[int]] | None = None, item_id_format: str = "i{}") -> RecommendationService:
    knobs = knobs or ServingKnobs(retrieve_k=10, history_candidates=5, popular_candidates=5)
    catalog = make_catalog(n_items, n_merchants=6, new_merchants=(5,), item_id_format=item_id_format)
    vectors = unit_vectors(n_items)
    users = make_users(histories if histories is not None else {"u1": [0, 3, 6]})
    stock = stock or MemoryStock()
    return RecommendationService.wire(
        catalog=catalog, features=users, encoder=encoder or VectorEncoder(vectors),  # type: ignore[arg-type]
        index=BruteForceIndex(vectors), ranker=ranker or PopularityRanker(),  # type: ignore[arg-type]
        stock=stock, knobs=knobs, versions=Versions("m-test", "i-test", "f-test"), clock=lambda: NOW,
    )


def tiny_config(**changes: object):  # type: ignore[no-untyped-def]
    """Every stage of the real training pipeline (images, two-tower + refit, ranker), sized for seconds."""
    from dataclasses import replace

    from tastebud_training.train import TrainConfig

    base = TrainConfig(progress=False, max_ranker_groups=1500)
    return replace(base, two_tower=replace(base.two_tower, epochs=4), **changes)


def version_config(**changes: object):  # type: ignore[no-untyped-def]
    """For tests that only need a version to serve or evaluate: ``tiny_config`` with one two-tower fit (no refit on
    the label window, which only freshens the served towers: a third of a tiny training's time)."""
    return tiny_config(refit_retrieval=False, **changes)


def version_dir(root: Path, version: str, *, n: int = 30, dim: int = 8, seed: int = 1,
                vector_dim: int | None = None) -> Path:
    """A published version as the AWS lifecycle tasks read it: catalog, index vectors and manifest. The manifest
    says ``dim``; ``vector_dim`` != ``dim`` writes vectors that do not match it (a broken training)."""
    out = root / version
    out.mkdir(parents=True)
    make_catalog(n, n_merchants=5).save(out / "catalog.npz")
    np.save(out / "index_vectors.npy", unit_vectors(n, vector_dim or dim, seed=seed))
    (out / "manifest.json").write_text(json.dumps({
        "version": version, "model_version": f"m-{version}", "index_version": f"i-{version}",
        "retrieval": {"kind": "two_tower", "dimension": dim, "items": n}}))
    return out


def model_tar(source: Path) -> bytes:
    """``source`` as a gzipped tar, as a SageMaker training job uploads its model.tar.gz."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=path.relative_to(source).as_posix())
    return buffer.getvalue()
