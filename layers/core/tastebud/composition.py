"""The composition root: the ONE place that reads settings and builds clients, adapters and the service."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tastebud.adapters.embedded.content_encoder import ContentUserEncoder
from tastebud.adapters.embedded.onnx_ranker import OnnxRanker
from tastebud.adapters.embedded.onnx_user_encoder import OnnxUserEncoder
from tastebud.adapters.embedded.scann_index import ScannIndex
from tastebud.adapters.embedded.user_table import UserTable
from tastebud.adapters.redis_stock import RedisStockStore, embedded_redis
from tastebud.artifacts import LocalArtifactStore, Manifest
from tastebud.catalog import Catalog
from tastebud.errors import ArtifactMismatchError, ArtifactsMissingError
from tastebud.features import FEATURE_NAMES, FEATURE_VERSION
from tastebud.ports import UserEncoder
from tastebud.service import RecommendationService, Versions
from tastebud.settings import ServingKnobs, Settings
from tastebud.stages.fairness import FairnessDiversity
from tastebud.stages.rerank import Reranker
from tastebud.stages.retrieve import Retriever
from tastebud.stages.stock_filter import StockFilter
from tastebud.two_tower_features import TWO_TOWER_FEATURE_VERSION, TwoTowerVocab


def check_manifest(manifest: Manifest) -> None:
    """Refuse artifacts built for other features than this code computes (training/serving skew)."""
    if manifest.feature_version != FEATURE_VERSION:
        raise ArtifactMismatchError(
            f"artifacts {manifest.version} use features {manifest.feature_version!r}, this code computes "
            f"{FEATURE_VERSION!r}; retrain with `tastebud train`"
        )
    if tuple(manifest.ranker.get("features", ())) != FEATURE_NAMES:
        raise ArtifactMismatchError(f"artifacts {manifest.version}: ranker feature list differs from this code's")


def load_encoder(manifest: Manifest, directory: Path) -> UserEncoder:
    """The user encoder the manifest names: the two-tower user tower (ONNX) or the content baseline."""
    kind = manifest.retrieval.get("kind")
    text_vectors = np.load(directory / "text_vectors.npy")
    if kind == "two_tower":
        if manifest.retrieval.get("feature_version") != TWO_TOWER_FEATURE_VERSION:
            raise ArtifactMismatchError(
                f"artifacts {manifest.version}: two-tower features {manifest.retrieval.get('feature_version')!r}, "
                f"this code computes {TWO_TOWER_FEATURE_VERSION!r}; retrain with `tastebud train`"
            )
        return OnnxUserEncoder(directory / "user_tower.onnx", TwoTowerVocab.load(directory, text_vectors))
    if kind == "content":
        return ContentUserEncoder(text_vectors, np.load(directory / "preference_vectors.npy"))
    raise ArtifactMismatchError(f"unknown retrieval model kind {kind!r} in {directory / 'manifest.json'}")


@dataclass(frozen=True)
class RankingStages:
    """Stages 1–3 and what they read, loaded from one artifact version (serving and offline evaluation)."""

    manifest: Manifest
    directory: Path
    catalog: Catalog
    users: UserTable
    retriever: Retriever
    reranker: Reranker
    fairness: FairnessDiversity

    @property
    def versions(self) -> Versions:
        m = self.manifest
        return Versions(m.model_version, m.index_version, m.feature_version)


def load_stages(artifacts: Path, knobs: ServingKnobs) -> RankingStages:
    """Load the current artifact version under ``artifacts`` and build the ranking stages."""
    if not artifacts.is_dir():
        raise ArtifactsMissingError(
            f"artifact directory {artifacts} does not exist; "
            "build it with `tastebud train --data DIR --out ARTIFACTS` (or `make demo`)"
        )
    directory = LocalArtifactStore(artifacts).current_dir()
    manifest = Manifest.read(directory)
    check_manifest(manifest)
    catalog = Catalog.load(directory / "catalog.npz")
    users = UserTable.load(directory / "users.npz")
    encoder = load_encoder(manifest, directory)
    index = ScannIndex.load(directory / "index", manifest.index_version)
    ranker = OnnxRanker(directory / "ranker.onnx", manifest.model_version, n_features=len(FEATURE_NAMES))
    return RankingStages(
        manifest=manifest,
        directory=directory,
        catalog=catalog,
        users=users,
        retriever=Retriever(catalog, encoder, index, knobs),
        reranker=Reranker(catalog, ranker),
        fairness=FairnessDiversity(catalog, knobs),
    )


def build_service(settings: Settings, *, stock_client: Any = None,
                  clock: Callable[[], float] = time.time) -> RecommendationService:
    """Load the current artifact version and wire the four stages to their adapters."""
    if settings.backend == "aws":
        from tastebud.aws_composition import build_aws_service

        return build_aws_service(settings, clock=clock)
    stages = load_stages(settings.artifacts, settings.knobs)

    client = stock_client
    if client is None:
        if settings.redis_url:
            import redis

            client = redis.Redis.from_url(settings.redis_url, socket_timeout=0.05, socket_connect_timeout=0.5)
        else:
            client = embedded_redis(settings.stock_db_path)
    stock = RedisStockStore(client)
    snapshot = json.loads((stages.directory / "stock_snapshot.json").read_text())
    stock.load_snapshot(stages.manifest.data.get("fingerprint", stages.manifest.version), snapshot["out_of_stock"],
                        snapshot.get("quantities", {}))

    knobs = settings.knobs
    return RecommendationService(
        catalog=stages.catalog,
        features=stages.users,
        retriever=stages.retriever,
        reranker=stages.reranker,
        fairness=stages.fairness,
        stock_filter=StockFilter(stages.catalog, stock, serve_without_filter=knobs.serve_without_stock_filter,
                                 fallback_out_of_stock=frozenset(snapshot["out_of_stock"])),
        stock=stock,
        versions=stages.versions,
        clock=clock,
    )


def lazy_service(load_settings: Callable[[], Settings]) -> Callable[[], RecommendationService]:
    """Build the service on first use, once per process (Lambda init or the local server's first request)."""
    lock = threading.Lock()
    built: list[RecommendationService] = []

    def provide() -> RecommendationService:
        if not built:
            with lock:
                if not built:
                    built.append(build_service(load_settings()))
        return built[0]

    return provide
