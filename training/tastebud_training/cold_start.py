"""Cold-start study: do items that nobody has interacted with yet reach users, through the path serving gives them?

The temporal split has few items that are new after the cutoff (in the demo data, a few dozen), so this study makes
cold items on purpose, the standard item-cold-start protocol: a seeded 10% of the items that test users engage with
after the cutoff are held out. They lose ALL their interactions before the cutoff AND leave the catalog the models
are trained on; they come back at the cutoff as items added through the API do (``PUT /v1/items``):
``tastebud.live.view.build_view`` appends them to the catalog with ``created_at`` = the cutoff (item age 0, so the
ranker's age features and the fairness stage's new-item boost see them as new), the version's item embedder
(text -> MiniLM ONNX, photo -> EfficientNet ONNX, then the item tower with the unknown item id) embeds them, and
they are searched in the fresh-items side index with its own quota, apart from the ANN index.

For each two-tower variant (``VARIANTS``: today's config and the item-id options of ``TwoTowerConfig``), the whole
pipeline (two-tower + XGBoost ranker) is trained on the reduced log with ``tastebud train``'s code, and each test
user is served at the time of their first test positive. Cold recall@K is over their test positives on held-out
items, warm recall@K over the others, on three lists:

* ``pipeline``: the ranked list of stages 1-3 (retrieve, re-rank, fairness), as a request gets it;
* ``candidates``: stage 1's candidates in retrieval order (ANN and fresh neighbours by score, then history,
  bought-together and popular items), plus ``*_in_candidates``: the share found anywhere in the candidate set;
* ``whole_catalog``: the earlier protocol, two-tower retrieval alone with exact search over all items (held-out
  items embedded the same way), no fresh quota.

``knob_sets`` (default ``KNOB_SETS``: the old fresh quota of 20) re-measures the pipeline and its candidates of each
variant with other serving knobs, on the same trained version.

``fresh_chance`` is a control for the first variant: the same pipeline with random vectors in the fresh index. The
fresh quota hands out ``fresh_candidates`` places among few fresh items, so part of the cold recall comes from the
quota alone; the control measures that part.

The parts: the held-out split (``cold_start_split``), the trained version with the held-out items added back
(``cold_start_view``), and the recall of each list (``cold_start_recall``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tastebud.artifacts import CURRENT, LocalArtifactStore
from tastebud.serving_version import load_version
from tastebud_training.cold_start_recall import measure
from tastebud_training.cold_start_split import ColdStartSplit, cold_start_split
from tastebud_training.cold_start_view import fresh_view, with_random_fresh_vectors
from tastebud_training.data import Dataset
from tastebud_training.train import TrainConfig, data_fingerprint, log, train
from tastebud_training.training_cache import cache_directory

# "default" is the config as given; the others are TwoTowerConfig.ablation names.
VARIANTS = ("default", "item_id_scale_half", "item_id_dropout_50")
# Serving-knob alternatives measured on each variant's trained version (they act at serving only: no retraining).
KNOB_SETS: dict[str, dict[str, Any]] = {"fresh_candidates=20": {"fresh_candidates": 20}}  # the old default


def variant_config(config: TrainConfig, name: str) -> TrainConfig:
    two_tower = config.two_tower if name == "default" else config.two_tower.ablation(name)
    return replace(config, two_tower=two_tower)


def _trained_version(split: ColdStartSplit, directory: Path, cutoff: float, config: TrainConfig, cache: Path,
                     say: Callable[[str], None]) -> Path:
    """Train the pipeline on the reduced log into ``directory`` (reused when the same data and config are there)."""
    key = json.dumps({"data": data_fingerprint(split.reduced), "cutoff": cutoff, "config": repr(config)})
    stamp = directory / "study_key.json"
    if not (directory / CURRENT).is_file() or not stamp.is_file() or stamp.read_text() != key:
        if directory.exists():
            import shutil

            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        say(f"cold-start study: training the pipeline on the reduced log into {directory}")
        train(split.reduced, directory, config, as_of=cutoff, cache_dir=cache)
        stamp.write_text(key)
    return LocalArtifactStore(directory).current_dir()


def cold_start_study(dataset: Dataset, workdir: Path, cutoff: float, config: TrainConfig, max_users: int = 3000,
                     *, variants: Sequence[str] = VARIANTS, knob_sets: Mapping[str, dict[str, Any]] | None = None,
                     cache_dir: Path | None = None) -> dict[str, Any]:
    """Run the study (see the module docstring) for each variant; returns
    ``{"held_out_items", "test_users", "knobs", "variants": {name: {"two_tower": {...}, "pipeline": {...},
    "candidates": {...}, "whole_catalog": {...}, "knob_sets": {set: {"pipeline", "candidates"}}, ...}},
    "fresh_chance": {...}}``. A variant's trained version is reused from ``workdir/<variant>`` when it was trained
    on the same reduced data with the same config."""
    say = lambda m: log(m, config.progress)  # noqa: E731
    split = cold_start_split(dataset, cutoff, config.seed, max_users)
    cache = cache_dir or cache_directory(workdir / "cache")
    knobs = config.knobs
    results: dict[str, Any] = {"protocol": "fresh-path", "held_out_items": len(split.held_out),
                               "test_users": len(split.user_ids), "knobs": {
                                   "retrieve_k": knobs.retrieve_k, "fresh_candidates": knobs.fresh_candidates,
                                   "history_candidates": knobs.history_candidates,
                                   "popular_candidates": knobs.popular_candidates,
                                   "new_item_boost": knobs.new_item_boost, "new_item_days": knobs.new_item_days},
                               "variants": {}}
    for i, name in enumerate(variants):
        variant = variant_config(config, name)
        directory = _trained_version(split, workdir / name, cutoff, variant, cache, say)
        version = load_version(directory, image_root=Path(dataset.source))
        view = fresh_view(version, dataset, split.held_out, cutoff, knobs)
        two_tower = variant.two_tower
        row = measure(view, split, knobs, progress=config.progress, label=name)
        row["two_tower"] = {"feature_dropout": two_tower.feature_dropout, "item_id_dropout": two_tower.id_dropout,
                            "item_id_scale": two_tower.towers.item_id_scale}
        row["knob_sets"] = {}
        if i == 0:
            control = measure(with_random_fresh_vectors(view, knobs, config.seed), split, knobs,
                              progress=config.progress, label=f"{name} with random fresh vectors", whole_catalog=False)
            results["fresh_chance"] = {"variant": name, **control, "knob_sets": {}}
        for set_name, changes in (KNOB_SETS if knob_sets is None else knob_sets).items():
            other = replace(knobs, **changes)
            other_view = fresh_view(version, dataset, split.held_out, cutoff, other)
            row["knob_sets"][set_name] = {"knobs": changes, **measure(
                other_view, split, other, progress=config.progress, label=f"{name}, {set_name}",
                whole_catalog=False)}
            if i == 0:
                results["fresh_chance"]["knob_sets"][set_name] = {"knobs": changes, **measure(
                    with_random_fresh_vectors(other_view, other, config.seed), split, other,
                    progress=config.progress, label=f"{name}, {set_name}, random fresh vectors", whole_catalog=False)}
        results["variants"][name] = row
    return results
