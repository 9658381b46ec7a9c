"""Retrieval models behind the UserEncoder + CandidateIndex ports: the two-tower model (default) and the
content baseline (MiniLM item vectors, user = recency-weighted mean of their items).

``fit_retrieval`` trains on interactions before ``as_of`` and returns everything serving needs: the encoder
(the exported ONNX user tower, exactly what serving runs), the vectors the index holds, and the files to
publish.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tastebud.adapters.embedded.content_encoder import ContentUserEncoder
from tastebud.adapters.embedded.onnx_user_encoder import OnnxUserEncoder
from tastebud.artifacts import USER_TOWER, USER_TOWER_INT8
from tastebud.catalog import Catalog
from tastebud.features.two_tower import TWO_TOWER_FEATURE_VERSION, TwoTowerVocab, item_inputs
from tastebud.ports import UserEncoder
from tastebud_training.data import Dataset, cut_at
from tastebud_training.snapshot import build_user_table
from tastebud_training.two_tower.trainer import TrainedTowers, TwoTowerConfig

if TYPE_CHECKING:
    from tastebud_training.two_tower.examples import Examples

ONNX_PARITY_TOLERANCE = 1e-5
RETRIEVAL_MODELS = ("two_tower", "content")


@dataclass
class FittedRetrieval:
    """A trained retrieval model. For "two_tower", ``item_tower`` is the Keras item tower and ``item_inputs``
    builds its inputs for catalog rows (exported to ONNX at publish time to embed new items)."""

    kind: str
    encoder: UserEncoder
    index_vectors: np.ndarray
    manifest: dict[str, Any]
    history: dict[str, list[float]] = field(default_factory=dict)
    item_tower: Any = None
    item_inputs: Callable[[np.ndarray], dict[str, np.ndarray]] | None = None


def fit_content(text_vectors: np.ndarray, preference_vectors: np.ndarray) -> FittedRetrieval:
    return FittedRetrieval("content", ContentUserEncoder(text_vectors, preference_vectors), text_vectors,
                           {"kind": "content", "dimension": int(text_vectors.shape[1])})


def fit_two_tower(dataset: Dataset, catalog: Catalog, as_of: float, terms: list[str], text_vectors: np.ndarray,
                  image_vectors: np.ndarray, has_image: np.ndarray, out: Path, config: TwoTowerConfig,
                  log: Callable[[str], None], *, served: bool = True) -> FittedRetrieval:
    """Train the towers on positives before ``as_of``; export the user tower and embed the whole catalog.

    ``served``: False for a fit that a refit replaces before the version is published (the ranker's view at the
    feature cut): its ONNX user tower is exported (the ranker's examples retrieve with it) but not the files only
    serving reads (vocabulary, Keras towers, the SageMaker model data), which the refit would overwrite."""
    from tastebud_training.two_tower.examples import build_examples, build_vocab
    from tastebud_training.two_tower.trainer import embed_items, train_towers

    window = cut_at(dataset, as_of)
    users = build_user_table(window, catalog, as_of, terms)
    vocab = build_vocab(window, catalog, users, text_vectors, len(terms))
    examples = build_examples(window, catalog, users, vocab, hard_negatives=config.hard_negatives, seed=config.seed)
    if len(examples) < 64:
        raise ValueError(f"only {len(examples)} positive examples before the label window: too few for the "
                         "two-tower model (use --retrieval content for tiny data sets)")
    with_hard = int((examples.hard_rows >= 0).any(axis=1).sum())
    log(f"two-tower: {len(examples):,} examples ({with_hard:,} with hard negatives), "
        f"{vocab.n_items:,} item ids, {vocab.user_ids.size:,} user ids, {config.epochs} epochs")

    def inputs_for(rows: np.ndarray) -> dict[str, np.ndarray]:
        return item_inputs(vocab, catalog, rows, image_vectors, has_image)

    trained = train_towers(examples, inputs_for, catalog.size, vocab.sizes, config, progress=log)
    index_vectors = embed_items(trained.item_tower, inputs_for, catalog.size)
    exported = _export_user_tower(trained, examples, index_vectors, int(text_vectors.shape[1]), out, config, log)
    if served:
        _save_towers(trained, vocab, text_vectors, out)
    manifest = {
        "kind": "two_tower", "feature_version": TWO_TOWER_FEATURE_VERSION,
        "dimension": int(index_vectors.shape[1]), "trained_before": as_of, "examples": len(examples),
        "examples_with_hard_negatives": with_hard, "temperature": trained.temperature,
        "onnx_parity_max_abs": exported.parity, "user_tower": exported.file, "user_tower_int8": exported.int8,
        **_training_summary(trained, config),
        "images": int(has_image.sum()),
    }
    encoder = OnnxUserEncoder(out / exported.file, vocab)  # evaluation measures the tower that is served
    return FittedRetrieval("two_tower", encoder, index_vectors, manifest, trained.history,
                           item_tower=trained.item_tower, item_inputs=inputs_for)


@dataclass(frozen=True)
class _ServedUserTower:
    """The exported user tower serving runs: its file, the float32 export's ONNX parity, the int8 check (or None)."""

    file: str
    parity: float
    int8: dict[str, Any] | None


def _export_user_tower(trained: TrainedTowers, examples: Examples, index_vectors: np.ndarray, text_dim: int,
                       out: Path, config: TwoTowerConfig, log: Callable[[str], None]) -> _ServedUserTower:
    """Export the user tower to ONNX (parity-checked) and, when configured, its int8 variant, served only when it
    retrieves what float32 retrieves."""
    from tastebud_training.two_tower.export import export_user_tower, publish_int8_user_tower, user_tower_parity

    export_user_tower(trained.user_tower, out / USER_TOWER, text_dim)
    sample = examples.take(np.arange(min(len(examples), 512)))
    parity = user_tower_parity(trained.user_tower, out / USER_TOWER, sample.user)
    if parity > ONNX_PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX user tower differs from Keras by {parity:.2e}; not publishing")
    served_tower, int8 = USER_TOWER, None
    if config.user_tower_int8:
        spread = examples.take(np.linspace(0, len(examples) - 1, min(len(examples), 512)).astype(np.int64))
        int8 = publish_int8_user_tower(out / USER_TOWER, out / USER_TOWER_INT8, spread.user, index_vectors)
        log(f"two-tower: int8 user tower agrees on {int8['neighbour_agreement_mean']:.1%} of the top-{int8['k']} "
            f"neighbours (min {int8['neighbour_agreement_min']:.0%}, cosine min {int8['cosine_min']:.4f}): "
            + ("served" if int8["published"] else "NOT served, float32 kept"))
        if int8["published"]:
            served_tower = USER_TOWER_INT8
    return _ServedUserTower(served_tower, parity, int8)


def _save_towers(trained: TrainedTowers, vocab: TwoTowerVocab, text_vectors: np.ndarray, out: Path) -> None:
    """The vocabulary, both Keras towers, the SageMaker endpoint's model data and the training curves."""
    vocab.save(out)
    trained.item_tower.save(out / "item_tower.keras")
    trained.user_tower.save(out / "user_tower.keras")
    # The SageMaker endpoint's model data: TF Serving layout, with the item-text table inside (two_tower/serving.py).
    from tastebud_training.two_tower.serving import package_model_tar

    package_model_tar(trained.user_tower, text_vectors, out / "user_tower" / "model.tar.gz")
    (out / "two_tower_history.json").write_text(json.dumps(trained.history))


def _training_summary(trained: TrainedTowers, config: TwoTowerConfig) -> dict[str, Any]:
    """The manifest's account of the training run: time, best epoch and recall, and the hyper-parameters."""
    return {
        "seconds": round(trained.seconds, 1),
        "best_epoch": trained.history["best_epoch"][0],
        "valid_recall@100": max(trained.history["valid_recall@100"]),
        "config": {"epochs": config.epochs, "batch_size": config.batch_size, "use_logq": config.use_logq,
                   "hard_negatives": config.hard_negatives, "feature_dropout": config.feature_dropout,
                   "item_id_dropout": config.id_dropout, "item_id_scale": config.towers.item_id_scale,
                   "history_dropout": config.history_dropout, "learning_rate": config.learning_rate},
    }
