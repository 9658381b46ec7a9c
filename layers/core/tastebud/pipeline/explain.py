"""``explain: true``: what each stage did for one request, built from its ``StageTrace`` after the page is served.

Per item: display fields (title, merchant name, category, price, distance) and its score and rank at every stage.
For the request: candidates per source, what re-ranking changed, what fairness moved and why, what the stock
filter removed, and each stage's time. Built only when asked for; the request path itself never pays for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tastebud.catalog import Catalog
from tastebud.display import EMPTY_DISPLAY, DisplayTable
from tastebud.domain import Candidates
from tastebud.features.ranker_features import haversine_km
from tastebud.metrics.serving_metrics import SOURCES
from tastebud.pipeline.stages.fairness import FLAG_EXPOSURE_FLOOR, FLAG_MERCHANT_CAP, FLAG_MOVED_UP, FLAG_NEW_MERCHANT
from tastebud.recommendation import Recommendation, StageTrace

MAX_LISTED = 20  # moves / removals listed per stage (counts are always complete)


def _num(value: float, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def item_display(catalog: Catalog, display: DisplayTable, row: int, location: tuple[float, float]) -> dict[str, Any]:
    merchant = int(catalog.item_merchant[row])
    category = int(catalog.item_category[row])
    lat, lon = location
    distance = float("nan")
    if not (math.isnan(lat) or math.isnan(lon)):
        distance = float(haversine_km(lat, lon, catalog.merchant_lat[merchant], catalog.merchant_lon[merchant]))
    return {
        "title": display.title(row),
        "merchant_name": display.merchant(merchant),
        "category": str(catalog.categories[category]) if 0 <= category < catalog.categories.size else "",
        "price": _num(float(catalog.item_price[row]), 2),
        "distance_km": _num(distance, 2),
    }


def _why_moved(flags: int, up: bool) -> list[str]:
    why = []
    if flags & FLAG_NEW_MERCHANT:
        why.append("boosted: new merchant")
    if flags & FLAG_MOVED_UP:
        why.append("moved up: less popular merchant / category diversity")
    if flags & FLAG_MERCHANT_CAP:
        why.append("moved down: per-merchant cap")
    if flags & FLAG_EXPOSURE_FLOOR:
        why.append("moved up: exposure floor for new and smaller merchants")
    if not why:
        why.append("moved up: less popular merchant boost" if up else
                   "moved down: others boosted, or its category already on the page")
    return why


def explain(result: Recommendation, trace: StageTrace, catalog: Catalog,
            display: DisplayTable = EMPTY_DISPLAY) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(per returned item: display fields + stage scores, the request's explain object)."""
    user, context = trace.user, trace.context
    if trace.retrieved is None or trace.ranked is None or trace.final is None or context is None or user is None:
        return _timings_only(result)
    location = (context.lat, context.lon) if not math.isnan(context.lat) else (user.home_lat, user.home_lon)
    ranks = _Ranks.of(trace.retrieved, trace.ranked, trace.final, trace.rerank_scores, trace.k)

    def ident(row: int) -> dict[str, Any]:
        return {"item_id": str(catalog.item_ids[row]), "title": display.title(row)}

    checked, stock = _stock_summary(ranks, ident, trace.k)
    items = [{**item_display(catalog, display, row, location), "stage_scores": ranks.scores_of(row, position)}
             for position, row in enumerate(ranks.final.rows.tolist())]
    sources = ranks.retrieved.sources
    stage_ms = {**dict(result.stage_ms), **{k_: round(v, 3) for k_, v in trace.timings.items()}}
    return items, {
        "user": {"known": bool(user.known), "history_items": int(user.history_rows.size),
                 "cold_start": not user.has_history,
                 "location": None if math.isnan(location[0]) else {"lat": location[0], "lon": location[1]}},
        "stage_ms": stage_ms,
        "degraded": list(result.degraded),
        "candidates": {
            "by_source": {name: int(np.count_nonzero(sources & bit)) for name, bit in SOURCES.items()},
            "retrieved": ranks.n, "reranked": ranks.n, "after_fairness": len(ranks.ranked), "stock_checked": checked,
            "returned": len(ranks.final),
        },
        "rerank": _rerank_summary(ranks, ident),
        "fairness": _fairness_summary(ranks, ident),
        "stock": stock,
    }


Ident = Callable[[int], dict[str, Any]]


@dataclass(frozen=True)
class _Ranks:
    """Where each candidate stood after each stage: positions into retrieval's and fairness's orders, and the rank
    the re-ranker's score gave it."""

    retrieved: Candidates
    ranked: Candidates
    final: Candidates
    rerank_scores: np.ndarray
    rerank_rank: np.ndarray  # by position in ``retrieved``
    retrieval_pos: dict[int, int]
    fairness_pos: dict[int, int]
    k: int

    @classmethod
    def of(cls, retrieved: Candidates, ranked: Candidates, final: Candidates, rerank_scores: np.ndarray | None,
           k: int) -> _Ranks:
        n = len(retrieved)
        scores = rerank_scores if rerank_scores is not None else np.zeros(n, np.float32)
        rerank_rank = np.empty(n, dtype=np.int64)
        rerank_rank[np.argsort(-scores, kind="stable")] = np.arange(n)
        return cls(retrieved, ranked, final, scores, rerank_rank,
                   {int(r): i for i, r in enumerate(retrieved.rows.tolist())},
                   {int(r): i for i, r in enumerate(ranked.rows.tolist())}, max(k, 1))

    @property
    def n(self) -> int:
        return len(self.retrieved)

    def scores_of(self, row: int, position: int) -> dict[str, Any]:
        """A returned item's score and rank at every stage (None where the stage did not see it)."""
        i = self.retrieval_pos.get(row)
        f = self.fairness_pos.get(row)
        fairness_scores = self.ranked.scores
        return {
            "retrieval": _num(float(self.retrieved.retrieval_scores[i])) if i is not None else None,
            "retrieval_rank": None if i is None else i + 1,
            "rerank": _num(float(self.rerank_scores[i])) if i is not None else None,
            "rerank_rank": None if i is None else int(self.rerank_rank[i]) + 1,
            "fairness": _num(float(fairness_scores[f])) if f is not None and fairness_scores is not None else None,
            "fairness_rank": None if f is None else f + 1,
            "final_rank": position + 1,
        }


def _rerank_summary(ranks: _Ranks, ident: Ident) -> dict[str, Any]:
    """The top k by ranker score against the top k in retrieval order."""
    k = ranks.k
    top_retrieval = set(ranks.retrieved.rows[:k].tolist())
    top_rerank = ranks.retrieved.rows[np.argsort(ranks.rerank_rank)[:k]].tolist()
    entered = [{**ident(r), "retrieval_rank": ranks.retrieval_pos[r] + 1,
                "rerank_rank": int(ranks.rerank_rank[ranks.retrieval_pos[r]]) + 1}
               for r in top_rerank if r not in top_retrieval]
    moved = int(np.count_nonzero(ranks.rerank_rank != np.arange(ranks.n)))
    return {"reordered": moved, "entered_top_k": entered[:MAX_LISTED], "entered_top_k_count": len(entered)}


def _fairness_summary(ranks: _Ranks, ident: Ident) -> dict[str, Any]:
    """Rank after re-ranking -> rank after fairness/diversity, with the flags that explain each move."""
    ranked = ranks.ranked
    flags = ranked.flags if ranked.flags is not None else np.zeros(len(ranked), np.int8)
    moves = []
    window = min(len(ranked), 2 * ranks.k + 10)
    for to_rank, row in enumerate(ranked.rows[:window].tolist()):
        position = ranks.retrieval_pos.get(row)
        from_rank = int(ranks.rerank_rank[position]) if position is not None else to_rank
        if from_rank != to_rank:
            moves.append({**ident(row), "from_rank": from_rank + 1, "to_rank": to_rank + 1,
                          "why": _why_moved(int(flags[to_rank]), to_rank < from_rank)})
    moves.sort(key=lambda m: -abs(m["from_rank"] - m["to_rank"]))
    return {"moved": len(moves), "moves": moves[:MAX_LISTED],
            "new_merchant_boosts": int(np.count_nonzero(flags[:window] & FLAG_NEW_MERCHANT)),
            "merchant_capped": int(np.count_nonzero(flags[:window] & FLAG_MERCHANT_CAP))}


def _stock_summary(ranks: _Ranks, ident: Ident, k: int) -> tuple[int, dict[str, Any]]:
    """(candidates the stock stage checked, what it removed): those it skipped, in page order, before the page was
    full."""
    kept = set(ranks.final.rows.tolist())
    last = max((ranks.fairness_pos[r] for r in kept if r in ranks.fairness_pos), default=-1)
    checked = len(ranks.ranked) if len(ranks.final) < k else last + 1
    removed = [{**ident(r), "rank_before": i + 1} for i, r in enumerate(ranks.ranked.rows[:checked].tolist())
               if r not in kept]
    return checked, {"removed_count": len(removed), "removed": removed[:MAX_LISTED]}


def _timings_only(result: Recommendation) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A request that stopped before ranking: nothing to explain but its timings."""
    return [{} for _ in result.items], {"stage_ms": dict(result.stage_ms), "degraded": list(result.degraded)}


def explain_request(result: Recommendation, trace: StageTrace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``explain`` against what the request ran on: its catalog, and its version's display table where it has one."""
    from tastebud.display import load_display

    if trace.catalog is None:
        return _timings_only(result)
    directory = trace.display_directory
    return explain(result, trace, trace.catalog, load_display(directory) if directory is not None else EMPTY_DISPLAY)
