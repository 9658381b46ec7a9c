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
from tastebud.composition import build_runtime
from tastebud.features import FEATURE_NAMES
from tastebud.history import FIRST_PURCHASE_TS, HOUR_SIN, PURCHASES, repeat_contributions
from tastebud.live.runtime import ServingRuntime
from tastebud.ports import CandidateIndex, FeatureStore, UserEncoder
from tastebud.recommendation import Versions
from tastebud.service import RecommendationService
from tastebud.settings import ServingKnobs, Settings
from tastebud.two_tower_features import TwoTowerVocab
from tastebud_training.progress import track
from tastebud_training.reorders import SIMILAR_PER_ITEM

STAGES = ("retrieve", "rerank", "fairness", "stock", "total")
RECALL_K = 200
RELATED_PER_ITEM = 5  # bought-together partners per synthetic item


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
    rng = np.random.default_rng(seed)
    n_clusters = max(16, int(np.sqrt(n_items)))
    centres = rng.normal(size=(n_clusters, dim)).astype(np.float32)
    assignment = rng.integers(0, n_clusters, n_items)
    vectors = centres[assignment] + 0.6 * rng.normal(size=(n_items, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    n_merchants = max(10, n_items // 25)
    n_categories = 60
    now = time.time()
    popularity = (rng.pareto(1.2, n_items) * 5).astype(np.float32)
    catalog = Catalog(
        as_of=now,
        item_ids=np.char.add("i", np.arange(n_items).astype(str)),
        item_merchant=rng.integers(0, n_merchants, n_items),
        item_domain=rng.integers(0, 2, n_items).astype(np.int8),
        item_category=rng.integers(0, n_categories, n_items),
        item_price=rng.lognormal(2.0, 0.6, n_items).astype(np.float32),
        item_created_at=now - rng.uniform(0, 400, n_items) * 86400,
        item_popularity=popularity,
        item_recent_popularity=popularity * rng.uniform(0, 0.3, n_items).astype(np.float32),
        item_ctr=rng.beta(2, 30, n_items).astype(np.float32),
        merchant_ids=np.char.add("m", np.arange(n_merchants).astype(str)),
        merchant_created_at=now - rng.uniform(0, 600, n_merchants) * 86400,
        merchant_lat=52.5 + rng.normal(0, 0.05, n_merchants),
        merchant_lon=13.4 + rng.normal(0, 0.08, n_merchants),
        merchant_popularity_pct=rng.uniform(0, 1, n_merchants).astype(np.float32),
        categories=np.char.add("c", np.arange(n_categories).astype(str)),
        item_repeat_rate=rng.beta(2, 5, n_items).astype(np.float32),
        item_reorder_days=rng.uniform(2, 30, n_items).astype(np.float32),
        # Bought together: a few partners per item from its own cluster, as baskets are.
        related_offsets=np.arange(n_items + 1, dtype=np.int64) * RELATED_PER_ITEM,
        related_rows=np.argsort(assignment, kind="stable")[np.minimum(
            np.repeat(np.searchsorted(np.sort(assignment), assignment), RELATED_PER_ITEM)
            + rng.integers(0, 50, n_items * RELATED_PER_ITEM), n_items - 1)],
        related_scores=rng.uniform(0.05, 0.5, n_items * RELATED_PER_ITEM).astype(np.float32),
        # Bought by the same shoppers: more partners per item, also from its own cluster (tastes are).
        similar_offsets=np.arange(n_items + 1, dtype=np.int64) * SIMILAR_PER_ITEM,
        similar_rows=np.argsort(assignment, kind="stable")[np.minimum(
            np.repeat(np.searchsorted(np.sort(assignment), assignment), SIMILAR_PER_ITEM)
            + rng.integers(0, 200, n_items * SIMILAR_PER_ITEM), n_items - 1)],
        similar_scores=rng.uniform(0.01, 0.3, n_items * SIMILAR_PER_ITEM).astype(np.float32),
    )
    lengths = rng.integers(0, 60, n_users)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    # Users' histories concentrate on a few clusters, as real tastes do.
    taste = rng.integers(0, n_clusters, (n_users, 3))
    by_cluster = np.argsort(assignment, kind="stable")
    starts = np.searchsorted(assignment[by_cluster], np.arange(n_clusters))
    sizes = np.bincount(assignment, minlength=n_clusters)
    hist = []
    for u, length in enumerate(lengths):
        clusters = taste[u][rng.integers(0, 3, length)]
        picks = starts[clusters] + (rng.random(length) * np.maximum(sizes[clusters], 1)).astype(np.int64)
        hist.append(np.unique(by_cluster[np.minimum(picks, n_items - 1)]))
    lengths = np.asarray([h.size for h in hist])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    history = np.concatenate(hist).astype(np.int64)
    history_last_ts = now - rng.uniform(0, 90, history.size) * 86400
    users = UserTable(
        user_ids=np.char.add("u", np.arange(n_users).astype(str)),
        offsets=offsets,
        history_rows=history,
        history_weights=rng.integers(1, 6, history.size).astype(np.float32),
        history_last_ts=history_last_ts,
        history_repeat=_synthetic_repeat(rng, history_last_ts),
        preference_offsets=np.zeros(n_users + 1, dtype=np.int64),
        preference_rows=np.zeros(0, dtype=np.int64),
        home_lat=52.5 + rng.normal(0, 0.05, n_users),
        home_lon=13.4 + rng.normal(0, 0.08, n_users),
    )
    started = time.time()
    index = ScannIndex.build(vectors, "bench") if n_items >= 1000 else BruteForceIndex(vectors)
    build_s = time.time() - started
    workdir = Path(tempfile.mkdtemp(prefix="tastebud-bench-"))
    ranker = OnnxRanker(_synthetic_ranker(workdir, seed), "bench", n_features=len(FEATURE_NAMES))
    stop_redis: Callable[[], object] | None = None
    if redis_url is None:
        client = embedded_redis(workdir / "stock.rdb")
        stock = RedisStockStore(client)
        stop_redis = partial(stop_embedded_redis, client)
    else:
        import redis

        stock = RedisStockStore(redis.Redis.from_url(redis_url, socket_timeout=0.05, socket_connect_timeout=0.5))
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
    return BenchSystem(service, users, recall_encoder, index, BruteForceIndex(vectors), users.user_ids.tolist(),
                       {"mode": "synthetic", "items": n_items, "users": n_users, "dimension": dim,
                        "user_encoder": "two-tower ONNX (1024-512-128, int8 MatMul weights)" if two_tower
                        else "history mean",
                        "index_build_s": round(build_s, 1), "cold_user_share": float(np.mean(lengths == 0))},
                       rewire=wire, stop_redis=stop_redis)


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


def _synthetic_repeat(rng: np.random.Generator, last_ts: np.ndarray) -> np.ndarray:
    """Purchase statistics for synthetic histories: 0-4 purchases per item, a few days apart."""
    purchases = rng.integers(0, 5, last_ts.size)
    one = repeat_contributions(purchases > 0, last_ts)
    repeat = one.copy()
    repeat[:, PURCHASES] = purchases
    repeat[:, FIRST_PURCHASE_TS] = np.where(purchases > 0, last_ts - purchases * rng.uniform(2, 14, last_ts.size)
                                            * 86400, np.inf)
    repeat[:, HOUR_SIN:] = one[:, HOUR_SIN:] * purchases[:, None]
    return repeat
