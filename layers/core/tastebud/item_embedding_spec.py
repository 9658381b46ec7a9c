"""What a version needs to embed a new item in process: the ``item_embedding`` section of manifest.retrieval.

Training writes it (tastebud_training.item_embedding), serving reads it (OnnxItemEmbedder). Example::

    {"index_space": "two_tower",
     "text_encoder": {"file": "text_encoder.onnx", "tokenizer": "tokenizer.json", "model": "all-MiniLM-L6-v2",
                      "max_seq_length": 128, "dimension": 384, "parity_max_abs": 1.5e-07},
     "item_tower": {"file": "item_tower.onnx", "parity_max_abs": 6e-08},
     "image_encoder": {"file": "image_encoder.onnx", "size": 96, "weights": "random-init-7",
                       "parity_max_abs": 9e-08}}

``item_tower`` is absent for the "content" retrieval kind (the index holds the text vectors themselves);
``image_encoder`` is absent when the version was trained without item images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tastebud.artifacts import Manifest
from tastebud.errors import ArtifactMismatchError

SECTION = "item_embedding"
INDEX_SPACES = ("two_tower", "content")


@dataclass(frozen=True)
class ItemEmbeddingSpec:
    """File names and settings of the item-embedding models in one version directory."""

    index_space: str
    text_encoder: str
    tokenizer: str
    max_seq_length: int
    item_tower: str | None = None
    image_encoder: str | None = None
    image_size: int | None = None

    def __post_init__(self) -> None:
        if self.index_space not in INDEX_SPACES:
            raise ArtifactMismatchError(f"unknown item embedding space {self.index_space!r}")
        if self.index_space == "two_tower" and self.item_tower is None:
            raise ArtifactMismatchError("a two-tower version must ship item_tower.onnx to embed new items")
        if self.image_encoder is not None and not self.image_size:
            raise ArtifactMismatchError("image_encoder without an input size")

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> ItemEmbeddingSpec:
        """Read the section; ArtifactMismatchError when the version was built without it (older training)."""
        section: dict[str, Any] | None = manifest.retrieval.get(SECTION)
        if not section:
            raise ArtifactMismatchError(
                f"artifacts {manifest.version} cannot embed new items (no retrieval.{SECTION} in the manifest); "
                "retrain with this version of `tastebud train`")
        return cls.from_section(section, f"artifacts {manifest.version}")

    @classmethod
    def from_section(cls, section: dict[str, Any], where: str = "manifest") -> ItemEmbeddingSpec:
        """Parse the section itself (training validates what it writes with this)."""
        try:
            text = section["text_encoder"]
            tower = section.get("item_tower")
            image = section.get("image_encoder")
            return cls(index_space=section["index_space"], text_encoder=text["file"], tokenizer=text["tokenizer"],
                       max_seq_length=int(text["max_seq_length"]), item_tower=tower["file"] if tower else None,
                       image_encoder=image["file"] if image else None,
                       image_size=int(image["size"]) if image else None)
        except (KeyError, TypeError, ValueError) as error:
            raise ArtifactMismatchError(f"{where}: bad retrieval.{SECTION}: {error!r}") from error
