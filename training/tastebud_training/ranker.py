"""The re-ranker: XGBoost learning-to-rank on cross features, exported to ONNX for serving.

Its training groups (``ranker_examples``) are built with the serving code on a snapshot taken at the start of the
label window, so features are exactly what serving computes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import xgboost as xgb

from tastebud.features.ranker_prior import MANIFEST_KEY as PRIOR_KEY
from tastebud.features.ranker_prior import RankerPrior
from tastebud.features.schema import FEATURE_NAMES
from tastebud_training.ranker_examples import RankerExamples

ONNX_OPSET = 15  # onnxmltools' XGBoost converter is verified with opset <= 15 (DESIGN.md §6)
PARITY_TOLERANCE = 1e-4  # the largest difference between XGBoost and its ONNX export that is published
OTHER_SEEDS_KEY = "other_seeds"  # the manifest's ranker section: rankers of further seeds (TrainConfig.ranker_seeds)


# 0: trees alone (the ranker before issue 22); chosen on the validation users. Not 10: on the simulator it won on
# validation (NDCG@10 0.519 vs 0.502) but not on test (0.2887 vs 0.2893 without a prior), and the wider score spread
# it brings made the fairness stage's boosts and penalties (in units of that spread) cost 2.8% NDCG@10, not 1.0%.
PRIOR_WEIGHTS = (0.0, 1.0, 3.0)
VALID_USER_SHARE = 0.1


def _validation_groups(examples: RankerExamples, rng: np.random.Generator) -> np.ndarray:
    """The groups of a random tenth of the users: a user's requests share their history, so a split by group lets
    early stopping see the training users again (an optimistic stop)."""
    groups = np.unique(examples.qid)
    users = examples.group_users
    if users.size != groups.size or np.unique(users).size < 10:  # examples built without users: split by group
        return rng.choice(groups, max(1, groups.size // 10), replace=False)
    distinct = np.unique(users)
    held_out = rng.choice(distinct, max(1, round(distinct.size * VALID_USER_SHARE)), replace=False)
    return groups[np.isin(users, held_out)]


def train_ranker(examples: RankerExamples, *, seed: int = 0, n_estimators: int = 300,
                 half_life_days: float | None = None,
                 prior_weights: tuple[float, ...] = PRIOR_WEIGHTS) -> tuple[xgb.XGBRanker, dict]:
    """Fit a LambdaMART ranker, early-stopped on NDCG@10 of a held-out tenth of the users.

    With ``half_life_days``, each weight of ``prior_weights`` is tried as the trees' starting point (XGBoost
    ``base_margin`` = weight × the time-decayed "buy again" prior, tastebud.features.ranker_prior) and the weight with
    the best validation NDCG@10 is kept: the trees learn corrections to "buy again" only where that helps. The chosen
    prior is in ``info["prior"]`` (serving adds it to the trees' score).
    """
    if examples.n_groups < 10:
        raise ValueError(
            f"only {examples.n_groups} ranker groups with a positive in the label window; the data needs more "
            "interactions after the feature cut-off to train a re-ranker"
        )
    groups = np.unique(examples.qid)
    rng = np.random.default_rng(seed)
    is_valid = np.isin(examples.qid, _validation_groups(examples, rng))
    train, valid = ~is_valid, is_valid
    weights = prior_weights if half_life_days is not None else (0.0,)
    tried: dict[str, float | None] = {}
    best: tuple[float, float, xgb.XGBRanker] | None = None
    for weight in weights:
        prior = (RankerPrior(half_life_days, weight).scores(examples.features) if half_life_days and weight
                 else np.zeros(examples.labels.size, np.float32))
        model = xgb.XGBRanker(
            objective="rank:ndcg",
            n_estimators=n_estimators,
            learning_rate=0.08,
            max_depth=6,
            min_child_weight=2.0,
            subsample=0.8,
            colsample_bytree=0.9,
            tree_method="hist",
            eval_metric="ndcg@10",
            early_stopping_rounds=30,
            random_state=seed,
            n_jobs=2,
        )
        model.fit(examples.features[train], examples.labels[train], qid=examples.qid[train],
                  base_margin=prior[train], eval_set=[(examples.features[valid], examples.labels[valid])],
                  eval_qid=[examples.qid[valid]], base_margin_eval_set=[prior[valid]], verbose=False)
        history = model.evals_result().get("validation_0", {}).get("ndcg@10", [])
        score = float(max(history)) if history else float("-inf")
        tried[f"{weight:g}"] = score if history else None
        if best is None or score > best[0]:
            best = (score, weight, model)
    assert best is not None
    score, weight, model = best
    info: dict[str, Any] = {
        "best_iteration": int(model.best_iteration), "valid_ndcg@10": score if np.isfinite(score) else None,
        "train_rows": int(train.sum()), "groups": int(groups.size),
        "valid_groups": int(np.unique(examples.qid[valid]).size), "prior_weights_valid_ndcg@10": tried}
    if half_life_days is not None:
        info[PRIOR_KEY] = RankerPrior(half_life_days, weight).to_manifest()
    return model, info


def fit_rankers(examples: RankerExamples, *, seed: int, n_seeds: int, half_life_days: float | None, out: Path,
                say: Callable[[str], None]) -> dict[str, Any]:
    """Fit the served ranker and export it to ``out`` (ranker.onnx, parity-checked, and ranker.xgb.json), with
    the rankers of further seeds (``n_seeds`` in all); returns the manifest's ranker info."""
    model, ranker_info = train_ranker(examples, seed=seed, half_life_days=half_life_days)
    if "prior" in ranker_info:
        say(f"ranker prior weight {ranker_info['prior']['weight']:g} (validation NDCG@10 by weight: "
            f"{ranker_info['prior_weights_valid_ndcg@10']})")
    export_onnx(model, out / "ranker.onnx")
    model.save_model(out / "ranker.xgb.json")
    sample = examples.features[: min(len(examples.features), 20_000)]
    parity = onnx_parity(model, out / "ranker.onnx", sample)
    if parity > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX ranker differs from XGBoost by {parity:.2e} (> {PARITY_TOLERANCE}); not publishing")
    # Gain is one number per feature for a tree booster (lists are for multi-output linear boosters only).
    importance = {k: float(cast(float, v)) for k, v in model.get_booster().get_score(importance_type="gain").items()}
    ranker_info.update(onnx_parity_max_abs=parity, importance={
        FEATURE_NAMES[int(k[1:])]: round(v, 3) for k, v in importance.items() if k.startswith("f")
    } or {k: round(v, 3) for k, v in importance.items()})
    ranker_info[OTHER_SEEDS_KEY] = _other_seed_rankers(examples, range(seed + 1, seed + n_seeds), half_life_days, out,
                                                       sample, say)
    return ranker_info


def _other_seed_rankers(examples: RankerExamples, seeds: range, half_life: float | None, out: Path,
                        sample: np.ndarray, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Rankers with the further ``seeds`` on the same examples, each exported beside the served one with its own
    prior: the seed-to-seed spread of an evaluation (ranker.onnx is the first seed)."""
    others = []
    for seed in seeds:
        model, info = train_ranker(examples, seed=seed, half_life_days=half_life)
        name = f"ranker.seed{seed}.onnx"
        export_onnx(model, out / name)
        parity = onnx_parity(model, out / name, sample)
        if parity > PARITY_TOLERANCE:
            raise RuntimeError(f"ONNX ranker (seed {seed}) differs from XGBoost by {parity:.2e}; not publishing")
        others.append({"seed": seed, "file": name, "best_iteration": info["best_iteration"],
                       **({PRIOR_KEY: info[PRIOR_KEY]} if PRIOR_KEY in info else {})})
        say(f"ranker seed {seed}: {info['best_iteration'] + 1} trees")
    return others


def export_onnx(model: xgb.XGBRanker, path: Path) -> None:
    """Export through a regressor: onnxmltools has no ranker converter and mis-converts a ranker's booster.

    A ranker's margin is the sum of its trees plus base_score, which is exactly what a ``reg:squarederror``
    regressor predicts, so we re-label the saved model as a regressor and convert that (DESIGN.md §6).
    """
    from onnxmltools.convert import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    booster = model.get_booster()
    n_trees = model.best_iteration + 1
    raw = json.loads(booster.save_raw("json").decode())
    raw["learner"]["objective"] = {"name": "reg:squarederror", "reg_loss_param": {"scale_pos_weight": "1"}}
    trees = raw["learner"]["gradient_booster"]["model"]
    trees["trees"] = trees["trees"][:n_trees]
    trees["tree_info"] = trees["tree_info"][:n_trees]
    trees["iteration_indptr"] = trees["iteration_indptr"][: n_trees + 1]
    trees["gbtree_model_param"]["num_trees"] = str(n_trees)
    regressor = xgb.XGBRegressor()
    regressor.load_model(bytearray(json.dumps(raw).encode()))
    onnx_model = convert_xgboost(regressor, initial_types=[("features", FloatTensorType([None, len(FEATURE_NAMES)]))],
                                 target_opset=ONNX_OPSET)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(onnx_model.SerializeToString())
    tmp.replace(path)


def ranker_margin(model: xgb.XGBRanker, features: np.ndarray) -> np.ndarray:
    """XGBoost's own scores for the exported trees (the reference of the ONNX parity check)."""
    return model.predict(features, output_margin=True, iteration_range=(0, model.best_iteration + 1))


def onnx_parity(model: xgb.XGBRanker, onnx_path: Path, features: np.ndarray) -> float:
    """Max absolute difference between XGBoost and the ONNX export on ``features``."""
    from tastebud.adapters.embedded.onnx_ranker import OnnxRanker

    onnx_scores = OnnxRanker(onnx_path, "parity", n_features=features.shape[1]).score(features)
    return float(np.max(np.abs(onnx_scores - ranker_margin(model, features)))) if features.size else 0.0


