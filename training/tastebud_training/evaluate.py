"""`tastebud evaluate`: the default temporal split of DESIGN.md §3, Tastebud against baselines on the same users.

Split: a global time cutoff at the 90th percentile of interaction timestamps. Test = positives after the
cutoff of users with at least one positive before it. Models are trained on the data before the cutoff
only (cached under ARTIFACTS/evaluation/<data>-<cutoff>), so nothing after the cutoff leaks into them.
Each test user is served at the time of their first test positive. Seen items stay in the lists and in
the truth unless ``exclude_seen`` (food is re-ordered).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tastebud.artifacts import CURRENT
from tastebud.composition import RankingStages, load_stages
from tastebud.domain import SOURCE_ANN, Candidates, RequestContext
from tastebud.service import rank_candidates
from tastebud_training.baselines import IALSBaseline, PersonalHistoryBaseline, PopularityBaseline
from tastebud_training.data import POSITIVE_EVENTS, Dataset
from tastebud_training.metrics import KS, summarise
from tastebud_training.progress import track
from tastebud_training.train import TrainConfig, data_fingerprint, train

CUTOFF_QUANTILE = 0.9


@dataclass(frozen=True)
class TestSet:
    cutoff: float
    user_ids: list[str]
    request_ts: np.ndarray
    truth: list[set[int]]
    seen: list[set[int]]


def temporal_split(dataset: Dataset, catalog_ids: np.ndarray, *, exclude_seen: bool,
                   max_users: int | None, seed: int) -> TestSet:
    interactions = dataset.interactions
    cutoff = float(np.quantile(interactions["ts"].to_numpy(), CUTOFF_QUANTILE))
    pos = interactions[interactions["event_type"].isin(POSITIVE_EVENTS)]
    index = pd.Index(catalog_ids)
    pos = pos.assign(row=index.get_indexer(pos["item_id"].to_numpy()))
    before, after = pos[pos["ts"] < cutoff], pos[pos["ts"] >= cutoff]
    seen_by_user = before.groupby("user_id")["row"].agg(set)
    after = after[after["user_id"].isin(seen_by_user.index)]
    truth_by_user = after.groupby("user_id")["row"].agg(set)
    first_ts = after.groupby("user_id")["ts"].min()
    user_ids = sorted(truth_by_user.index)
    if exclude_seen:
        user_ids = [u for u in user_ids if truth_by_user[u] - seen_by_user[u]]
    if max_users is not None and len(user_ids) > max_users:
        rng = np.random.default_rng(seed)
        user_ids = sorted(rng.choice(np.asarray(user_ids, dtype=object), max_users, replace=False).tolist())
    truth = [truth_by_user[u] - seen_by_user[u] if exclude_seen else truth_by_user[u] for u in user_ids]
    return TestSet(cutoff=cutoff, user_ids=user_ids, request_ts=first_ts.reindex(user_ids).to_numpy(dtype=float),
                   truth=truth, seen=[seen_by_user[u] for u in user_ids])


def evaluation_models(dataset: Dataset, artifacts: Path, cutoff: float, config: TrainConfig) -> RankingStages:
    """Models trained on the data before ``cutoff``; cached per data fingerprint and cutoff."""
    directory = artifacts / "evaluation" / f"{data_fingerprint(dataset)}-{int(cutoff)}"
    if not (directory / CURRENT).is_file():
        train(dataset, directory, config, as_of=cutoff, cache_dir=artifacts / "cache")
    return load_stages(directory, config.knobs)


def _ann_order(candidates: Candidates) -> np.ndarray:
    """The content baseline: ANN neighbours by similarity, then the other sources in retrieval order."""
    is_ann = (candidates.sources & SOURCE_ANN) > 0
    scores = np.where(is_ann, candidates.retrieval_scores, -np.inf)
    return candidates.rows[np.argsort(-scores, kind="stable")]


def evaluate(dataset: Dataset, artifacts: Path, *, exclude_seen: bool = False, max_users: int | None = 3000,
             config: TrainConfig | None = None) -> dict[str, Any]:
    """Return ``{"split": {...}, "models": {name: {"recall@K": ..., "ndcg@K": ...}}}``."""
    config = config or TrainConfig()
    probe = dataset.items["item_id"].to_numpy(dtype=str)
    test = temporal_split(dataset, probe, exclude_seen=exclude_seen, max_users=max_users, seed=config.seed)
    if not test.user_ids:
        raise ValueError("no test users: nobody has positives both before and after the 90th-percentile cutoff")
    stages = evaluation_models(dataset, artifacts, test.cutoff, config)
    if not np.array_equal(stages.catalog.item_ids, probe):
        raise RuntimeError("evaluation catalog rows differ from the data set's item order")
    depth = max(KS)
    baselines = {
        "popularity": PopularityBaseline(stages.catalog),
        "personal_history": PersonalHistoryBaseline(stages.users, stages.catalog),
        "ials": IALSBaseline(stages.users, stages.catalog, seed=config.seed),
    }
    names = ["tastebud", "tastebud_no_fairness", "content_retrieval", *baselines]
    lists: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for user_id, ts, seen in track(list(zip(test.user_ids, test.request_ts, test.seen, strict=True)),
                                   "evaluating users", enabled=config.progress):
        user = stages.users.user(user_id)
        context = RequestContext(now=float(ts))
        drop = np.fromiter(seen, dtype=np.int64) if exclude_seen else np.zeros(0, np.int64)
        ranked, _ = rank_candidates(stages.retriever, stages.reranker, stages.fairness, user, context, depth, [])
        lists["tastebud"].append(ranked.rows)
        plain, _ = rank_candidates(stages.retriever, stages.reranker, None, user, context, depth, [])
        lists["tastebud_no_fairness"].append(plain.rows)
        lists["content_retrieval"].append(_ann_order(plain))
        user_index = stages.users.index_of(user_id)
        for name, model in baselines.items():
            lists[name].append(model.recommend(user_index, depth + drop.size))
        if exclude_seen:
            for name in names:
                lists[name][-1] = lists[name][-1][~np.isin(lists[name][-1], drop)]
    models = summarise(lists, test.truth)
    return {
        "split": {
            "kind": "global-temporal",
            "cutoff_quantile": CUTOFF_QUANTILE,
            "cutoff": pd.Timestamp(test.cutoff, unit="s", tz="UTC").isoformat(),
            "test_users": len(test.user_ids),
            "test_positives": int(sum(len(t) for t in test.truth)),
            "exclude_seen": exclude_seen,
            "train_model_version": stages.manifest.model_version,
        },
        "models": models,
    }

