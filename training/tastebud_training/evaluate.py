"""`tastebud evaluate`: the default temporal split of DESIGN.md §3, Tastebud against baselines on the same users.

Split: a global time cutoff at the 90th percentile of interaction timestamps. Test = positives after the
cutoff of users with at least one positive before it. Models are trained on the data before the cutoff
only (cached under ARTIFACTS/evaluation/<data>-<cutoff>), so nothing after the cutoff leaks into them.
Each test user is served at the time of their first test positive. Seen items stay in the lists and in
the truth unless ``exclude_seen`` (food is re-ordered).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tastebud.artifacts import CURRENT
from tastebud.composition.local import RankingStages, load_stages
from tastebud.features.schema import FEATURE_VERSION
from tastebud.features.two_tower import TWO_TOWER_FEATURE_VERSION
from tastebud.pipeline.stages.fairness import FairnessDiversity
from tastebud.settings import ServingKnobs
from tastebud_training.baselines import EASE_DEFAULT_L2
from tastebud_training.data import Dataset
from tastebud_training.evaluation_lists import (
    Contenders,
    HalfLifeChoice,
    baselines,
    other_seed_rerankers,
    ranked_lists,
    retrieval_contenders,
)
from tastebud_training.exposure import EXPOSURE_K, exposure_share
from tastebud_training.metrics import KS, paired_bootstrap, per_user, summarise
from tastebud_training.protocols import positives_with_rows, split_positives
from tastebud_training.train import TrainConfig, data_fingerprint, train
from tastebud_training.training_cache import cache_directory

CUTOFF_QUANTILE = 0.9
# The baselines every model's interval is taken against: the stronger of them on NDCG@10 (issue 22).
BUY_AGAIN_BASELINES = ("personal_history", "decayed_history")
HISTORY_BUCKETS = ((1, 1, "1"), (2, 4, "2-4"), (5, None, "5+"))  # baskets before the cutoff
# The exposure floor the fairness audit checks when serving sets none: a fifth of the top 20 for emerging merchants.
AUDIT_EXPOSURE_FLOOR = 0.2


@dataclass(frozen=True)
class TestSet:
    cutoff: float
    user_ids: list[str]
    request_ts: np.ndarray
    truth: list[set[int]]
    seen: list[set[int]]
    baskets: np.ndarray  # the user's baskets (sessions) before the cutoff
    protocol: str = "window"


def temporal_split(dataset: Dataset, catalog_ids: np.ndarray, *, exclude_seen: bool,
                   max_users: int | None, seed: int, protocol: str = "window") -> TestSet:
    interactions = dataset.interactions
    cutoff = float(np.quantile(interactions["ts"].to_numpy(), CUTOFF_QUANTILE))
    seen_by_user, truth_by_user, first_ts, baskets = split_positives(
        positives_with_rows(interactions, catalog_ids), cutoff, protocol)
    user_ids = sorted(truth_by_user.index)
    if exclude_seen:
        user_ids = [u for u in user_ids if truth_by_user[u] - seen_by_user[u]]
    if max_users is not None and len(user_ids) > max_users:
        rng = np.random.default_rng(seed)
        user_ids = sorted(rng.choice(np.asarray(user_ids, dtype=object), max_users, replace=False).tolist())
    truth = [truth_by_user[u] - seen_by_user[u] if exclude_seen else truth_by_user[u] for u in user_ids]
    return TestSet(cutoff=cutoff, user_ids=user_ids, request_ts=first_ts.reindex(user_ids).to_numpy(dtype=float),
                   truth=truth, seen=[seen_by_user[u] for u in user_ids],
                   baskets=baskets.reindex(user_ids).to_numpy(dtype=np.int64), protocol=protocol)


def evaluation_models(dataset: Dataset, artifacts: Path, cutoff: float, config: TrainConfig) -> RankingStages:
    """Models trained on the data before ``cutoff``; cached per data fingerprint, cutoff and training config."""
    settings = replace(config, progress=True)  # progress output does not change a model
    # The code is part of the key: a change to how examples or features are built must retrain, not reuse.
    config_key = hashlib.sha256(f"{settings!r}|{FEATURE_VERSION}|{TWO_TOWER_FEATURE_VERSION}|{_code_digest()}"
                                .encode()).hexdigest()
    directory = artifacts / "evaluation" / f"{data_fingerprint(dataset)}-{int(cutoff)}-{config_key[:8]}"
    if not (directory / CURRENT).is_file():
        train(dataset, directory, config, as_of=cutoff, cache_dir=cache_directory(artifacts / "cache"))
    return load_stages(directory, config.knobs)


def _code_digest() -> str:
    """Digest of the serving and training packages' sources (what a trained model depends on)."""
    import tastebud
    import tastebud_training

    digest = hashlib.sha256()
    for package in (tastebud, tastebud_training):
        root = Path(str(package.__file__)).parent
        for source in sorted(root.rglob("*.py")):
            digest.update(source.relative_to(root).as_posix().encode())
            digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def fairness_audit(models: dict[str, dict[str, float]], floor: float, knobs: ServingKnobs) -> dict[str, Any]:
    """Exposure of emerging merchants in the top 20 against the floor, and the NDCG@10 each fairness step costs."""
    share = f"exposure@{EXPOSURE_K}"
    plain = models["tastebud_no_fairness"]["ndcg@10"]

    def cost(name: str) -> float:
        return (plain - models[name]["ndcg@10"]) / plain if plain > 0 else 0.0

    enforced = "tastebud_exposure_floor" if "tastebud_exposure_floor" in models else "tastebud"
    return {"floor": floor, "k": EXPOSURE_K, "new_merchant_days": knobs.new_merchant_days,
            "emerging_popularity_pct": knobs.emerging_popularity_pct,
            "shares": {name: scores[share] for name, scores in models.items()},
            "enforced_by": enforced, "floor_met": models[enforced][share] >= floor - 1e-9,
            "ndcg@10_cost_of_fairness_stage": cost("tastebud"), "ndcg@10_cost_with_floor": cost(enforced)}


def quality_breakdown(lists: dict[str, list[np.ndarray]], models: dict[str, dict[str, float]], test: TestSet, *,
                      seed: int) -> dict[str, Any]:
    """Each model's NDCG@10 / Recall@20 on repeat items (truth ∩ the user's history) and on explore items (the
    rest), each over the users who have any; by history length (baskets before the cutoff); and relative to the
    stronger "buy again" baseline with a paired-bootstrap 95% interval."""
    parts = {"repeat": [t & s for t, s in zip(test.truth, test.seen, strict=True)],
             "explore": [t - s for t, s in zip(test.truth, test.seen, strict=True)]}
    breakdown: dict[str, dict[str, float]] = {name: {} for name in lists}
    for part, truth in parts.items():
        users = [i for i, t in enumerate(truth) if t]
        for name, ranked in lists.items():
            for metric, k in (("ndcg", 10), ("recall", 20)):
                scores = per_user([ranked[i] for i in users], [truth[i] for i in users], metric, k)
                breakdown[name][f"{part}_{metric}@{k}"] = float(scores.mean()) if users else float("nan")
    buckets: dict[str, dict[str, Any]] = {}
    for low, high, label in HISTORY_BUCKETS:
        users = [i for i, n in enumerate(test.baskets) if n >= low and (high is None or n <= high)]
        buckets[label] = {"users": len(users), "models": {
            name: {f"{metric}@{k}": float(per_user([ranked[i] for i in users], [test.truth[i] for i in users],
                                                   metric, k).mean()) if users else float("nan")
                   for metric, k in (("ndcg", 10), ("recall", 20))} for name, ranked in lists.items()}}
    reference = max((n for n in BUY_AGAIN_BASELINES if n in models), key=lambda n: models[n]["ndcg@10"])
    intervals = {name: {f"{metric}@{k}": paired_bootstrap(per_user(ranked, test.truth, metric, k),
                                                          per_user(lists[reference], test.truth, metric, k),
                                                          seed=seed)
                        for metric, k in (("ndcg", 10), ("recall", 20))}
                 for name, ranked in lists.items() if name != reference}
    return {"breakdown": breakdown, "history_buckets": buckets,
            "intervals": {"reference": reference, "confidence": 0.95, "models": intervals}}


def seed_summary(lists: dict[str, list[np.ndarray]], names: list[str], test: TestSet, reference: str, *,
                 seed: int) -> dict[str, Any]:
    """The full pipeline under each ranker seed: NDCG@10 and Recall@20 per seed, their mean and spread, and the
    mean's paired-bootstrap interval against the reference (each user's score averaged over the seeds)."""
    summary: dict[str, Any] = {"models": names, "reference": reference}
    for metric, k in (("ndcg", 10), ("recall", 20)):
        per_seed = np.stack([per_user(lists[name], test.truth, metric, k) for name in names])
        means = per_seed.mean(axis=1)
        summary[f"{metric}@{k}"] = {
            "per_seed": [float(m) for m in means], "mean": float(means.mean()), "sd": float(means.std(ddof=1)),
            "vs_reference": paired_bootstrap(per_seed.mean(axis=0), per_user(lists[reference], test.truth, metric, k),
                                             seed=seed)}
    return summary


def cold_items(dataset: Dataset, catalog_ids: np.ndarray, cutoff: float) -> set[int]:
    """Rows of items whose first interaction of any kind is after the cutoff (no id signal before it)."""
    first_seen = dataset.interactions.groupby("item_id")["ts"].min()
    cold_ids = first_seen[first_seen >= cutoff].index
    return set(pd.Index(catalog_ids).get_indexer(cold_ids).tolist()) - {-1}


def evaluate(dataset: Dataset, artifacts: Path, *, exclude_seen: bool = False, max_users: int | None = 3000,
             config: TrainConfig | None = None, ablations: Sequence[str] = (),
             cold_start: bool = False, ease_l2: float = EASE_DEFAULT_L2,
             exposure_floor: float | None = None, protocol: str = "window") -> dict[str, Any]:
    """Return ``{"split": {...}, "models": {name: {"recall@K": ..., "ndcg@K": ..., "cold_recall@K": ...,
    "exposure@20": ...}}, "fairness": {...}}``.

    ``ease_l2`` is EASE's λ (baselines.EASEBaseline). ``exposure_floor``: the share of the top 20 the fairness
    audit holds emerging merchants to (default: the serving knobs' floor, else ``AUDIT_EXPOSURE_FLOOR``); when it
    differs from the knobs' floor, the pipeline is also evaluated with it enforced (``tastebud_exposure_floor``).
    """
    config = config or TrainConfig()
    probe = dataset.items["item_id"].to_numpy(dtype=str)
    test = temporal_split(dataset, probe, exclude_seen=exclude_seen, max_users=max_users, seed=config.seed,
                          protocol=protocol)
    if not test.user_ids:
        raise ValueError("no test users: nobody has positives both before and after the 90th-percentile cutoff")
    stages = evaluation_models(dataset, artifacts, test.cutoff, config)
    if not np.array_equal(stages.catalog.item_ids, probe):
        raise RuntimeError("evaluation catalog rows differ from the data set's item order")
    knobs = config.knobs
    retrievers = retrieval_contenders(dataset, stages, config, ablations)
    recommenders, half_life = baselines(dataset, probe, stages, test.cutoff, protocol, seed=config.seed,
                                        ease_l2=ease_l2)
    floor, floored = _audit_floor(exposure_floor, stages, knobs)
    contenders = Contenders(stages, knobs, other_seed_rerankers(stages), floored, retrievers, recommenders)
    names = contenders.names
    lists = ranked_lists(contenders, test.user_ids, test.request_ts, test.seen, depth=max(KS),
                         exclude_seen=exclude_seen, progress=config.progress)
    models = summarise(lists, test.truth)
    for name in names:
        models[name][f"exposure@{EXPOSURE_K}"] = exposure_share(lists[name], test.request_ts, stages.catalog, knobs)
    cold = cold_items(dataset, probe, test.cutoff)
    with_cold = _add_cold_recall(models, lists, names, [t & cold for t in test.truth])
    extra: dict[str, Any] = {"fairness": fairness_audit(models, floor, knobs),
                             **quality_breakdown(lists, models, test, seed=config.seed)}
    if contenders.seed_rerankers:
        extra["ranker_seeds"] = seed_summary(lists, ["tastebud", *contenders.seed_rerankers], test,
                                             extra["intervals"]["reference"], seed=config.seed)
    if cold_start:
        from tastebud_training.cold_start import cold_start_study

        extra["cold_start"] = cold_start_study(dataset, stages.directory.parent.parent / "cold_start", test.cutoff,
                                               config, max_users=max_users or 3000,
                                               cache_dir=cache_directory(artifacts / "cache"))
    return {**extra, "split": _split_summary(test, stages, half_life, n_cold=len(cold), users_with_cold=with_cold,
                                             exclude_seen=exclude_seen, ease_l2=ease_l2), "models": models}


def _audit_floor(exposure_floor: float | None, stages: RankingStages,
                 knobs: ServingKnobs) -> tuple[float, FairnessDiversity | None]:
    """The exposure floor the fairness audit checks, and a fairness stage that enforces it when the serving
    knobs' floor differs (None: the pipeline already does)."""
    floor = exposure_floor if exposure_floor is not None else (knobs.exposure_floor or AUDIT_EXPOSURE_FLOOR)
    floored = (FairnessDiversity(stages.catalog, replace(knobs, exposure_floor=floor))
               if floor != knobs.exposure_floor else None)
    return floor, floored


def _split_summary(test: TestSet, stages: RankingStages, half_life: HalfLifeChoice, *, n_cold: int,
                   users_with_cold: int, exclude_seen: bool, ease_l2: float) -> dict[str, Any]:
    """The report's "split" section: how the test set was made, and what it holds."""
    return {
        "kind": "global-temporal",
        "protocol": test.protocol,
        "decayed_half_life_days": half_life.days,
        "half_life_ndcg@10_on_training_period": half_life.scores,
        "cutoff_quantile": CUTOFF_QUANTILE,
        "cutoff": pd.Timestamp(test.cutoff, unit="s", tz="UTC").isoformat(),
        "test_users": len(test.user_ids),
        "test_positives": int(sum(len(t) for t in test.truth)),
        "cold_items": n_cold,
        "users_with_cold_test_items": users_with_cold,
        "exclude_seen": exclude_seen,
        "train_model_version": stages.manifest.model_version,
        "retrieval": stages.manifest.retrieval.get("kind"),
        "ease_l2": ease_l2,
    }


def _add_cold_recall(models: dict[str, dict[str, float]], lists: dict[str, list[np.ndarray]], names: list[str],
                     cold_truth: list[set[int]]) -> int:
    """Add each model's recall@50/100/200 on cold test items (``cold_recall@K``), over the users who have any;
    returns how many do."""
    with_cold = [i for i, t in enumerate(cold_truth) if t]
    if with_cold:
        cold_scores = summarise({n: [lists[n][i] for i in with_cold] for n in names},
                                [cold_truth[i] for i in with_cold], ks=(50, 100, 200))
        for name in names:
            models[name].update({f"cold_{metric}": v for metric, v in cold_scores[name].items()
                                 if metric.startswith("recall")})
    return len(with_cold)
