"""Put the item-embedding models into a version directory, parity-checked, and describe them for the manifest.

A version can then embed a new item in the serving process: text -> text_encoder.onnx, photo ->
image_encoder.onnx (versions trained with images), then item_tower.onnx (two-tower versions). Each ONNX model
is compared with what training computed on the version's own catalog; above PARITY_TOLERANCE nothing is
published (ParityError), as for the ranker and the user tower.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tastebud.item_embedding_spec import ItemEmbeddingSpec
from tastebud_training.image_embedding import ImageConfig
from tastebud_training.item_embedding import image_encoder, text_encoder
from tastebud_training.item_embedding.files import link_or_copy
from tastebud_training.retrieval import FittedRetrieval
from tastebud_training.text_embedding import MAX_SEQ_LENGTH, MODEL_NAME

PARITY_TOLERANCE = 1e-5
ITEM_TOWER_FILE = "item_tower.onnx"
TEXT_SAMPLE = 64
TOWER_SAMPLE = 256
IMAGE_SAMPLE = 8


class ParityError(RuntimeError):
    """An exported model differs from its original by more than PARITY_TOLERANCE: the version is not published."""


@dataclass(frozen=True)
class TrainingImages:
    """The item photos training embedded: their config, where relative URIs live, and the features it got."""

    config: ImageConfig
    data_dir: Path
    image_uris: list[str]
    features: np.ndarray
    has_image: np.ndarray


def export_item_embedding(out: Path, retrieval: FittedRetrieval, texts: list[str], text_vectors: np.ndarray,
                          images: TrainingImages | None, cache_dir: Path,
                          say: Callable[[str], None] = lambda message: None, seed: int = 0) -> dict[str, Any]:
    """Export into ``out`` and return manifest.retrieval["item_embedding"].

    Args:
        out: the version (staging) directory.
        retrieval: the retrieval model whose index is published (its item tower for "two_tower").
        texts, text_vectors: the catalog's item texts and their SentenceTransformer vectors (text_vectors.npy).
        images: what training embedded item photos with, or None when the version uses no images.
        cache_dir: the training cache (exports are built once there and hard-linked into ``out``).

    Raises:
        ParityError: an ONNX model disagrees with its original.
    """
    rng = np.random.default_rng(seed)
    say(f"exporting the item embedders ({MODEL_NAME}{', EfficientNetB0' if images else ''}"
        f"{', item tower' if retrieval.kind == 'two_tower' else ''}) to ONNX")
    section: dict[str, Any] = {"index_space": retrieval.kind, "text_encoder": _text(out, texts, text_vectors,
                                                                                     cache_dir, rng)}
    if retrieval.kind == "two_tower":
        section["item_tower"] = _item_tower(out, retrieval, text_vectors.shape[0], rng)
    if images is not None and retrieval.kind == "two_tower":
        section["image_encoder"] = _image(out, images, cache_dir, rng)
    ItemEmbeddingSpec.from_section(section, str(out))  # what serving will read must parse
    return section


def _check(name: str, parity: float) -> float:
    if not parity <= PARITY_TOLERANCE:  # NaN fails too
        raise ParityError(f"ONNX {name} differs from its original by {parity:.2e} (> {PARITY_TOLERANCE}); "
                          "not publishing")
    return parity


def _sample(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=min(n, k), replace=False)) if n else np.zeros(0, np.int64)


def _text(out: Path, texts: list[str], vectors: np.ndarray, cache_dir: Path,
          rng: np.random.Generator) -> dict[str, Any]:
    exported = text_encoder.export_text_encoder(cache_dir)
    for name in (text_encoder.ONNX_FILE, text_encoder.TOKENIZER_FILE):
        link_or_copy(exported / name, out / name)
    longest = np.argsort([-len(t) for t in texts], kind="stable")[: TEXT_SAMPLE // 4]  # exercise truncation
    rows = np.union1d(longest, _sample(len(texts), TEXT_SAMPLE, rng)).astype(np.int64)
    parity = _check("text encoder", text_encoder.text_encoder_parity(out, [texts[i] for i in rows], vectors[rows]))
    return {"file": text_encoder.ONNX_FILE, "tokenizer": text_encoder.TOKENIZER_FILE, "model": MODEL_NAME,
            "max_seq_length": MAX_SEQ_LENGTH, "dimension": int(vectors.shape[1]), "parity_max_abs": parity,
            "parity_items": int(rows.size)}


def _item_tower(out: Path, retrieval: FittedRetrieval, n_items: int, rng: np.random.Generator) -> dict[str, Any]:
    from tastebud_training.two_tower.export import export_item_tower, tower_parity

    if retrieval.item_tower is None or retrieval.item_inputs is None:
        raise ValueError("a two-tower retrieval model without its item tower cannot embed new items")
    inputs = retrieval.item_inputs(_sample(n_items, TOWER_SAMPLE, rng))
    path = out / ITEM_TOWER_FILE
    export_item_tower(retrieval.item_tower, path, int(inputs["text"].shape[1]), int(inputs["image"].shape[1]))
    cold = {**inputs, "item_idx": np.zeros_like(inputs["item_idx"])}  # what serving feeds a new item
    parity = _check("item tower", max(tower_parity(retrieval.item_tower, path, inputs),
                                      tower_parity(retrieval.item_tower, path, cold)))
    return {"file": ITEM_TOWER_FILE, "parity_max_abs": parity, "parity_items": int(inputs["item_idx"].size)}


def _image(out: Path, images: TrainingImages, cache_dir: Path, rng: np.random.Generator) -> dict[str, Any]:
    exported, weights_id = image_encoder.export_image_encoder(images.config, cache_dir)
    link_or_copy(exported / image_encoder.ONNX_FILE, out / image_encoder.ONNX_FILE)
    with_image = np.flatnonzero(images.has_image)
    rows = with_image[_sample(with_image.size, IMAGE_SAMPLE, rng)]
    paths = [images.data_dir / images.image_uris[i].strip() for i in rows]  # as training resolved them
    parity = _check("image encoder", image_encoder.image_encoder_parity(
        out / image_encoder.ONNX_FILE, images.config.size, paths, images.features[rows]))
    return {"file": image_encoder.ONNX_FILE, "size": images.config.size, "weights": weights_id,
            "parity_max_abs": parity, "parity_items": int(rows.size)}
