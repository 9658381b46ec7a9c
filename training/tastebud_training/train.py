"""`tastebud train`: every model and the index from one data directory, published as one artifact version.

Steps: item text -> MiniLM vectors (cached) -> ScaNN index; point-in-time snapshots; re-ranker examples
built with the serving code; XGBoost LambdaMART -> ONNX (parity-checked); serving snapshots; manifest.
``TrainConfig.ann_index="none"`` (the SageMaker job, whose index is OpenSearch's) builds no ScaNN index and
never imports ScaNN: the ranker examples use exact search, and ``index_vectors.npy`` is still written (the
hot swap bulk-loads it).
Everything is written to a staging directory and published with an atomic rename: a failed run
publishes nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from tastebud.adapters.embedded.scann_index import BruteForceIndex
from tastebud.artifacts import LocalArtifactStore, Manifest, sha256_of
from tastebud.catalog import Catalog
from tastebud.display import DISPLAY_FILE, DisplayTable
from tastebud.event_types import POSITIVE_EVENTS
from tastebud.features import FEATURE_NAMES, FEATURE_VERSION
from tastebud.history import DECAY_HALF_LIVES_DAYS
from tastebud.image_features import IMAGE_DIM
from tastebud.ports import CandidateIndex
from tastebud.ranker_prior import MANIFEST_KEY as PRIOR_KEY
from tastebud.settings import ServingKnobs
from tastebud.stages.retrieve import Retriever
from tastebud_training.basket_baselines import choose_half_life
from tastebud_training.data import Dataset, cut_at
from tastebud_training.image_embedding import ImageConfig
from tastebud_training.item_embedding import export_item_embedding
from tastebud_training.item_embedding.publish import TrainingImages
from tastebud_training.item_features import image_features, image_uris
from tastebud_training.protocols import positives_with_rows
from tastebud_training.ranker import (
    OTHER_SEEDS_KEY,
    RankerExamples,
    build_examples,
    export_onnx,
    onnx_parity,
    train_ranker,
)
from tastebud_training.report import write_report
from tastebud_training.retrieval import RETRIEVAL_MODELS, FittedRetrieval, fit_content, fit_two_tower
from tastebud_training.skew import retrieval_skew
from tastebud_training.snapshot import build_catalog, build_user_table, preference_terms
from tastebud_training.text_embedding import DIMENSION, MODEL_NAME, embed_texts, item_texts
from tastebud_training.training_cache import cache_directory
from tastebud_training.two_tower.trainer import TwoTowerConfig

# "scann": the in-process ScaNN index (local serving); "none": no ANN index in the version (the SageMaker job:
# ScaNN 1.4.2 is built against TF 2.20, the training DLC has 2.19; on AWS the index lives in OpenSearch).
ANN_INDEXES = ("scann", "none")
# Ranker features as of this quantile of positive times; labels after it. Half of the log: a request at each basket
# of it, with its point-in-time history, gives the ranker 4x the groups of the last 15% (issue 22).
LABEL_WINDOW_QUANTILE = 0.5
PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class TrainConfig:
    """What `tastebud train` builds. ``retrieval`` is "two_tower" (the default) or "content" (the baseline);
    ``ann_index`` is "scann" (the default, local serving) or "none" (see ANN_INDEXES)."""

    seed: int = 7
    max_ranker_groups: int = 6000
    # Learn the ranker from logged pages too (ranker.build_examples); off: it lowered NDCG@10 on the simulator.
    ranker_impression_groups: bool = False
    # Start the ranker from time-decayed "buy again" (XGBoost base_margin; its weight, 0 included, chosen on
    # validation users); the half-life is chosen on the data before the feature cut (issue 22).
    ranker_prior: bool = True
    # What a ranker request is labelled with: the basket it starts ("next-basket") or every later positive of the
    # label window ("window", before issue 22's second slice).
    ranker_labels: str = "next-basket"
    # Rankers fitted on the same examples with seeds seed, seed + 1, ...: the first is served; the others are saved
    # beside it (ranker.seed<S>.onnx) so `tastebud evaluate --ranker-seeds N` reports the mean of N seeds.
    ranker_seeds: int = 1
    progress: bool = True
    retrieval: str = "two_tower"
    images: bool = True
    ann_index: str = "scann"
    image_weights: str | None = None
    refit_retrieval: bool = True
    two_tower: TwoTowerConfig = field(default_factory=TwoTowerConfig)
    knobs: ServingKnobs = field(default_factory=ServingKnobs)

    def __post_init__(self) -> None:
        if self.retrieval not in RETRIEVAL_MODELS:
            raise ValueError(f"retrieval must be one of {RETRIEVAL_MODELS}, not {self.retrieval!r}")
        if self.ann_index not in ANN_INDEXES:
            raise ValueError(f"ann_index must be one of {ANN_INDEXES}, not {self.ann_index!r}")
        if self.ranker_seeds < 1:
            raise ValueError(f"ranker_seeds must be >= 1, not {self.ranker_seeds}")


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
        cache = cache_dir or cache_directory(artifacts / "cache")
        manifest = _train_into(dataset, staging, cache, config, as_of, fingerprint, version)
        store.publish(staging, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(f"published version {version} in {time.time() - started:.0f}s", config.progress)
    return manifest


def _train_into(dataset: Dataset, out: Path, cache: Path, config: TrainConfig, as_of: float, fingerprint: str,
                version: str) -> Manifest:
    progress = config.progress

    def say(message: str) -> None:
        log(message, progress)

    say(f"embedding {len(dataset.items):,} item texts with {MODEL_NAME}")
    texts = item_texts(dataset.items)
    text_vectors = embed_texts(texts, cache_dir=cache, progress=progress)
    terms = preference_terms(dataset.users)
    preference_vectors = embed_texts(terms, cache_dir=cache) if terms else np.zeros((0, DIMENSION), np.float32)

    positive_ts = dataset.interactions.loc[
        dataset.interactions["event_type"].isin(POSITIVE_EVENTS), "ts"
    ]
    if positive_ts.empty:
        raise ValueError(f"{dataset.source}: no positive interactions (click, add_to_cart, purchase)")
    # Retrieval learns from positives before the cut; the ranker from candidates labelled after it. One cut for
    # both keeps the ranker honest: its retrieval-score feature never comes from pairs retrieval was trained on.
    feature_cut = float(np.quantile(positive_ts.to_numpy(), LABEL_WINDOW_QUANTILE))
    catalog_then = build_catalog(dataset, feature_cut)

    image_vectors, has_image = (image_features(dataset, cache, enabled=config.images, weights=config.image_weights,
                                               progress=progress, say=say) if config.retrieval == "two_tower"
                                else (np.zeros((0, IMAGE_DIM), np.float32), np.zeros(0, bool)))

    def fit(before: float) -> FittedRetrieval:
        if config.retrieval == "content":
            return fit_content(text_vectors, preference_vectors)
        return fit_two_tower(dataset, build_catalog(dataset, before), before, terms, text_vectors, image_vectors,
                             has_image, out, config.two_tower, say)

    retrieval = fit(feature_cut)
    index = _build_index(retrieval.index_vectors, config.ann_index, say)

    users_then = build_user_table(dataset, catalog_then, feature_cut, terms)
    retriever_then = Retriever(catalog_then, retrieval.encoder, index, config.knobs)
    examples = build_examples(catalog=catalog_then, users=users_then, retriever=retriever_then,
                              interactions=dataset.interactions, label_start=feature_cut, label_end=as_of,
                              max_groups=config.max_ranker_groups, seed=config.seed, progress=progress,
                              impression_groups=config.ranker_impression_groups, label_horizon=config.ranker_labels)
    say(f"training the XGBoost ranker on {examples.features.shape[0]:,} rows in {examples.n_groups:,} groups "
        f"({examples.groups_by_source})")
    half_life = None
    if config.ranker_prior:
        history = positives_with_rows(dataset.interactions, catalog_then.item_ids)
        half_life, by_half_life = choose_half_life(history[history["ts"] < feature_cut], "next-basket",
                                                   catalog_then.popular_rows("all"), DECAY_HALF_LIVES_DAYS)
        say(f"ranker prior: time-decayed buy-again, half-life {half_life:g} days (next-basket NDCG@10 on the data "
            f"before the feature cut: {', '.join(f'{h}: {v:.3f}' for h, v in by_half_life.items())})")
    model, ranker_info = train_ranker(examples, seed=config.seed, half_life_days=half_life)
    if "prior" in ranker_info:
        say(f"ranker prior weight {ranker_info['prior']['weight']:g} (validation NDCG@10 by weight: "
            f"{ranker_info['prior_weights_valid_ndcg@10']})")
    export_onnx(model, out / "ranker.onnx")
    model.save_model(out / "ranker.xgb.json")
    sample = examples.features[: min(len(examples.features), 20_000)]
    parity = onnx_parity(model, out / "ranker.onnx", sample)
    if parity > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX ranker differs from XGBoost by {parity:.2e} (> {PARITY_TOLERANCE}); not publishing")
    # Gain is one number per feature for a tree booster (lists are for multi-output linear boosters only).
    importance = {k: float(cast(float, v)) for k, v in model.get_booster().get_score(importance_type="gain").items()}
    ranker_info.update(onnx_parity_max_abs=parity, importance={
        FEATURE_NAMES[int(k[1:])]: round(v, 3) for k, v in importance.items() if k.startswith("f")
    } or {k: round(v, 3) for k, v in importance.items()})
    ranker_info[OTHER_SEEDS_KEY] = _other_seed_rankers(examples, config, half_life, out, sample, say)

    if config.refit_retrieval and config.retrieval == "two_tower":
        # The ranker needed a retrieval model that had not seen its labels; serving wants the freshest one.
        say("refitting the two-tower model on all interactions for serving")
        retrieval = fit(as_of)
        index = _build_index(retrieval.index_vectors, config.ann_index, say)
        ranker_info["retrieval_skew"] = retrieval_skew(users_then, _skew_requests(dataset, feature_cut, as_of, config),
                                                       retriever_then, retrieval.encoder, retrieval.index_vectors)
    index_vectors = retrieval.index_vectors
    index_version = index.version
    item_embedding = export_item_embedding(out, retrieval, texts, text_vectors,
                                           _training_images(dataset, config, image_vectors, has_image), cache, say)

    catalog = build_catalog(dataset, as_of)
    users = build_user_table(dataset, catalog, as_of, terms)
    catalog.save(out / "catalog.npz")
    display_table(dataset, catalog).save(out / DISPLAY_FILE)
    users.save(out / "users.npz")
    np.save(out / "text_vectors.npy", text_vectors)
    np.save(out / "index_vectors.npy", index_vectors)
    np.save(out / "preference_vectors.npy", preference_vectors)
    (out / "preference_terms.json").write_text(json.dumps(terms))
    if config.ann_index == "scann":
        index.save(out / "index")  # type: ignore[attr-defined]
    (out / "stock_snapshot.json").write_text(json.dumps(_stock_snapshot(dataset)))
    write_report(out, retrieval.history, ranker_info)

    files = {p.name: sha256_of(p) for p in sorted(out.iterdir()) if p.name != "report"}
    model_version = (f"{retrieval.kind.replace('_', '')}-xgb-"
                     f"{hashlib.sha256((files['ranker.onnx'] + index_version).encode()).hexdigest()[:12]}")
    manifest = Manifest(
        version=version,
        model_version=model_version,
        index_version=index_version,
        feature_version=FEATURE_VERSION,
        created_at=time.time(),
        retrieval={**retrieval.manifest, "text_model": MODEL_NAME, "index": config.ann_index,
                   "items": int(index_vectors.shape[0]), "preference_terms": len(terms),
                   "item_embedding": item_embedding},
        ranker={"kind": "xgboost-lambdamart-onnx", "features": list(FEATURE_NAMES), "feature_cut": feature_cut,
                **ranker_info},
        data={"source": str(Path(dataset.source).resolve()), "fingerprint": fingerprint, "as_of": as_of,
              # Live events and upserts received after this are applied on top of the version by serving.
              "read_at": dataset.read_at if dataset.read_at is not None else time.time(),
              "interactions": len(dataset.interactions), "items": len(dataset.items), "users": users.size},
        files=files,
    )
    (out / "manifest.json").write_text(manifest.to_json())
    return manifest


def _skew_requests(dataset: Dataset, start: float, end: float, config: TrainConfig,
                   n: int = 300) -> list[tuple[str, float]]:
    """(user, time of their first positive) in the label window, for a sample of its users."""
    window = dataset.interactions[(dataset.interactions["ts"] >= start) & (dataset.interactions["ts"] < end)]
    first = window[window["event_type"].isin(POSITIVE_EVENTS)].groupby("user_id")["ts"].min()
    picked = np.random.default_rng(config.seed).permutation(first.index.to_numpy())[:n]
    return [(str(u), float(first[u])) for u in picked]


def display_table(dataset: Dataset, catalog: Catalog) -> DisplayTable:
    """Titles per catalog item row and names per merchant row (what `explain` and the CLI show)."""
    titles = dataset.items.set_index("item_id")["title"].reindex(catalog.item_ids).fillna("").astype(str)
    names = dataset.merchants.set_index("merchant_id")["name"].reindex(catalog.merchant_ids).fillna("").astype(str)
    return DisplayTable(np.asarray(titles.to_numpy(), dtype=str), np.asarray(names.to_numpy(), dtype=str))


def _build_index(vectors: np.ndarray, kind: str, say: Callable[[str], None]) -> CandidateIndex:
    """The version's ANN index ("scann"), or exact search over the vectors ("none": nothing to save)."""
    version = f"idx-{hashlib.sha256(vectors.tobytes()).hexdigest()[:12]}"
    if kind == "none":
        say(f"no ANN index (ann_index=none): exact search over {vectors.shape[0]:,} x {vectors.shape[1]} vectors")
        return BruteForceIndex(vectors, version)
    from tastebud.adapters.embedded.scann_index import ScannIndex  # imports nothing heavy until build()

    say(f"building the ScaNN index over {vectors.shape[0]:,} x {vectors.shape[1]} vectors")
    return ScannIndex.build(vectors, version)


def _image_config(config: TrainConfig) -> ImageConfig:
    return ImageConfig(weights=config.image_weights)


def _training_images(dataset: Dataset, config: TrainConfig, features: np.ndarray,
                     has_image: np.ndarray) -> TrainingImages | None:
    """What the item tower's image input was built from, for exporting the image encoder (None: no images)."""
    if config.retrieval != "two_tower" or not has_image.any():
        return None
    return TrainingImages(_image_config(config), Path(dataset.source), image_uris(dataset), features, has_image)


def _other_seed_rankers(examples: RankerExamples, config: TrainConfig, half_life: float | None, out: Path,
                        sample: np.ndarray, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Rankers with seeds seed + 1 ... seed + ranker_seeds - 1 on the same examples, each exported beside the
    served one with its own prior: the seed-to-seed spread of an evaluation (ranker.onnx is the first seed)."""
    others = []
    for seed in range(config.seed + 1, config.seed + config.ranker_seeds):
        model, info = train_ranker(examples, seed=seed, half_life_days=half_life)
        name = f"ranker.seed{seed}.onnx"
        export_onnx(model, out / name)
        parity = onnx_parity(model, out / name, sample)
        if parity > PARITY_TOLERANCE:
            raise RuntimeError(f"ONNX ranker (seed {seed}) differs from XGBoost by {parity:.2e}; not publishing")
        others.append({"seed": seed, "file": name, "best_iteration": info["best_iteration"],
                       **({PRIOR_KEY: info[PRIOR_KEY]} if PRIOR_KEY in info else {})})
        say(f"ranker seed {seed}: {info['best_iteration'] + 1} trees")
    return others


def _stock_snapshot(dataset: Dataset) -> dict:
    if dataset.stock is None or dataset.stock.empty:
        return {"out_of_stock": [], "quantities": {}}
    stock = dataset.stock
    quantity = stock["quantity"] if "quantity" in stock else pd.Series(np.nan, index=stock.index)
    out = stock.loc[~stock["in_stock"].astype(bool) | (quantity == 0), "item_id"].astype(str).tolist()
    known = stock[quantity.notna()]
    return {"out_of_stock": sorted(out),
            "quantities": {str(i): int(q) for i, q in zip(known["item_id"], known["quantity"], strict=True)}}
