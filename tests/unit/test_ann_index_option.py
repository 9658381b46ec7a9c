"""`TrainConfig.ann_index`: local `tastebud train` keeps ScaNN; "none" (the SageMaker job) serves exact search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tastebud.adapters.embedded.scann_index import BruteForceIndex
from tastebud.artifacts import Manifest
from tastebud.serving_version import load_index
from tastebud_training.train import TrainConfig


def test_local_training_builds_scann_and_the_option_is_checked() -> None:
    assert TrainConfig().ann_index == "scann"
    with pytest.raises(ValueError, match="ann_index"):
        TrainConfig(ann_index="faiss")


def test_a_version_without_an_ann_index_is_served_by_exact_search(tmp_path: Path) -> None:
    vectors = np.eye(4, dtype=np.float32)
    np.save(tmp_path / "index_vectors.npy", vectors)
    manifest = Manifest(version="v", model_version="m", index_version="idx-1", feature_version="f", created_at=0.0,
                        retrieval={"kind": "two_tower", "index": "none"}, ranker={}, data={}, files={})
    index = load_index(manifest, tmp_path)
    assert isinstance(index, BruteForceIndex) and index.version == "idx-1"
    rows, _ = index.search(vectors[2], 1)
    assert rows.tolist() == [2]
