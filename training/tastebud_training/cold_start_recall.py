"""Cold and warm recall@K of the cold-start study's lists: the pipeline's ranked list, its candidates in retrieval
order, and two-tower retrieval alone by exact search over the whole catalog."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from tastebud.adapters.embedded.scann_index import BruteForceIndex
from tastebud.domain import SOURCE_ANN, Candidates, RequestContext
from tastebud.live.view import LiveView
from tastebud.pipeline.service import rank_candidates
from tastebud.pipeline.stages.retrieve import Retriever
from tastebud.recommendation import RequestState
from tastebud.settings import ServingKnobs
from tastebud_training.cold_start_split import ColdStartSplit
from tastebud_training.metrics import recall_at
from tastebud_training.progress import track

KS = (50, 100, 200)
LISTS = ("pipeline", "candidates", "whole_catalog")


def _retrieval_order(candidates: Candidates) -> np.ndarray:
    """ANN and fresh neighbours by similarity (as the retriever merges them), then the other sources in order."""
    scored = (candidates.sources & SOURCE_ANN) > 0
    scores = np.where(scored, candidates.retrieval_scores, -np.inf)
    return candidates.rows[np.argsort(-scores, kind="stable")]


def _whole_catalog_vectors(view: LiveView) -> np.ndarray:
    """Index vectors for every row of the view's catalog: the version's, then the fresh items' (appended rows)."""
    base = np.load(view.version.directory / "index_vectors.npy")
    vectors = np.zeros((view.catalog.size, base.shape[1]), np.float32)
    vectors[: base.shape[0]] = base
    vectors[view.fresh.rows] = view.fresh.vectors
    return vectors


class _Recalls:
    """Per-user cold and warm recall@K of several lists, averaged over the users who have such items."""

    def __init__(self, names: Sequence[str]) -> None:
        self.values: dict[str, list[float]] = {}
        self.names = names

    def add(self, name: str, ranked: np.ndarray, cold: set[int], warm: set[int]) -> None:
        for kind, relevant in (("cold", cold), ("warm", warm)):
            if not relevant:
                continue
            for k in KS:
                self.values.setdefault(f"{name}/{kind}_recall@{k}", []).append(recall_at(ranked, relevant, k))

    def add_membership(self, name: str, rows: np.ndarray, cold: set[int], warm: set[int]) -> None:
        present = set(rows.tolist())
        for kind, relevant in (("cold", cold), ("warm", warm)):
            if relevant:
                self.values.setdefault(f"{name}/{kind}_in_candidates", []).append(
                    len(relevant & present) / len(relevant))

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {name: {} for name in self.names}
        for key, values in self.values.items():
            name, metric = key.split("/")
            out[name][metric] = float(np.mean(values))
        return out


def measure(view: LiveView, split: ColdStartSplit, knobs: ServingKnobs, *, progress: bool, label: str,
            whole_catalog: bool = True) -> dict[str, Any]:
    """Cold and warm recall@K of the pipeline, its candidates and (optionally) whole-catalog exact retrieval."""
    catalog = view.catalog
    service = view.service
    depth = max(KS)
    exact = None
    if whole_catalog:
        exact = Retriever(catalog, service.retriever.encoder, BruteForceIndex(_whole_catalog_vectors(view)),
                          replace(knobs, retrieve_k=depth, fresh_candidates=0, history_candidates=0,
                                  related_candidates=0, similar_candidates=0, popular_candidates=0))
    held_rows = set(catalog.rows_of(sorted(split.held_out)).tolist())
    recalls = _Recalls(LISTS if whole_catalog else LISTS[:2])
    users_with = {"cold": 0, "warm": 0}
    for user_id in track(split.user_ids, f"cold-start study: {label}", enabled=progress):
        rows = {r for i in split.truth[user_id] if (r := catalog.row_of(i)) is not None}
        cold, warm = rows & held_rows, rows - held_rows
        users_with["cold"] += bool(cold)
        users_with["warm"] += bool(warm)
        user = view.version.users.user(user_id)
        context = RequestContext(now=split.request_ts[user_id])
        candidates = service.retriever.run(RequestState(user, context))
        recalls.add("candidates", _retrieval_order(candidates), cold, warm)
        recalls.add_membership("candidates", candidates.rows, cold, warm)
        ranked = rank_candidates(service.retriever, service.reranker, service.fairness,
                                 RequestState(user, context, depth))
        recalls.add("pipeline", ranked.rows, cold, warm)
        if exact is not None:
            recalls.add("whole_catalog", _retrieval_order(exact.run(RequestState(user, context))), cold, warm)
    return {**recalls.summary(), "users_with_cold_items": users_with["cold"],
            "users_with_warm_items": users_with["warm"], "fresh_items": len(view.fresh)}
