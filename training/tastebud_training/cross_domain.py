"""Cross-domain transfer: does restaurant history help grocery recommendations, and the reverse?

The item tower is shared by both domains for this reason. For each domain D, the full pipeline trained on both
domains' interactions is compared with the same pipeline trained on D's interactions only, on the same test
users (those with a positive in D after the cutoff), asked for D's page (``RequestContext.domain``) and scored
on their D positives only. The catalog is the same in both runs, so only the training log differs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tastebud.catalog import DOMAIN_CODE, DOMAINS
from tastebud.composition.local import RankingStages
from tastebud.domain import RequestContext
from tastebud.pipeline.service import rank_candidates
from tastebud.recommendation import RequestState
from tastebud_training.data import Dataset
from tastebud_training.evaluate import TestSet, evaluation_models, temporal_split
from tastebud_training.metrics import summarise
from tastebud_training.progress import track
from tastebud_training.train import TrainConfig

DEPTH = 200


def domain_only(dataset: Dataset, domain: str) -> Dataset:
    """The data set with only ``domain``'s interactions (catalog, users and merchants kept whole)."""
    merchant_domain = dataset.merchants.set_index("merchant_id")["domain"]
    item_domain = dataset.items.set_index("item_id")["merchant_id"].map(merchant_domain)
    keep = dataset.interactions["item_id"].map(item_domain).to_numpy() == domain
    return replace(dataset, interactions=dataset.interactions[keep])


def _domain_test(test: TestSet, item_domain: np.ndarray, domain: str) -> tuple[list[int], list[set[int]]]:
    code = DOMAIN_CODE[domain]
    users, truth = [], []
    for i, items in enumerate(test.truth):
        mine = {row for row in items if item_domain[row] == code}
        if mine:
            users.append(i)
            truth.append(mine)
    return users, truth


def _lists(stages: RankingStages, test: TestSet, users: list[int], domain: str, progress: bool) -> list[np.ndarray]:
    out = []
    for i in track(users, f"cross-domain: {domain} pages", enabled=progress):
        context = RequestContext(now=float(test.request_ts[i]), domain=domain)
        ranked = rank_candidates(stages.retriever, stages.reranker, stages.fairness,
                                 RequestState(stages.users.user(test.user_ids[i]), context, DEPTH))
        out.append(ranked.rows)
    return out


def cross_domain_study(dataset: Dataset, artifacts: Path, config: TrainConfig, *,
                       max_users: int | None = 3000) -> dict[str, Any]:
    """Per domain: NDCG/Recall of the pipeline trained on both domains vs on that domain alone."""
    probe = dataset.items["item_id"].to_numpy(dtype=str)
    test = temporal_split(dataset, probe, exclude_seen=False, max_users=max_users, seed=config.seed)
    both = evaluation_models(dataset, artifacts, test.cutoff, config)
    item_domain = both.catalog.item_domain
    report: dict[str, Any] = {"cutoff": pd.Timestamp(test.cutoff, unit="s", tz="UTC").isoformat(), "domains": {}}
    for domain in DOMAINS:
        users, truth = _domain_test(test, item_domain, domain)
        single = domain_only(dataset, domain)
        if not users or single.interactions.empty:
            continue
        alone = evaluation_models(single, artifacts, test.cutoff, config)
        scores = summarise({"both_domains": _lists(both, test, users, domain, config.progress),
                            f"{domain}_only": _lists(alone, test, users, domain, config.progress)}, truth)
        report["domains"][domain] = {"test_users": len(users), "test_positives": int(sum(len(t) for t in truth)),
                                     "models": scores}
    return report
