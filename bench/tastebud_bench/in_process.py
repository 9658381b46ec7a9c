"""`tastebud bench`: per-stage latency percentiles in process, and ANN recall@200 against exact search.

Two modes: ``--artifacts`` measures a trained system on its own users; ``--items N`` builds a synthetic
catalog of N items (clustered 128-d vectors, like a trained two-tower), a real ScaNN index, a real
XGBoost->ONNX ranker and a real embedded Redis, and measures the same service code at that scale.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from tastebud.adapters.embedded.content_encoder import ContentUserEncoder
from tastebud.adapters.embedded.onnx_ranker import OnnxRanker
from tastebud.adapters.embedded.onnx_user_encoder import OnnxUserEncoder
from tastebud.adapters.embedded.scann_index import BruteForceIndex, ScannIndex
from tastebud.adapters.embedded.user_table import UserTable
from tastebud.adapters.redis_stock import RedisStockStore, embedded_redis, stop_embedded_redis
from tastebud.artifacts import USER_TOWER, USER_TOWER_INT8
from tastebud.catalog import Catalog
from tastebud.composition.local import build_runtime
from tastebud.features.schema import FEATURE_NAMES
from tastebud.features.two_tower import TwoTowerVocab
from tastebud.live.runtime import ServingRuntime
from tastebud.pipeline.service import RecommendationService
from tastebud.ports import CandidateIndex, FeatureStore, UserEncoder
from tastebud.recommendation import Versions
from tastebud.settings import ServingKnobs, Settings
from tastebud_bench.synthetic_data import clustered_vectors, synthetic_catalog, synthetic_users
from tastebud_training.progress import track

STAGES = ("retrieve", "rerank", "fairness", "stock", "total")
RECALL_K = 200


@dataclass(frozen=True)
class BenchSystem:
    service: RecommendationService | ServingRuntime  # what a request runs through
    features: FeatureStore
    encoder: UserEncoder
    index: CandidateIndex
    exact: BruteForceIndex
    user_ids: list[str]
    description: dict[str, Any]
    # The synthetic system's adapters wired again with other serving knobs, and optionally another catalog of the
    # same rows (None for --artifacts): one build measured with several request shapes (experiments).
    rewire: Callable[..., RecommendationService] | None = None
    stop_redis: Callable[[], object] | None = None  # the embedded Redis the system started, if it started one

    def close(self) -> None:
        """Stop what the system started (the runtime and its Redis, or the synthetic system's embedded Redis)."""
        close = getattr(self.service, "close", None)
        if close is not None:
            close()
        if self.stop_redis is not None:
            self.stop_redis()


def percentiles(samples: list[float]) -> dict[str, float]:
    values = np.asarray(samples)
    return {f"p{q}": round(float(np.percentile(values, q)), 3) for q in (50, 95, 99)}


def ann_recall(system: BenchSystem, n_queries: int, seed: int) -> float:
    """Mean |ANN top-200 ∩ exact top-200| / 200 over users' real query vectors."""
    rng = np.random.default_rng(seed)
    users = rng.choice(np.asarray(system.user_ids, dtype=object), min(n_queries, len(system.user_ids)), replace=False)
    recalls = []
    features = system.features
    for user_id in users:
        query = system.encoder.encode(features.user(str(user_id)), _context())
        if query is None:
            continue
        approx, _ = system.index.search(query, RECALL_K)
        exact, _ = system.exact.search(query, RECALL_K)
        recalls.append(np.intersect1d(approx, exact).size / exact.size)
    return float(np.mean(recalls)) if recalls else float("nan")


def _context():
    from tastebud.domain import RequestContext

    return RequestContext(now=time.time())


def run_bench(system: BenchSystem, *, requests: int = 2000, k: int = 20, seed: int = 0,
              progress: bool = True) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    users = rng.choice(np.asarray(system.user_ids, dtype=object), requests)
    for user_id in users[:50]:  # warm caches, code paths and the Redis connection
        system.service.recommend(str(user_id), k=k)
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
    short_pages = 0
    for user_id in track(users, "bench requests", enabled=progress):
        result = system.service.recommend(str(user_id), k=k)
        short_pages += len(result.items) < k
        for stage in STAGES:
            samples[stage].append(result.stage_ms[stage])
    return {
        "system": system.description,
        "requests": requests,
        "k": k,
        "stage_ms": {stage: percentiles(values) for stage, values in samples.items()},
        "short_pages": int(short_pages),
        "ann_recall@200": round(ann_recall(system, 300, seed), 4),
    }


def from_artifacts(artifacts: Path, *, redis_url: str | None = None) -> BenchSystem:
    """``redis_url``: use that Redis instead of starting an embedded one (``bench --http`` shares one)."""
    redis_dir = Path(tempfile.mkdtemp(prefix="tastebud-bench-"))
    runtime = build_runtime(Settings(artifacts=artifacts, redis_db_path=redis_dir / "stock.rdb", redis_url=redis_url),
                            watch=False)
    assert isinstance(runtime, ServingRuntime)
    service = runtime.view.service
    encoder, index = service.retriever.encoder, service.retriever.index
    directory = Path(artifacts) / "versions" / (Path(artifacts) / "CURRENT").read_text().strip()
    exact = BruteForceIndex(np.load(directory / "index_vectors.npy"))
    users = service.features
    assert isinstance(users, UserTable)
    # Requests run through the runtime: the live-state read (events + catalog sequence) is part of the path.
    return BenchSystem(runtime, users, encoder, index, exact, users.user_ids.tolist(),
                       {"mode": "artifacts", "artifacts": str(artifacts), "items": service.catalog.size,
                        "users": users.size})


def synthetic(n_items: int, *, n_users: int = 5000, dim: int = 128, seed: int = 0, two_tower: bool = True,
              progress: bool = True, redis_url: str | None = None) -> BenchSystem:
    """A catalog of ``n_items`` with clustered unit vectors, users with histories, real index/ranker/Redis."""
    # One generator for the catalog, the users and the stock, drawn from in this order: a seed is one system.
    rng = np.random.default_rng(seed)
    n_clusters = max(16, int(np.sqrt(n_items)))
    vectors, assignment = clustered_vectors(rng, n_items, n_clusters, dim)
    now = time.time()
    catalog = synthetic_catalog(rng, assignment, now)
    users = synthetic_users(rng, assignment, n_clusters, n_users, now)
    started = time.time()
    index = ScannIndex.build(vectors, "bench") if n_items >= 1000 else BruteForceIndex(vectors)
    build_s = time.time() - started
    workdir = Path(tempfile.mkdtemp(prefix="tastebud-bench-"))
    ranker = OnnxRanker(_synthetic_ranker(workdir, seed), "bench", n_features=len(FEATURE_NAMES))
    stock, stop_redis = _synthetic_stock(workdir, redis_url)
    out_ids = catalog.item_ids[rng.random(n_items) < 0.03].tolist()
    stock.load_snapshot("bench", out_ids, {})
    # Recall is measured with in-distribution queries (a user's history mean); the service itself runs the
    # production user tower: the real two-tower architecture exported to ONNX (random weights: latency only).
    recall_encoder = ContentUserEncoder(vectors, np.zeros((0, dim), np.float32))
    serving_encoder = _two_tower_encoder(catalog, users, workdir, seed) if two_tower else recall_encoder

    def wire(knobs: ServingKnobs, other_catalog: Catalog | None = None) -> RecommendationService:
        return RecommendationService.wire(catalog=other_catalog or catalog, features=users, encoder=serving_encoder,
                                          index=index, ranker=ranker, stock=stock, knobs=knobs,
                                          versions=Versions("bench", "bench", "bench"))

    service = wire(ServingKnobs())
    cold_users = np.diff(users.offsets) == 0
    return BenchSystem(service, users, recall_encoder, index, BruteForceIndex(vectors), users.user_ids.tolist(),
                       {"mode": "synthetic", "items": n_items, "users": n_users, "dimension": dim,
                        "user_encoder": "two-tower ONNX (1024-512-128, int8 MatMul weights)" if two_tower
                        else "history mean",
                        "index_build_s": round(build_s, 1), "cold_user_share": float(np.mean(cold_users))},
                       rewire=wire, stop_redis=stop_redis)


def _synthetic_stock(workdir: Path, redis_url: str | None) -> tuple[RedisStockStore, Callable[[], object] | None]:
    """The stock store on ``redis_url``, else on an embedded Redis started here (and what stops it)."""
    if redis_url is None:
        client = embedded_redis(workdir / "stock.rdb")
        return RedisStockStore(client), partial(stop_embedded_redis, client)
    import redis

    return RedisStockStore(redis.Redis.from_url(redis_url, socket_timeout=0.05, socket_connect_timeout=0.5)), None


def _synthetic_ranker(workdir: Path, seed: int) -> Path:
    """A real XGBoost LambdaMART ranker of production size (300 trees, depth 6) on synthetic groups."""
    from tastebud_training.ranker import RankerExamples, export_onnx, train_ranker

    rng = np.random.default_rng(seed)
    n = 40_000
    features = rng.normal(size=(n, len(FEATURE_NAMES))).astype(np.float32)
    labels = (features[:, :4].sum(axis=1) + rng.normal(size=n) > 1.5).astype(np.float32)
    model, _ = train_ranker(RankerExamples(features, labels, np.repeat(np.arange(n // 200), 200)), seed=seed)
    path = workdir / "ranker.onnx"
    export_onnx(model, path)
    return path


def _two_tower_encoder(catalog: Catalog, users: UserTable, workdir: Path, seed: int) -> OnnxUserEncoder:
    """The production user tower (architecture and input features) with random weights, exported to ONNX."""
    from tastebud_training.two_tower.export import export_user_tower, quantize_tower
    from tastebud_training.two_tower.model import TowerConfig, build_user_tower

    rng = np.random.default_rng(seed)
    n_items, n_merchants = catalog.size, catalog.merchant_ids.size
    vocab = TwoTowerVocab(
        user_ids=users.user_ids, age_bands=("18-24", "25-34", "35-44"), genders=("female", "male"),
        item_index=np.arange(1, n_items + 1), merchant_index=np.arange(1, n_merchants + 1), n_items=n_items,
        n_merchants=n_merchants, n_categories=int(catalog.categories.size), n_preferences=0,
        price_edges=np.linspace(2, 20, 9), text_vectors=rng.normal(size=(n_items, 384)).astype(np.float32),
    )
    path = workdir / USER_TOWER
    export_user_tower(build_user_tower(vocab.sizes, TowerConfig()), path, text_dim=384)
    quantize_tower(path, workdir / USER_TOWER_INT8)  # what training serves when int8 retrieves what float32 does
    return OnnxUserEncoder(workdir / USER_TOWER_INT8, vocab)
