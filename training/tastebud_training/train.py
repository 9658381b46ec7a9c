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
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tastebud.adapters.embedded.scann_index import BruteForceIndex
from tastebud.adapters.embedded.user_table import UserTable
from tastebud.artifacts import LocalArtifactStore, Manifest
from tastebud.catalog import Catalog
from tastebud.event_types import POSITIVE_EVENTS
from tastebud.features.history import DECAY_HALF_LIVES_DAYS
from tastebud.features.image import IMAGE_DIM
from tastebud.features.schema import FEATURE_NAMES
from tastebud.pipeline.stages.retrieve import Retriever
from tastebud.ports import CandidateIndex
from tastebud.settings import ServingKnobs
from tastebud_training.basket_baselines import choose_half_life
from tastebud_training.data import Dataset, cut_at
from tastebud_training.image_embedding import ImageConfig
from tastebud_training.item_embedding import export_item_embedding
from tastebud_training.item_embedding.publish import TrainingImages
from tastebud_training.item_features import image_features, image_uris
from tastebud_training.protocols import positives_with_rows
from tastebud_training.ranker import fit_rankers
from tastebud_training.ranker_examples import RankerExamples, build_examples
from tastebud_training.report import write_report
from tastebud_training.retrieval import RETRIEVAL_MODELS, FittedRetrieval, fit_content, fit_two_tower
from tastebud_training.skew import retrieval_skew
from tastebud_training.snapshot import build_catalog, build_user_table, preference_terms
from tastebud_training.text_embedding import DIMENSION, MODEL_NAME, embed_texts, item_texts
from tastebud_training.training_cache import cache_directory
from tastebud_training.two_tower.trainer import TwoTowerConfig
from tastebud_training.version_files import ItemText, TrainingRun, write_manifest, write_serving_files

# "scann": the in-process ScaNN index (local serving); "none": no ANN index in the version (the SageMaker job:
# ScaNN 1.4.2 is built against TF 2.20, the training DLC has 2.19; on AWS the index lives in OpenSearch).
ANN_INDEXES = ("scann", "none")
# Ranker features as of this quantile of positive times; labels after it. Half of the log: a request at each basket
# of it, with its point-in-time history, gives the ranker 4x the groups of the last 15% (issue 22).
LABEL_WINDOW_QUANTILE = 0.5


@dataclass(frozen=True)
class TrainConfig:
    """What `tastebud train` builds. ``retrieval`` is "two_tower" (the default) or "content" (the baseline);
    ``ann_index`` is "scann" (the default, local serving) or "none" (see ANN_INDEXES)."""

    seed: int = 7
    max_ranker_groups: int = 6000
    # Learn the ranker from logged pages too (ranker_examples.build_examples); off: it lowered NDCG@10 on the simulator.
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
        manifest = _train_into(TrainingRun(dataset, as_of, fingerprint, version), staging, cache, config)
        store.publish(staging, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(f"published version {version} in {time.time() - started:.0f}s", config.progress)
    return manifest


@dataclass(frozen=True)
class _FeatureCut:
    """The world at the feature cut, where the ranker's requests are made: the catalog and users as they were then,
    and retrieval trained on the positives before it."""

    ts: float
    catalog: Catalog
    users: UserTable
    retriever: Retriever


def _train_into(run: TrainingRun, out: Path, cache: Path, config: TrainConfig) -> Manifest:
    """Every model of the version, then its files and manifest, into ``out`` (the staging directory)."""
    dataset, as_of = run.dataset, run.as_of

    def say(message: str) -> None:
        log(message, config.progress)

    text = _embed_item_text(dataset, cache, config.progress, say)
    feature_cut = _feature_cut(dataset)
    catalog_then = build_catalog(dataset, feature_cut)
    image_vectors, has_image = _item_images(dataset, cache, config, say)

    refit = config.refit_retrieval and config.retrieval == "two_tower"

    def fit(before: float, *, served: bool) -> FittedRetrieval:
        if config.retrieval == "content":
            return fit_content(text.vectors, text.preference_vectors)
        return fit_two_tower(dataset, build_catalog(dataset, before), before, text.terms, text.vectors,
                             image_vectors, has_image, out, config.two_tower, say, served=served)

    retrieval = fit(feature_cut, served=not refit)
    index = _build_index(retrieval.index_vectors, config.ann_index, say)
    users_then = build_user_table(dataset, catalog_then, feature_cut, text.terms)
    retriever_then = Retriever(catalog_then, retrieval.encoder, index, config.knobs)
    cut = _FeatureCut(feature_cut, catalog_then, users_then, retriever_then)
    examples = _ranker_examples(dataset, cut, as_of, config, say)
    half_life = _prior_half_life(dataset, cut, say) if config.ranker_prior else None
    ranker_info = fit_rankers(examples, seed=config.seed, n_seeds=config.ranker_seeds, half_life_days=half_life,
                              out=out, say=say)

    if refit:
        # The ranker needed a retrieval model that had not seen its labels; serving wants the freshest one.
        say("refitting the two-tower model on all interactions for serving")
        retrieval = fit(as_of, served=True)
        index = _build_index(retrieval.index_vectors, config.ann_index, say)
        ranker_info["retrieval_skew"] = retrieval_skew(users_then, _skew_requests(dataset, feature_cut, as_of, config),
                                                       retriever_then, retrieval.encoder, retrieval.index_vectors)
    item_embedding = export_item_embedding(out, retrieval, text.texts, text.vectors,
                                           _training_images(dataset, config, image_vectors, has_image), cache, say)

    catalog = build_catalog(dataset, as_of)
    users = build_user_table(dataset, catalog, as_of, text.terms)
    write_serving_files(out, dataset, catalog, users, text, retrieval.index_vectors, index, config.ann_index)
    write_report(out, retrieval.history, ranker_info)
    return write_manifest(
        out, run, retrieval.kind, index.version,
        retrieval={**retrieval.manifest, "text_model": MODEL_NAME, "index": config.ann_index,
                   "items": int(retrieval.index_vectors.shape[0]), "preference_terms": len(text.terms),
                   "item_embedding": item_embedding},
        ranker={"kind": "xgboost-lambdamart-onnx", "features": list(FEATURE_NAMES), "feature_cut": feature_cut,
                **ranker_info},
        n_users=users.size)


def _embed_item_text(dataset: Dataset, cache: Path, progress: bool, say: Callable[[str], None]) -> ItemText:
    """MiniLM vectors of the item texts and of the stated preferences (cached by content)."""
    say(f"embedding {len(dataset.items):,} item texts with {MODEL_NAME}")
    texts = item_texts(dataset.items)
    text_vectors = embed_texts(texts, cache_dir=cache, progress=progress)
    terms = preference_terms(dataset.users)
    preference_vectors = embed_texts(terms, cache_dir=cache) if terms else np.zeros((0, DIMENSION), np.float32)
    return ItemText(texts, text_vectors, terms, preference_vectors)


def _feature_cut(dataset: Dataset) -> float:
    """The time that splits the positives between retrieval (before) and the ranker's labels (after)."""
    positive_ts = dataset.interactions.loc[
        dataset.interactions["event_type"].isin(POSITIVE_EVENTS), "ts"
    ]
    if positive_ts.empty:
        raise ValueError(f"{dataset.source}: no positive interactions (click, add_to_cart, purchase)")
    # Retrieval learns from positives before the cut; the ranker from candidates labelled after it. One cut for
    # both keeps the ranker honest: its retrieval-score feature never comes from pairs retrieval was trained on.
    return float(np.quantile(positive_ts.to_numpy(), LABEL_WINDOW_QUANTILE))


def _item_images(dataset: Dataset, cache: Path, config: TrainConfig,
                 say: Callable[[str], None]) -> tuple[np.ndarray, np.ndarray]:
    """Image features and ``has_image`` per item: the item tower's image input (none for content retrieval)."""
    if config.retrieval != "two_tower":
        return np.zeros((0, IMAGE_DIM), np.float32), np.zeros(0, bool)
    return image_features(dataset, cache, enabled=config.images, weights=config.image_weights,
                          progress=config.progress, say=say)


def _ranker_examples(dataset: Dataset, cut: _FeatureCut, as_of: float, config: TrainConfig,
                     say: Callable[[str], None]) -> RankerExamples:
    """Requests made at the feature cut's snapshot, labelled by the positives from the cut to ``as_of``."""
    examples = build_examples(catalog=cut.catalog, users=cut.users, retriever=cut.retriever,
                              interactions=dataset.interactions, label_start=cut.ts, label_end=as_of,
                              max_groups=config.max_ranker_groups, seed=config.seed, progress=config.progress,
                              impression_groups=config.ranker_impression_groups, label_horizon=config.ranker_labels)
    say(f"training the XGBoost ranker on {examples.features.shape[0]:,} rows in {examples.n_groups:,} groups "
        f"({examples.groups_by_source})")
    return examples


def _prior_half_life(dataset: Dataset, cut: _FeatureCut, say: Callable[[str], None]) -> float:
    """The half-life of the ranker's "buy again" prior, chosen on next-basket NDCG@10 before the feature cut."""
    history = positives_with_rows(dataset.interactions, cut.catalog.item_ids)
    half_life, by_half_life = choose_half_life(history[history["ts"] < cut.ts], "next-basket",
                                               cut.catalog.popular_rows("all"), DECAY_HALF_LIVES_DAYS)
    say(f"ranker prior: time-decayed buy-again, half-life {half_life:g} days (next-basket NDCG@10 on the data "
        f"before the feature cut: {', '.join(f'{h}: {v:.3f}' for h, v in by_half_life.items())})")
    return half_life


def _skew_requests(dataset: Dataset, start: float, end: float, config: TrainConfig,
                   n: int = 300) -> list[tuple[str, float]]:
    """(user, time of their first positive) in the label window, for a sample of its users."""
    window = dataset.interactions[(dataset.interactions["ts"] >= start) & (dataset.interactions["ts"] < end)]
    first = window[window["event_type"].isin(POSITIVE_EVENTS)].groupby("user_id")["ts"].min()
    picked = np.random.default_rng(config.seed).permutation(first.index.to_numpy())[:n]
    return [(str(u), float(first[u])) for u in picked]


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
