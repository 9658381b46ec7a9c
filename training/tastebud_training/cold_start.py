"""Cold-start study: how well the two-tower model retrieves items it has never seen an interaction for.

The temporal split has few items that are new after the cutoff (in the demo data, a few dozen), so this
study makes cold items on purpose, the standard item-cold-start protocol: a seeded 10% of the items that
test users engage with after the cutoff lose ALL their interactions before it. Two two-tower models are
trained on that reduced log, with and without feature dropout, and each is scored on the same test users:
recall@K of their test positives on the held-out (cold) items versus on the other (warm) items, with
exact search over the whole catalog.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tastebud.adapters.embedded.scann_index import BruteForceIndex
from tastebud.domain import SOURCE_ANN, RequestContext
from tastebud.settings import ServingKnobs
from tastebud.stages.retrieve import Retriever
from tastebud_training.data import POSITIVE_EVENTS, Dataset
from tastebud_training.item_features import image_features
from tastebud_training.metrics import recall_at
from tastebud_training.progress import track
from tastebud_training.retrieval import fit_two_tower
from tastebud_training.snapshot import build_catalog, build_user_table, preference_terms
from tastebud_training.text_embedding import embed_texts, item_texts
from tastebud_training.train import TrainConfig, log

HELD_OUT_SHARE = 0.1
KS = (50, 100, 200)


def cold_start_study(dataset: Dataset, workdir: Path, cutoff: float, config: TrainConfig,
                     max_users: int = 3000) -> dict[str, Any]:
    rng = np.random.default_rng(config.seed)
    interactions = dataset.interactions
    positive = interactions[interactions["event_type"].isin(POSITIVE_EVENTS)]
    after = positive[positive["ts"] >= cutoff]
    before_users = set(positive.loc[positive["ts"] < cutoff, "user_id"])
    after = after[after["user_id"].isin(before_users)]
    candidates = np.asarray(sorted(after["item_id"].unique()), dtype=object)
    held_out = set(rng.choice(candidates, max(1, int(len(candidates) * HELD_OUT_SHARE)), replace=False).tolist())

    training_log = interactions[(interactions["ts"] < cutoff) & ~interactions["item_id"].isin(held_out)]
    reduced = Dataset(dataset.merchants, dataset.items, dataset.users, training_log, dataset.stock, dataset.source,
                      dataset.warnings)
    terms = preference_terms(dataset.users)
    cache = workdir / "cache"
    text_vectors = embed_texts(item_texts(dataset.items), cache_dir=cache, progress=config.progress)
    image_vectors, has_image = image_features(dataset, cache, enabled=config.images, weights=config.image_weights,
                                               progress=config.progress, say=lambda m: log(m, config.progress))
    catalog = build_catalog(reduced, cutoff)
    users = build_user_table(reduced, catalog, cutoff, terms)

    truth = after.groupby("user_id")["item_id"].agg(set)
    first_ts = after.groupby("user_id")["ts"].min()
    user_ids = sorted(truth.index)
    if len(user_ids) > max_users:
        user_ids = sorted(rng.choice(np.asarray(user_ids, dtype=object), max_users, replace=False).tolist())
    row_of = pd.Index(catalog.item_ids)

    results: dict[str, Any] = {"held_out_items": len(held_out), "test_users": len(user_ids)}
    for name, two_tower in (("with_feature_dropout", config.two_tower),
                            ("without_feature_dropout", config.two_tower.ablation("no_feature_dropout"))):
        directory = workdir / name
        directory.mkdir(parents=True, exist_ok=True)
        log(f"cold-start study: training {name}", config.progress)
        fitted = fit_two_tower(reduced, catalog, cutoff, terms, text_vectors, image_vectors, has_image, directory,
                               two_tower, lambda m: log(m, config.progress))
        retriever = Retriever(catalog, fitted.encoder, BruteForceIndex(fitted.index_vectors),
                              ServingKnobs(retrieve_k=max(KS), history_candidates=0, popular_candidates=0))
        cold_recalls: dict[int, list[float]] = {k: [] for k in KS}
        warm_recalls: dict[int, list[float]] = {k: [] for k in KS}
        for user_id in track(user_ids, f"cold-start study: {name}", enabled=config.progress):
            candidates_ = retriever.run(users.user(user_id), RequestContext(now=float(first_ts[user_id])), [])
            ranked = candidates_.rows[(candidates_.sources & SOURCE_ANN) > 0]
            rows = set(row_of.get_indexer(list(truth[user_id])).tolist())
            cold = {r for r, i in zip(row_of.get_indexer(list(truth[user_id])), truth[user_id], strict=True)
                    if i in held_out}
            warm = rows - cold
            for k in KS:
                if cold:
                    cold_recalls[k].append(recall_at(ranked, cold, k))
                if warm:
                    warm_recalls[k].append(recall_at(ranked, warm, k))
        results[name] = {
            **{f"cold_recall@{k}": float(np.mean(v)) if v else float("nan") for k, v in cold_recalls.items()},
            **{f"warm_recall@{k}": float(np.mean(v)) if v else float("nan") for k, v in warm_recalls.items()},
            "users_with_cold_items": len(cold_recalls[KS[0]]),
        }
    return results
