"""ItemEmbedder adapter: a new item's vectors computed in the serving process with ONNX Runtime only.

Text -> all-MiniLM-L6-v2 (ONNX + tokenizer.json), photo -> EfficientNetB0 (ONNX, when the version was trained
with images), then the two-tower ITEM tower (ONNX) on inputs built by tastebud.features.two_tower.item_features,
the function training used. A new item has no item-id embedding: it gets index 0, exactly what feature dropout
fed the tower in training. For the "content" retrieval kind the index vector IS the text vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tastebud.adapters.embedded.onnx_image_encoder import OnnxImageEncoder
from tastebud.adapters.embedded.onnx_session import single_thread_session
from tastebud.adapters.embedded.onnx_text_encoder import OnnxTextEncoder
from tastebud.artifacts import Manifest
from tastebud.domain import ItemDraft
from tastebud.errors import ArtifactMismatchError, BadRequestError, NotFoundError
from tastebud.features.image import UnreadableImageError
from tastebud.features.item_text import item_text
from tastebud.features.two_tower import TwoTowerVocab, item_features
from tastebud.item_embedding_spec import ItemEmbeddingSpec


class OnnxItemEmbedder:
    """Embeds drafts into the candidate index's space; all ONNX sessions are created once, in ``load``."""

    def __init__(self, text_encoder: OnnxTextEncoder, *, item_tower_path: Path | None = None,
                 vocab: TwoTowerVocab | None = None, image_encoder: OnnxImageEncoder | None = None,
                 image_root: Path | None = None) -> None:
        if item_tower_path is not None and vocab is None:
            raise ArtifactMismatchError("the item tower needs the two-tower vocabulary (two_tower_vocab.*)")
        self._text = text_encoder
        self._tower = single_thread_session(item_tower_path) if item_tower_path is not None else None
        self._tower_inputs = [i.name for i in self._tower.get_inputs()] if self._tower is not None else []
        self._image_dim = (int(next(i.shape[-1] for i in self._tower.get_inputs() if i.name == "image"))
                           if self._tower is not None else 0)
        self._vocab = vocab
        self._image = image_encoder
        self._image_root = image_root

    @classmethod
    def load(cls, directory: Path, manifest: Manifest, vocab: TwoTowerVocab | None, *,
             image_root: Path | None = None) -> OnnxItemEmbedder:
        """The embedder a version's manifest describes (``retrieval.item_embedding``).

        Args:
            directory: the version directory.
            manifest: its manifest.
            vocab: the two-tower vocabulary (None for the content retrieval kind).
            image_root: directory that relative ``image_uri``s are resolved against (the data directory).

        Raises:
            ArtifactMismatchError: the version was built without item-embedding models, or they disagree.
        """
        spec = ItemEmbeddingSpec.from_manifest(manifest)
        text = OnnxTextEncoder(directory / spec.text_encoder, directory / spec.tokenizer, spec.max_seq_length)
        if spec.index_space == "content":
            return cls(text)
        image = (OnnxImageEncoder(directory / spec.image_encoder, spec.image_size or 0)
                 if spec.image_encoder is not None else None)
        tower = directory / spec.item_tower if spec.item_tower is not None else None
        return cls(text, item_tower_path=tower, vocab=vocab, image_encoder=image, image_root=image_root)

    def embed(self, drafts: Sequence[ItemDraft], *, merchant_rows: np.ndarray, category_rows: np.ndarray,
              domains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index vectors float32 [n, D] in the candidate index's space, text vectors float32 [n, 384]).

        ``merchant_rows``/``category_rows`` are catalog rows (-1 = unknown merchant/category -> embedding index 0),
        ``domains`` are DOMAIN codes (tastebud.catalog.DOMAINS).

        Raises:
            BadRequestError: (field "image_uri") a draft's image is not a readable local image file.
        """
        n = len(drafts)
        for name, values in (("merchant_rows", merchant_rows), ("category_rows", category_rows),
                             ("domains", domains)):
            if np.shape(values) != (n,):
                raise ValueError(f"{name} must have one entry per draft ({n}), got shape {np.shape(values)}")
        text = self._text.encode([item_text(d.title, d.category, d.description) for d in drafts])
        if self._tower is None or self._vocab is None:  # content retrieval: the index holds text vectors
            return text.copy(), text
        image, has_image = self._images(drafts)
        inputs = item_features(
            self._vocab,
            item_idx=np.zeros(n, dtype=np.int64),  # no id embedding yet: the cold path feature dropout trained
            merchant_rows=merchant_rows,
            category_rows=category_rows,
            domains=domains,
            prices=np.asarray([d.price for d in drafts], dtype=np.float64),
            text=text,
            image=image,
            has_image=has_image,
        )
        (vectors,) = self._tower.run(None, {name: inputs[name] for name in self._tower_inputs})
        return np.ascontiguousarray(vectors, dtype=np.float32), text

    def _images(self, drafts: Sequence[ItemDraft]) -> tuple[np.ndarray, np.ndarray]:
        """Image features and has_image per draft. A version trained without images ignores image_uri."""
        image = np.zeros((len(drafts), self._image_dim), dtype=np.float32)
        has_image = np.zeros(len(drafts), dtype=bool)
        if self._image is None:
            return image, has_image
        rows = [i for i, d in enumerate(drafts) if d.image_uri and d.image_uri.strip()]
        if not rows:
            return image, has_image
        paths = [self._resolve(drafts[i].image_uri or "") for i in rows]
        try:
            image[rows] = self._image.encode(paths)
        except UnreadableImageError as error:
            raise BadRequestError(f"image_uri is not a readable image: {error}", field="image_uri") from error
        has_image[rows] = True
        return image, has_image

    def _resolve(self, uri: str) -> Path:
        text = uri.strip()
        if "://" in text:  # nothing is fetched over the network: a URL names no local file
            raise NotFoundError(f"image_uri {text!r}: no such local file (URLs are not fetched; give a path)",
                                field="image_uri")
        path = Path(text)
        if not path.is_absolute():
            if self._image_root is None:
                raise BadRequestError("a relative image_uri needs the server's data directory (not configured)",
                                      field="image_uri")
            path = self._image_root / path
        if not path.is_file():  # a reference to something that is not there: 404, like an unknown merchant
            raise NotFoundError(f"image_uri {text!r}: no such file", field="image_uri")
        return path
