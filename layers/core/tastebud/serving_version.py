"""One artifact version loaded for serving: model, index, vocabularies and catalog from ONE manifest, never mixed."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tastebud.adapters.embedded.content_encoder import ContentUserEncoder
from tastebud.adapters.embedded.onnx_ranker import OnnxRanker
from tastebud.adapters.embedded.onnx_user_encoder import OnnxUserEncoder
from tastebud.adapters.embedded.scann_index import BruteForceIndex, ScannIndex
from tastebud.adapters.embedded.user_table import UserTable
from tastebud.artifacts import USER_TOWER, Manifest
from tastebud.catalog import Catalog
from tastebud.errors import ArtifactMismatchError, ArtifactsMissingError
from tastebud.features.ranker_prior import with_prior
from tastebud.features.schema import FEATURE_NAMES, FEATURE_VERSION
from tastebud.features.two_tower import TWO_TOWER_FEATURE_VERSION, TwoTowerVocab
from tastebud.ports import CandidateIndex, ItemEmbedder, Ranker, UserEncoder
from tastebud.recommendation import Versions

logger = logging.getLogger(__name__)
T = TypeVar("T")


def check_manifest(manifest: Manifest) -> None:
    """Refuse artifacts built for other features than this code computes (training/serving skew)."""
    if manifest.feature_version != FEATURE_VERSION:
        raise ArtifactMismatchError(
            f"artifacts {manifest.version} use ranker features {manifest.feature_version!r}, this code computes "
            f"{FEATURE_VERSION!r}; retrain with `tastebud train`"
        )
    if tuple(manifest.ranker.get("features", ())) != FEATURE_NAMES:
        raise ArtifactMismatchError(f"artifacts {manifest.version}: ranker feature list differs from this code's")
    kind = manifest.retrieval.get("kind")
    if kind == "two_tower" and manifest.retrieval.get("feature_version") != TWO_TOWER_FEATURE_VERSION:
        raise ArtifactMismatchError(
            f"artifacts {manifest.version}: two-tower features {manifest.retrieval.get('feature_version')!r}, "
            f"this code computes {TWO_TOWER_FEATURE_VERSION!r}; retrain with `tastebud train`"
        )
    if kind not in ("two_tower", "content"):
        raise ArtifactMismatchError(f"artifacts {manifest.version}: unknown retrieval model kind {kind!r}")


def load_index(manifest: Manifest, directory: Path) -> CandidateIndex:
    """The version's ScaNN index, or exact search over index_vectors.npy for a version trained without one
    (``retrieval.index == "none"``: the SageMaker job's versions, whose serving index is OpenSearch)."""
    if manifest.retrieval.get("index") == "none":
        return BruteForceIndex(np.load(directory / "index_vectors.npy"), manifest.index_version)
    return ScannIndex.load(directory / "index", manifest.index_version)


def load_encoder(manifest: Manifest, directory: Path) -> UserEncoder:
    """The user encoder the manifest names: the two-tower user tower (ONNX; int8 when training found it retrieves
    what float32 does, ``retrieval.user_tower``; versions from before that serve float32) or the content baseline."""
    text_vectors = np.load(directory / "text_vectors.npy")
    if manifest.retrieval.get("kind") == "two_tower":
        tower = manifest.retrieval.get("user_tower") or USER_TOWER
        return OnnxUserEncoder(directory / tower, TwoTowerVocab.load(directory, text_vectors))
    return ContentUserEncoder(text_vectors, np.load(directory / "preference_vectors.npy"))


def load_item_embedder(manifest: Manifest, directory: Path, image_root: Path | None) -> ItemEmbedder | None:
    """The in-process item embedder of this version, or None for versions trained before it existed."""
    from tastebud.adapters.embedded.onnx_item_embedder import OnnxItemEmbedder

    if not (directory / "text_encoder.onnx").is_file():
        logger.warning("version %s has no text_encoder.onnx: new items cannot be embedded until a retrain",
                       manifest.version)
        return None
    vocab = TwoTowerVocab.load(directory, np.load(directory / "text_vectors.npy", mmap_mode="r")) \
        if manifest.retrieval.get("kind") == "two_tower" else None
    return OnnxItemEmbedder.load(directory, manifest, vocab, image_root=image_root)


@dataclass(frozen=True)
class ServingVersion:
    """Everything one request needs that comes from artifacts, loaded once and never changed.

    ``received_before``: live events and item upserts received before this time are already in the version's
    data (epoch seconds when training read the data directory); later ones are applied on top of it.
    """

    manifest: Manifest
    directory: Path
    catalog: Catalog
    users: UserTable
    encoder: UserEncoder
    index: CandidateIndex
    ranker: Ranker
    embedder: ItemEmbedder | None
    stock_snapshot: dict[str, Any]

    @property
    def name(self) -> str:
        return self.manifest.version

    @property
    def received_before(self) -> float:
        return float(self.manifest.data.get("read_at", self.manifest.created_at))

    @property
    def versions(self) -> Versions:
        m = self.manifest
        return Versions(m.model_version, m.index_version, m.feature_version)

    @property
    def text_dim(self) -> int:
        return int(self.manifest.retrieval.get("text_dim", 384))


def _loaded(what: str, directory: Path, load: Callable[[], T]) -> T:
    """Run one loader; any failure becomes ArtifactMismatchError naming the version directory and the part."""
    try:
        return load()
    except (ArtifactMismatchError, ArtifactsMissingError):
        raise
    except Exception as exc:  # ONNX Runtime, ScaNN and numpy raise their own types for a corrupt file
        raise ArtifactMismatchError(f"{directory}: cannot load {what}: {type(exc).__name__}: {exc}") from exc


def load_version(directory: Path, *, image_root: Path | None = None, with_embedder: bool = True) -> ServingVersion:
    """Load and check one version directory; raises ArtifactMismatchError/ArtifactsMissingError when unusable."""
    manifest = Manifest.read(directory)
    check_manifest(manifest)
    snapshot_file = directory / "stock_snapshot.json"
    return ServingVersion(
        manifest=manifest,
        directory=directory,
        catalog=_loaded("catalog.npz", directory, lambda: Catalog.load(directory / "catalog.npz")),
        users=_loaded("users.npz", directory, lambda: UserTable.load(directory / "users.npz")),
        encoder=_loaded("the user encoder", directory, lambda: load_encoder(manifest, directory)),
        index=_loaded("index/", directory, lambda: load_index(manifest, directory)),
        ranker=_loaded("ranker.onnx", directory, lambda: with_prior(
            OnnxRanker(directory / "ranker.onnx", manifest.model_version, n_features=len(FEATURE_NAMES)),
            manifest.ranker)),
        embedder=_loaded("the item embedder", directory, lambda: load_item_embedder(manifest, directory, image_root))
        if with_embedder else None,
        stock_snapshot=json.loads(snapshot_file.read_text()) if snapshot_file.is_file() else {"out_of_stock": []},
    )
