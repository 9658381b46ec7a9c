"""Where trainings cache text and image vectors: beside the artifacts, or one shared directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tastebud_training.training_cache import CACHE_ENV, cache_directory


def test_the_cache_sits_beside_the_artifacts_unless_a_shared_one_is_named(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert cache_directory(tmp_path / "artifacts" / "cache") == tmp_path / "artifacts" / "cache"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "shared"))
    assert cache_directory(tmp_path / "artifacts" / "cache") == tmp_path / "shared"


def test_the_suite_shares_one_cache_across_its_trainings(shared_embedding_cache: Path) -> None:
    assert cache_directory(Path("/nowhere")) == shared_embedding_cache
