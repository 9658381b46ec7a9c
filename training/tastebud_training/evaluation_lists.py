"""What `tastebud evaluate` ranks with, and each one's ranked list for every test user.

The contenders: Tastebud's full pipeline (under each ranker seed of the version, without its fairness stage, with
the audit's exposure floor enforced), retrieval alone (exact search, so that retrieval MODELS are compared without
ANN approximation in the way, including two-tower ablations) and the baselines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from tastebud.adapters.embedded.content_encoder import ContentUserEncoder
from tastebud.adapters.embedded.onnx_ranker import OnnxRanker
from tastebud.adapters.embedded.scann_index import BruteForceIndex
from tastebud.composition.local import RankingStages
from tastebud.domain import SOURCE_ANN, Candidates, RequestContext
from tastebud.features.ranker_prior import with_prior
from tastebud.features.schema import FEATURE_NAMES
from tastebud.pipeline.service import rank_candidates
from tastebud.pipeline.stages.fairness import FairnessDiversity
from tastebud.pipeline.stages.rerank import Reranker
from tastebud.pipeline.stages.retrieve import Retriever
from tastebud.ports import UserEncoder
from tastebud.recommendation import RequestState
from tastebud.settings import ServingKnobs
from tastebud_training.baselines import (
    EASEBaseline,
    IALSBaseline,
    PersonalHistoryBaseline,
    PopularityBaseline,
    Recommender,
)
from tastebud_training.basket_baselines import DecayedHistoryBaseline, TifuKnnBaseline, choose_half_life
from tastebud_training.data import Dataset
from tastebud_training.progress import track
from tastebud_training.protocols import positives_with_rows
from tastebud_training.ranker import OTHER_SEEDS_KEY
from tastebud_training.train import TrainConfig, log


@dataclass(frozen=True)
class Contenders:
    """Everything an evaluation ranks with. ``floored``: the fairness stage with the audit's exposure floor, when
    it differs from the serving knobs' (None: the pipeline already enforces it)."""

    stages: RankingStages
    knobs: ServingKnobs
    seed_rerankers: dict[str, Reranker]
    floored: FairnessDiversity | None
    retrievers: dict[str, Retriever]
    baselines: dict[str, Recommender]

    @property
    def names(self) -> list[str]:
        """The models, in the report's order."""
        return ["tastebud", *self.seed_rerankers, "tastebud_no_fairness",
                *(["tastebud_exposure_floor"] if self.floored else []), *self.retrievers, *self.baselines]


@dataclass(frozen=True)
class HalfLifeChoice:
    """The decayed "buy again" baseline's half-life (days) and the NDCG@10 of each candidate half-life on the
    training period, where it was chosen."""

    days: float
    scores: dict[str, float]


def retrieval_contenders(dataset: Dataset, stages: RankingStages, config: TrainConfig,
                         ablations: Sequence[str]) -> dict[str, Retriever]:
    """Retrieval alone: the content baseline, and the version's two-tower model with its ``ablations``."""
    knobs = config.knobs
    text_vectors = np.load(stages.directory / "text_vectors.npy")
    retrievers: dict[str, Retriever] = {
        "content_retrieval": _exact_retriever(
            stages, ContentUserEncoder(text_vectors, np.load(stages.directory / "preference_vectors.npy")),
            text_vectors, knobs),
    }
    if stages.manifest.retrieval.get("kind") == "two_tower":
        retrievers["two_tower_retrieval"] = _exact_retriever(
            stages, stages.retriever.encoder, np.load(stages.directory / "index_vectors.npy"), knobs)
        if ablations:
            retrievers.update(_ablation_retrievers(dataset, stages, config, ablations))
    return retrievers


def baselines(dataset: Dataset, probe: np.ndarray, stages: RankingStages, cutoff: float, protocol: str, *,
              seed: int, ease_l2: float) -> tuple[dict[str, Recommender], HalfLifeChoice]:
    """The baselines, trained on the data before ``cutoff``; "buy again" decays at the half-life chosen there."""
    models: dict[str, Recommender] = {
        "popularity": PopularityBaseline(stages.catalog),
        "personal_history": PersonalHistoryBaseline(stages.users, stages.catalog),
        "ials": IALSBaseline(stages.users, stages.catalog, seed=seed),
        "ease": EASEBaseline(stages.users, stages.catalog, l2=ease_l2),
    }
    history = positives_with_rows(dataset.interactions, probe)
    history = history[history["ts"] < cutoff]
    half_life, half_life_scores = choose_half_life(history, protocol, stages.catalog.popular_rows("all"))
    models["decayed_history"] = DecayedHistoryBaseline(history, stages.users, stages.catalog, as_of=cutoff,
                                                       half_life_days=half_life)
    models["tifu_knn"] = TifuKnnBaseline(history, stages.users, stages.catalog)
    return models, HalfLifeChoice(half_life, half_life_scores)


def other_seed_rerankers(stages: RankingStages) -> dict[str, Reranker]:
    """The version's rankers of further seeds (TrainConfig.ranker_seeds), each over its own prior, by model name
    ``tastebud[seed S]``; the pipeline's other stages are shared."""
    rerankers = {}
    for other in stages.manifest.ranker.get(OTHER_SEEDS_KEY, []):
        trees = OnnxRanker(stages.directory / other["file"], f"seed{other['seed']}", n_features=len(FEATURE_NAMES))
        rerankers[f"tastebud[seed {other['seed']}]"] = Reranker(stages.catalog, with_prior(trees, other))
    return rerankers


def ranked_lists(contenders: Contenders, user_ids: Sequence[str], request_ts: np.ndarray, seen: Sequence[set[int]],
                 *, depth: int, exclude_seen: bool, progress: bool) -> dict[str, list[np.ndarray]]:
    """Each model's top ``depth`` catalog rows per test user, served at the user's request time (rows the user has
    seen dropped when ``exclude_seen``)."""
    stages, floored = contenders.stages, contenders.floored
    names = contenders.names
    lists: dict[str, list[np.ndarray]] = {name: [] for name in names}
    deep = replace(contenders.knobs, retrieve_k=depth)  # retrieval-only lists need all 200 neighbours
    retrievers = {name: retriever.with_knobs(deep) for name, retriever in contenders.retrievers.items()}
    for user_id, ts, user_seen in track(list(zip(user_ids, request_ts, seen, strict=True)),
                                        "evaluating users", enabled=progress):
        user = stages.users.user(user_id)
        context = RequestContext(now=float(ts))
        drop = np.fromiter(user_seen, dtype=np.int64) if exclude_seen else np.zeros(0, np.int64)
        ranked = rank_candidates(stages.retriever, stages.reranker, stages.fairness, RequestState(user, context, depth))
        lists["tastebud"].append(ranked.rows)
        for name, reranker in contenders.seed_rerankers.items():
            lists[name].append(rank_candidates(stages.retriever, reranker, stages.fairness,
                                               RequestState(user, context, depth)).rows)
        plain = rank_candidates(stages.retriever, stages.reranker, None, RequestState(user, context, depth))
        lists["tastebud_no_fairness"].append(plain.rows)
        if floored is not None:
            fair = rank_candidates(stages.retriever, stages.reranker, floored, RequestState(user, context, depth))
            lists["tastebud_exposure_floor"].append(fair.rows)
        for name, retriever in retrievers.items():
            lists[name].append(_ann_order(retriever.run(RequestState(user, context))))
        user_index = stages.users.index_of(user_id)
        for name, model in contenders.baselines.items():
            lists[name].append(model.recommend(user_index, depth + drop.size))
        if exclude_seen:
            for name in names:
                lists[name][-1] = lists[name][-1][~np.isin(lists[name][-1], drop)]
    return lists


def _ann_order(candidates: Candidates) -> np.ndarray:
    """Retrieval alone: ANN neighbours by similarity, then the other sources in retrieval order."""
    is_ann = (candidates.sources & SOURCE_ANN) > 0
    scores = np.where(is_ann, candidates.retrieval_scores, -np.inf)
    return candidates.rows[np.argsort(-scores, kind="stable")]


def _exact_retriever(stages: RankingStages, encoder: UserEncoder, vectors: np.ndarray,
                     knobs: ServingKnobs) -> Retriever:
    """A retriever with exact search: compares retrieval MODELS without ANN approximation in the way."""
    return Retriever(stages.catalog, encoder, BruteForceIndex(vectors), knobs)


def _ablation_retrievers(dataset: Dataset, stages: RankingStages, config: TrainConfig,
                         names: Sequence[str]) -> dict[str, Retriever]:
    """Two-tower variants trained like the evaluated one but with one ingredient switched off."""
    from tastebud_training.item_features import image_features
    from tastebud_training.retrieval import fit_two_tower
    from tastebud_training.snapshot import build_catalog, preference_terms

    as_of = float(stages.manifest.retrieval["trained_before"])
    catalog_then = build_catalog(dataset, as_of)
    terms = preference_terms(dataset.users)
    text_vectors = np.load(stages.directory / "text_vectors.npy")
    cache = stages.directory.parent.parent.parent.parent / "cache"
    image_vectors, has_image = image_features(dataset, cache, enabled=config.images, weights=config.image_weights,
                                               progress=config.progress, say=lambda m: log(m, config.progress))
    out: dict[str, Retriever] = {}
    for name in names:
        directory = stages.directory.parent.parent / "ablations" / name
        directory.mkdir(parents=True, exist_ok=True)
        log(f"ablation {name}", config.progress)
        fitted = fit_two_tower(dataset, catalog_then, as_of, terms, text_vectors, image_vectors, has_image, directory,
                               config.two_tower.ablation(name), lambda m: log(m, config.progress), served=False)
        out[f"two_tower_retrieval[{name}]"] = _exact_retriever(stages, fitted.encoder, fitted.index_vectors,
                                                               config.knobs)
    return out
