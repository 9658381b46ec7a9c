"""`tastebud train`: every model and the index from one data directory, published as one artifact version.

Steps: item text -> MiniLM vectors (cached) -> ScaNN index; point-in-time snapshots; re-ranker examples
built with the serving code; XGBoost LambdaMART -> ONNX (parity-checked); serving snapshots; manifest.
Everything is written to a staging directory and published with an atomic rename: a failed run
publishes nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tastebud.adapters.embedded.content_encoder import ContentUserEncoder
from tastebud.adapters.embedded.scann_index import ScannIndex
from tastebud.artifacts import LocalArtifactStore, Manifest, sha256_of
from tastebud.features import FEATURE_NAMES, FEATURE_VERSION
from tastebud.settings import ServingKnobs
from tastebud.stages.retrieve import Retriever
from tastebud_training.data import Dataset
from tastebud_training.ranker import build_examples, export_onnx, onnx_parity, train_ranker
from tastebud_training.snapshot import build_catalog, build_user_table, preference_terms
from tastebud_training.text_embedding import DIMENSION, MODEL_NAME, embed_texts, item_texts

LABEL_WINDOW_QUANTILE = 0.85  # ranker features as of this quantile of positive times; labels after it
PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 7
    max_ranker_groups: int = 6000
    progress: bool = True
    knobs: ServingKnobs = field(default_factory=ServingKnobs)


def log(message: str, enabled: bool) -> None:
    if enabled:
        from rich.console import Console

        Console(stderr=True).print(f"[bold cyan]train[/] {message}")


def data_fingerprint(dataset: Dataset) -> str:
    """Hash of the data actually used (tables after any time cut), so caches and versions follow the data."""
    digest = hashlib.sha256()
    for frame in (dataset.merchants, dataset.items, dataset.users, dataset.interactions):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def cut_at(dataset: Dataset, as_of: float) -> Dataset:
    """The data set as it was known at ``as_of``: interactions strictly before it (catalog kept whole)."""
    interactions = dataset.interactions[dataset.interactions["ts"] < as_of]
    return Dataset(dataset.merchants, dataset.items, dataset.users, interactions, dataset.stock, dataset.source,
                   dataset.warnings)


def train(dataset: Dataset, artifacts: Path, config: TrainConfig | None = None,
          *, as_of: float | None = None, cache_dir: Path | None = None) -> Manifest:
    """Train on ``dataset`` (cut at ``as_of`` when given) and publish a new current version under ``artifacts``."""
    config = config or TrainConfig()
    started = time.time()
    if as_of is not None:
        dataset = cut_at(dataset, as_of)
    interactions = dataset.interactions
    if interactions.empty:
        raise ValueError(f"{dataset.source}: no interactions to train on")
    as_of = float(interactions["ts"].max() + 1) if as_of is None else float(as_of)
    fingerprint = data_fingerprint(dataset)
    version = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started)) + f"-{fingerprint[:8]}"
    store = LocalArtifactStore(artifacts)
    staging = store.staging_dir(version)
    try:
        manifest = _train_into(dataset, staging, cache_dir or artifacts / "cache", config, as_of, fingerprint,
                               version)
        store.publish(staging, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(f"published version {version} in {time.time() - started:.0f}s", config.progress)
    return manifest


def _train_into(dataset: Dataset, out: Path, cache: Path, config: TrainConfig, as_of: float, fingerprint: str,
                version: str) -> Manifest:
    progress = config.progress
    log(f"embedding {len(dataset.items):,} item texts with {MODEL_NAME}", progress)
    item_vectors = embed_texts(item_texts(dataset.items), cache_dir=cache, progress=progress)
    terms = preference_terms(dataset.users)
    preference_vectors = embed_texts(terms, cache_dir=cache) if terms else np.zeros((0, DIMENSION), np.float32)

    index_version = f"idx-{hashlib.sha256(item_vectors.tobytes()).hexdigest()[:12]}"
    log(f"building the ScaNN index over {item_vectors.shape[0]:,} x {item_vectors.shape[1]} vectors", progress)
    index = ScannIndex.build(item_vectors, index_version)
    encoder = ContentUserEncoder(item_vectors, preference_vectors)

    positive_ts = dataset.interactions.loc[
        dataset.interactions["event_type"].isin(("click", "add_to_cart", "purchase")), "ts"
    ]
    if positive_ts.empty:
        raise ValueError(f"{dataset.source}: no positive interactions (click, add_to_cart, purchase)")
    feature_cut = float(np.quantile(positive_ts.to_numpy(), LABEL_WINDOW_QUANTILE))
    catalog_then = build_catalog(dataset, feature_cut)
    users_then = build_user_table(dataset, catalog_then, feature_cut, terms)
    retriever_then = Retriever(catalog_then, encoder, index, config.knobs)
    examples = build_examples(catalog=catalog_then, users=users_then, retriever=retriever_then,
                              interactions=dataset.interactions, label_start=feature_cut, label_end=as_of,
                              max_groups=config.max_ranker_groups, seed=config.seed, progress=progress)
    log(f"training the XGBoost ranker on {examples.features.shape[0]:,} rows in {examples.n_groups:,} groups "
        f"({examples.groups_by_source})", progress)
    model, ranker_info = train_ranker(examples, seed=config.seed)
    export_onnx(model, out / "ranker.onnx")
    model.save_model(out / "ranker.xgb.json")
    sample = examples.features[: min(len(examples.features), 20_000)]
    parity = onnx_parity(model, out / "ranker.onnx", sample)
    if parity > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX ranker differs from XGBoost by {parity:.2e} (> {PARITY_TOLERANCE}); not publishing")
    importance = model.get_booster().get_score(importance_type="gain")
    ranker_info.update(onnx_parity_max_abs=parity, importance={
        FEATURE_NAMES[int(k[1:])]: round(v, 3) for k, v in importance.items() if k.startswith("f")
    } or {k: round(v, 3) for k, v in importance.items()})

    catalog = build_catalog(dataset, as_of)
    users = build_user_table(dataset, catalog, as_of, terms)
    catalog.save(out / "catalog.npz")
    users.save(out / "users.npz")
    np.save(out / "item_vectors.npy", item_vectors)
    np.save(out / "preference_vectors.npy", preference_vectors)
    (out / "preference_terms.json").write_text(json.dumps(terms))
    index.save(out / "index")
    (out / "stock_snapshot.json").write_text(json.dumps(_stock_snapshot(dataset)))

    files = {p.name: sha256_of(p) for p in sorted(out.iterdir())}
    model_version = f"content-xgb-{hashlib.sha256((files['ranker.onnx'] + index_version).encode()).hexdigest()[:12]}"
    manifest = Manifest(
        version=version,
        model_version=model_version,
        index_version=index_version,
        feature_version=FEATURE_VERSION,
        created_at=time.time(),
        retrieval={"kind": "content", "text_model": MODEL_NAME, "dimension": int(item_vectors.shape[1]),
                   "index": "scann", "items": int(item_vectors.shape[0]), "preference_terms": len(terms)},
        ranker={"kind": "xgboost-lambdamart-onnx", "features": list(FEATURE_NAMES), "feature_cut": feature_cut,
                **ranker_info},
        data={"source": str(dataset.source), "fingerprint": fingerprint, "as_of": as_of,
              "interactions": len(dataset.interactions), "items": len(dataset.items), "users": users.size},
        files=files,
    )
    (out / "manifest.json").write_text(manifest.to_json())
    return manifest


def _stock_snapshot(dataset: Dataset) -> dict:
    if dataset.stock is None or dataset.stock.empty:
        return {"out_of_stock": [], "quantities": {}}
    stock = dataset.stock
    quantity = stock["quantity"] if "quantity" in stock else pd.Series(np.nan, index=stock.index)
    out = stock.loc[~stock["in_stock"].astype(bool) | (quantity == 0), "item_id"].astype(str).tolist()
    known = stock[quantity.notna()]
    return {"out_of_stock": sorted(out),
            "quantities": {str(i): int(q) for i, q in zip(known["item_id"], known["quantity"], strict=True)}}
