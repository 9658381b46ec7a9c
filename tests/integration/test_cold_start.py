"""The leave-items-out cold-start study: held-out items come back only as fresh items, and it reports every list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tastebud.artifacts import LocalArtifactStore
from tastebud.serving_version import load_version
from tastebud_training.cold_start import cold_start_study
from tastebud_training.cold_start_recall import KS, LISTS
from tastebud_training.cold_start_split import cold_start_split
from tastebud_training.cold_start_view import fresh_view
from tastebud_training.evaluate import CUTOFF_QUANTILE
from tastebud_training.evaluation_report import render_markdown

from factories import version_config

pytestmark = pytest.mark.slow
VARIANT = "item_id_dropout_50_scale_half"


def test_held_out_items_leave_the_training_data(tiny_dataset) -> None:  # type: ignore[no-untyped-def]
    cutoff = float(np.quantile(tiny_dataset.interactions["ts"].to_numpy(), CUTOFF_QUANTILE))
    split = cold_start_split(tiny_dataset, cutoff, seed=7, max_users=50)
    assert split.held_out and split.user_ids
    assert not split.reduced.items["item_id"].isin(split.held_out).any()
    assert not split.reduced.interactions["item_id"].isin(split.held_out).any()
    assert (split.reduced.interactions["ts"] < cutoff).all()
    assert len(split.reduced.items) == len(tiny_dataset.items) - len(split.held_out)
    assert any(split.truth[u] & split.held_out for u in split.user_ids)


def test_cold_start_study_serves_held_out_items_through_the_fresh_index(tiny_dataset,  # type: ignore[no-untyped-def]
                                                                       tmp_path: Path) -> None:
    cutoff = float(np.quantile(tiny_dataset.interactions["ts"].to_numpy(), CUTOFF_QUANTILE))
    config = version_config()
    study = cold_start_study(tiny_dataset, tmp_path, cutoff, config, max_users=50, variants=(VARIANT,))
    split = cold_start_split(tiny_dataset, cutoff, config.seed, 50)
    assert study["held_out_items"] == len(split.held_out) and study["test_users"] == len(split.user_ids)

    # The trained version never saw the held-out items; the serving path adds them as new items at the cutoff.
    version = load_version(LocalArtifactStore(tmp_path / VARIANT).current_dir(), image_root=Path(tiny_dataset.source))
    assert version.manifest.retrieval["config"]["item_id_dropout"] == 0.5
    assert version.manifest.retrieval["config"]["item_id_scale"] == 0.5
    assert all(version.catalog.row_of(i) is None for i in split.held_out)
    view = fresh_view(version, tiny_dataset, split.held_out, cutoff, config.knobs)
    fresh_ids = {str(view.catalog.item_ids[r]) for r in view.fresh.rows.tolist()}
    assert fresh_ids == set(split.held_out)
    assert np.all(view.fresh.rows >= version.catalog.size)  # appended rows: not in the ANN index
    assert np.all(view.catalog.item_created_at[view.fresh.rows] == cutoff)  # item age 0 at the cutoff
    assert np.allclose(np.linalg.norm(view.fresh.vectors, axis=1), 1.0, atol=1e-4)  # the item tower's output

    row = study["variants"][VARIANT]
    assert row["fresh_items"] == len(split.held_out) and row["users_with_cold_items"] >= 1
    for name in LISTS:
        assert all(0.0 <= row[name][f"{kind}_recall@{k}"] <= 1.0 for kind in ("cold", "warm") for k in KS), name
    assert 0.0 <= row["candidates"]["cold_in_candidates"] <= 1.0
    assert study["fresh_chance"]["variant"] == VARIANT and "whole_catalog" not in study["fresh_chance"]
    knobbed = row["knob_sets"]["fresh_candidates=20"]
    assert knobbed["knobs"] == {"fresh_candidates": 20} and 0.0 <= knobbed["pipeline"]["cold_recall@100"] <= 1.0
    assert knobbed["candidates"]["cold_in_candidates"] <= row["candidates"]["cold_in_candidates"]  # a smaller quota

    report = {"split": {"kind": "global-temporal", "cutoff_quantile": 0.9, "cutoff": "c", "test_users": 1,
                        "test_positives": 1, "exclude_seen": False}, "models": {}, "cold_start": study}
    page = render_markdown(report, "tastebud evaluate --cold-start")
    assert f"| {VARIANT} | pipeline (ranked) |" in page and "random fresh vectors" in page
    assert f"| {VARIANT}, fresh_candidates=20 | candidates |" in page
