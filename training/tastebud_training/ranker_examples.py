"""Re-ranker training examples: groups of candidates with graded labels, from the label window.

Training groups come from two sources, both built with the serving code (Retriever + ranker_features)
on a snapshot taken at the start of the label window, so features are exactly what serving computes:
  * retrieval groups: the candidates retrieval returns for a user at the start of one of their baskets, with the
    history as it was then, labelled by that basket (next-basket labels, the default) or by every later positive
    of the window (works for any data set, including purchases only);
  * impression groups (off by default, ``impression_groups``): the items a logged request showed, labelled by
    what was clicked/bought in that request (shown-and-ignored items are the hard negatives), when the data has
    impressions. A shown page is not the candidate set the ranker orders online: on the simulator, training
    on retrieval groups only raised NDCG@10 by 1.3% (mean of 5 seeds; docs/QUALITY.md).
Relevance is graded: click 1, add_to_cart 2, purchase 3.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tastebud.adapters.embedded.user_table import UserTable
from tastebud.catalog import Catalog
from tastebud.domain import Candidates, RequestContext, UserProfile
from tastebud.features.history import with_events
from tastebud.features.ranker_features import ranker_features
from tastebud.features.schema import FEATURE_NAMES
from tastebud.pipeline.stages.retrieve import Retriever
from tastebud.recommendation import RequestState
from tastebud_training.progress import track
from tastebud_training.reorders import basket_keys
from tastebud_training.snapshot import item_rows, positives

# Requests per user in the label window, spread over it: the group budget shared by the window's users, within
# these bounds (each request has its point-in-time history, so a user's baskets are many groups).
MIN_ANCHORS_PER_USER, MAX_ANCHORS_PER_USER = 6, 40
LABEL_HORIZONS = ("next-basket", "window")


@dataclass
class RankerExamples:
    features: np.ndarray
    labels: np.ndarray
    qid: np.ndarray
    groups_by_source: dict[str, int] = field(default_factory=dict)
    group_users: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))  # the user of each qid

    @property
    def n_groups(self) -> int:
        return int(np.unique(self.qid).size) if self.qid.size else 0


def _label_window(interactions: pd.DataFrame, start: float, end: float) -> pd.DataFrame:
    window = interactions[(interactions["ts"] >= start) & (interactions["ts"] < end)]
    return window


@dataclass
class _Groups:
    """Ranker groups as they are added: one request's candidates, their features and graded labels each."""

    catalog: Catalog
    feats: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    qids: list[np.ndarray] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"retrieval": 0, "impressions": 0})

    def add(self, source: str, user: UserProfile, candidates: Candidates, context: RequestContext,
            y: np.ndarray) -> None:
        """One request's candidates as a group, with the features serving computes; skipped when none is relevant."""
        if y.max() <= 0:
            return
        self.feats.append(ranker_features(self.catalog, user, candidates, context))
        self.labels.append(y)
        self.qids.append(np.full(y.size, len(self.qids), dtype=np.int64))
        self.users.append(user.user_id)
        self.counts[source] += 1

    def examples(self) -> RankerExamples:
        if not self.feats:
            empty = np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
            return RankerExamples(empty, np.zeros(0, np.float32), np.zeros(0, np.int64), self.counts)
        return RankerExamples(np.concatenate(self.feats), np.concatenate(self.labels), np.concatenate(self.qids),
                              self.counts, np.asarray(self.users, dtype=object))


def build_examples(*, catalog: Catalog, users: UserTable, retriever: Retriever, interactions: pd.DataFrame,
                   label_start: float, label_end: float, max_groups: int = 6000, seed: int = 0,
                   progress: bool = True, impression_groups: bool = False,
                   label_horizon: str = "next-basket") -> RankerExamples:
    """Ranker training examples from the label window [label_start, label_end).

    ``impression_groups``: also learn from logged pages (shown items labelled by what was engaged with), with half
    of ``max_groups``; off by default (see the module docstring).
    """
    rng = np.random.default_rng(seed)
    window = _label_window(interactions, label_start, label_end)
    pos = positives(window)
    pos = pos.assign(row=item_rows(catalog, pos["item_id"]))
    groups = _Groups(catalog)
    if label_horizon not in LABEL_HORIZONS:
        raise ValueError(f"label_horizon must be one of {LABEL_HORIZONS}, got {label_horizon!r}")
    has_impressions = (impression_groups and bool((window["event_type"] == "impression").any())
                       and bool(window["request_id"].ne("").any()))
    n_retrieval = max_groups // 2 if has_impressions else max_groups
    _add_retrieval_groups(groups, pos, users, retriever, n_retrieval, label_horizon, rng, progress)
    if has_impressions:
        _add_impression_groups(groups, window, pos, users, retriever, max_groups - groups.counts["retrieval"], rng,
                               progress)
    return groups.examples()


def _add_retrieval_groups(groups: _Groups, pos: pd.DataFrame, users: UserTable, retriever: Retriever,
                          n_retrieval: int, label_horizon: str, rng: np.random.Generator, progress: bool) -> None:
    """Per user active in the window, a request at the start of up to ``anchors_per_user`` of their baskets there
    (spread over the window), with the history as it was then (the snapshot + the window's earlier positives,
    folded by tastebud.features.history as serving folds live events), labelled by that basket
    (``label_horizon="next-basket"``) or by every positive from then on (``"window"``)."""
    by_user = pos.groupby("user_id", sort=True)
    user_ids = np.asarray(list(by_user.groups.keys()), dtype=object)
    anchors_per_user = int(np.clip(n_retrieval // max(user_ids.size, 1), MIN_ANCHORS_PER_USER, MAX_ANCHORS_PER_USER))
    user_ids = rng.permutation(user_ids)[:n_retrieval]  # random order: the budget may end before the last user
    for user_id in track(user_ids, "ranker examples: retrieval groups", enabled=progress):
        if groups.counts["retrieval"] >= n_retrieval:
            break
        events = by_user.get_group(user_id)
        keys = _session_keys(events)
        starts = events.groupby(keys)["ts"].min().sort_values()
        for key, anchor in _spread(list(starts.items()), anchors_per_user):
            earlier = events[events["ts"] < anchor]
            later = events[keys == key] if label_horizon == "next-basket" else events[events["ts"] >= anchor]
            grade = later.groupby("row")["weight"].max()
            user = with_events(users.user(user_id), earlier["row"].to_numpy(dtype=np.int64),
                               earlier["event_type"].tolist(), earlier["ts"].to_numpy(dtype=np.float64))
            context = RequestContext(now=float(anchor))
            candidates = retriever.run(RequestState(user, context))
            groups.add("retrieval", user, candidates, context,
                       grade.reindex(candidates.rows).fillna(0).to_numpy(dtype=np.float32))


def _add_impression_groups(groups: _Groups, window: pd.DataFrame, pos: pd.DataFrame, users: UserTable,
                           retriever: Retriever, budget: int, rng: np.random.Generator, progress: bool) -> None:
    """Logged pages of the window: the shown items as candidates, labelled by what was engaged with in that
    request, for at most ``budget`` requests."""
    shown = window[(window["event_type"] == "impression") & (window["request_id"] != "")]
    engaged = pos[pos["request_id"] != ""]
    grade_by_request = engaged.groupby(["request_id", "row"])["weight"].max()
    requests = shown["request_id"].unique()
    requests = np.intersect1d(requests, engaged["request_id"].unique())
    if requests.size > budget:
        requests = np.sort(rng.choice(requests, budget, replace=False))
    shown = shown[shown["request_id"].isin(requests)]
    shown = shown.assign(row=item_rows(groups.catalog, shown["item_id"]))
    for request_id, group in track(shown.groupby("request_id", sort=True), "ranker examples: impressions",
                                   enabled=progress, total=int(requests.size)):
        user = users.user(str(group["user_id"].iloc[0]))
        context = RequestContext(now=float(group["ts"].min()))
        rows = group["row"].drop_duplicates().to_numpy(dtype=np.int64)
        candidates = _as_candidates(rows, retriever.run(RequestState(user, context)))
        y = grade_by_request.reindex(pd.MultiIndex.from_arrays([[request_id] * rows.size, rows])).fillna(0)
        groups.add("impressions", user, candidates, context, y.to_numpy(dtype=np.float32))


def _spread(sessions: list, k: int) -> list:
    """At most ``k`` of the sessions, evenly spaced from the first to the last (all of them when there are fewer)."""
    if len(sessions) <= k:
        return sessions
    return [sessions[i] for i in np.unique(np.linspace(0, len(sessions) - 1, k).round().astype(int))]


def _session_keys(events: pd.DataFrame) -> np.ndarray:
    """Each event's basket (its session, else its day): a request is made at each basket's start."""
    sessions = events["session_id"].fillna("").astype(str) if "session_id" in events else pd.Series("", events.index)
    return basket_keys(events["user_id"].to_numpy(dtype=str), sessions.to_numpy(dtype=str),
                       events["ts"].to_numpy(dtype=np.float64))


def _as_candidates(rows: np.ndarray, retrieved: Candidates) -> Candidates:
    """Shown items as candidates, with the retrieval score/sources they would have had online (NaN/0 if none)."""
    lookup = pd.Index(retrieved.rows)
    position = lookup.get_indexer(rows)
    found = position >= 0
    scores = np.full(rows.size, np.nan, dtype=np.float32)
    sources = np.zeros(rows.size, dtype=np.int8)
    scores[found] = retrieved.retrieval_scores[position[found]]
    sources[found] = retrieved.sources[position[found]]
    return Candidates(rows=rows, retrieval_scores=scores, sources=sources)
