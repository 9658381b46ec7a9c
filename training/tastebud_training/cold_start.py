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
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tastebud.adapters.deferred_stock import DeferredStock
from tastebud.adapters.embedded.scann_index import BruteForceIndex
from tastebud.artifacts import CURRENT, LocalArtifactStore
from tastebud.domain import SOURCE_ANN, Candidates, ItemDraft, RequestContext
from tastebud.fresh_index import FreshItemsIndex
from tastebud.live.view import LiveView, build_view
from tastebud.pipeline.service import rank_candidates
from tastebud.pipeline.stages.retrieve import Retriever
from tastebud.recommendation import RequestState
from tastebud.serving_version import ServingVersion, load_version
from tastebud.settings import ServingKnobs
from tastebud_training.data import POSITIVE_EVENTS, Dataset
from tastebud_training.metrics import recall_at
from tastebud_training.progress import track
from tastebud_training.train import TrainConfig, data_fingerprint, log, train
from tastebud_training.training_cache import cache_directory

HELD_OUT_SHARE = 0.1
KS = (50, 100, 200)
# "default" is the config as given; the others are TwoTowerConfig.ablation names.
VARIANTS = ("default", "item_id_scale_half", "item_id_dropout_50")
# Serving-knob alternatives measured on each variant's trained version (they act at serving only: no retraining).
KNOB_SETS: dict[str, dict[str, Any]] = {"fresh_candidates=20": {"fresh_candidates": 20}}  # the old default
LISTS = ("pipeline", "candidates", "whole_catalog")


@dataclass(frozen=True)
class ColdStartSplit:
    """The held-out items, the reduced data set the models see, and the test users with their truth (item ids)."""

    held_out: frozenset[str]
    reduced: Dataset
    user_ids: list[str]
    request_ts: dict[str, float]
    truth: dict[str, set[str]]


def cold_start_split(dataset: Dataset, cutoff: float, seed: int, max_users: int) -> ColdStartSplit:
    """Hold out a seeded share of the items test users engage with after ``cutoff``; drop them from the data."""
    rng = np.random.default_rng(seed)
    interactions = dataset.interactions
    positive = interactions[interactions["event_type"].isin(POSITIVE_EVENTS)]
    after = positive[positive["ts"] >= cutoff]
    before_users = set(positive.loc[positive["ts"] < cutoff, "user_id"])
    after = after[after["user_id"].isin(before_users)]
    candidates = np.asarray(sorted(after["item_id"].unique()), dtype=object)
    held_out = frozenset(rng.choice(candidates, max(1, int(len(candidates) * HELD_OUT_SHARE)),
                                    replace=False).tolist())

    kept_items = ~dataset.items["item_id"].isin(held_out)
    training_log = interactions[(interactions["ts"] < cutoff) & ~interactions["item_id"].isin(held_out)]
    stock = dataset.stock[~dataset.stock["item_id"].isin(held_out)] if dataset.stock is not None else None
    reduced = Dataset(dataset.merchants, dataset.items[kept_items].reset_index(drop=True), dataset.users,
                      training_log, stock, dataset.source, dataset.warnings, dataset.read_at)

    truth = after.groupby("user_id")["item_id"].agg(set)
    first_ts = after.groupby("user_id")["ts"].min()
    user_ids = sorted(truth.index)
    if len(user_ids) > max_users:
        user_ids = sorted(rng.choice(np.asarray(user_ids, dtype=object), max_users, replace=False).tolist())
    return ColdStartSplit(held_out, reduced, user_ids, {u: float(first_ts[u]) for u in user_ids},
                          {u: set(truth[u]) for u in user_ids})


def held_out_records(dataset: Dataset, held_out: frozenset[str], added_at: float) -> dict[str, dict[str, Any]]:
    """The held-out items as the live state holds items upserted through the API, received at ``added_at``."""
    records: dict[str, dict[str, Any]] = {}
    for row in dataset.items[dataset.items["item_id"].isin(held_out)].to_dict("records"):
        price = row.get("price")
        image = row.get("image_uri")
        records[str(row["item_id"])] = {
            "item_id": str(row["item_id"]), "merchant_id": str(row["merchant_id"]), "title": row.get("title") or "",
            "category": row.get("category") or "", "description": row.get("description") or "",
            "price": None if price is None or (isinstance(price, float) and math.isnan(price)) else float(price),
            "image_uri": image if isinstance(image, str) and image.strip() else None, "received_at": added_at}
    return records


class _AllInStock:
    """The study measures stages 1-3; the stock stage is not run, but the service wiring wants a store."""

    def out_of_stock(self, item_ids: Sequence[str]) -> np.ndarray:
        return np.zeros(len(item_ids), dtype=bool)

    def begin_out_of_stock(self, item_ids: Sequence[str]) -> DeferredStock:
        return DeferredStock(lambda: self.out_of_stock(item_ids))

    def set_stock(self, item_id: str, in_stock: bool, quantity: int | None = None) -> None:
        return None


def _embed_new_items(version: ServingVersion, drafts: list[ItemDraft], merchant_rows: np.ndarray,
                     category_rows: np.ndarray, domains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The version's item embedder, as the serving runtime calls it for upserted items (without its Redis cache)."""
    if version.embedder is None:
        raise RuntimeError(f"version {version.name} has no item embedder: new items cannot be embedded")
    return version.embedder.embed(drafts, merchant_rows=merchant_rows, category_rows=category_rows, domains=domains)


def fresh_view(version: ServingVersion, dataset: Dataset, held_out: frozenset[str], added_at: float,
               knobs: ServingKnobs) -> LiveView:
    """The version with the held-out items added at ``added_at`` through the serving code (``build_view``)."""
    return build_view(version, 1, held_out_records(dataset, held_out, added_at), {}, stock=_AllInStock(),
                      knobs=knobs, embed_missing=_embed_new_items, clock=lambda: added_at, out_of_stock=frozenset())


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
        candidates = service.retriever.run(user, context, [])
        recalls.add("candidates", _retrieval_order(candidates), cold, warm)
        recalls.add_membership("candidates", candidates.rows, cold, warm)
        ranked = rank_candidates(service.retriever, service.reranker, service.fairness,
                                 RequestState(user, context, depth))
        recalls.add("pipeline", ranked.rows, cold, warm)
        if exact is not None:
            recalls.add("whole_catalog", _retrieval_order(exact.run(user, context, [])), cold, warm)
    return {**recalls.summary(), "users_with_cold_items": users_with["cold"],
            "users_with_warm_items": users_with["warm"], "fresh_items": len(view.fresh)}


def _random_fresh(view: LiveView, knobs: ServingKnobs, seed: int) -> LiveView:
    """The view with random unit vectors in the fresh index: what the fresh quota gives without content."""
    fresh = view.fresh
    noise = np.random.default_rng(seed).normal(size=fresh.vectors.shape).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    random_fresh = FreshItemsIndex(fresh.rows, noise)
    service = view.service
    retriever = Retriever(view.catalog, service.retriever.encoder, service.retriever.index, knobs, random_fresh)
    return replace(view, fresh=random_fresh, service=replace_retriever(service, retriever))


def replace_retriever(service: Any, retriever: Retriever) -> Any:
    """A shallow copy of a RecommendationService with another retriever (the other stages shared)."""
    import copy

    clone = copy.copy(service)
    clone.retriever = retriever
    return clone


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
            control = measure(_random_fresh(view, knobs, config.seed), split, knobs, progress=config.progress,
                              label=f"{name} with random fresh vectors", whole_catalog=False)
            results["fresh_chance"] = {"variant": name, **control, "knob_sets": {}}
        for set_name, changes in (KNOB_SETS if knob_sets is None else knob_sets).items():
            other = replace(knobs, **changes)
            other_view = fresh_view(version, dataset, split.held_out, cutoff, other)
            row["knob_sets"][set_name] = {"knobs": changes, **measure(
                other_view, split, other, progress=config.progress, label=f"{name}, {set_name}",
                whole_catalog=False)}
            if i == 0:
                results["fresh_chance"]["knob_sets"][set_name] = {"knobs": changes, **measure(
                    _random_fresh(other_view, other, config.seed), split, other, progress=config.progress,
                    label=f"{name}, {set_name}, random fresh vectors", whole_catalog=False)}
        results["variants"][name] = row
    return results

