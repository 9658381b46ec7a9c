"""The leave-items-out cold-start study runs end to end and reports both models on the same users."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tastebud_training.cold_start import cold_start_study
from tastebud_training.evaluate import CUTOFF_QUANTILE
from tastebud_training.evaluation_report import render_markdown

from factories import tiny_config

pytestmark = pytest.mark.slow


def test_cold_start_study_reports_cold_and_warm_recall(tiny_dataset, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cutoff = float(np.quantile(tiny_dataset.interactions["ts"].to_numpy(), CUTOFF_QUANTILE))
    study = cold_start_study(tiny_dataset, tmp_path, cutoff, tiny_config(), max_users=50)
    assert study["held_out_items"] >= 1 and study["test_users"] > 0
    for name in ("with_feature_dropout", "without_feature_dropout"):
        row = study[name]
        assert row["users_with_cold_items"] >= 1
        assert all(0.0 <= row[f"{kind}_recall@{k}"] <= 1.0 for kind in ("cold", "warm") for k in (50, 100, 200))
    report = {"split": {"kind": "global-temporal", "cutoff_quantile": 0.9, "cutoff": "c", "test_users": 1,
                        "test_positives": 1, "exclude_seen": False}, "models": {}, "cold_start": study}
    assert "without_feature_dropout" in render_markdown(report, "tastebud evaluate --cold-start")
