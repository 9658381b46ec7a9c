"""The recommendation service: runs the four stages for one request and times each of them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Container, Mapping
from typing import Any

import numpy as np

from tastebud.catalog import DOMAINS, Catalog
from tastebud.circuit import breaker_state
from tastebud.domain import Candidates, RequestContext, UserProfile
from tastebud.errors import DependencyError, NotFoundError
from tastebud.fresh_index import EMPTY_FRESH_INDEX, FreshItemsIndex
from tastebud.pipeline.reasons import reasons_for
from tastebud.pipeline.stages.fairness import FairnessDiversity
from tastebud.pipeline.stages.rerank import Reranker
from tastebud.pipeline.stages.retrieve import Retriever
from tastebud.pipeline.stages.stock_filter import StockFilter, StockPrefetch
from tastebud.ports import CandidateIndex, FeatureStore, Ranker, StockStore, UserEncoder
from tastebud.recommendation import Recommendation, RecommendedItem, RequestState, StageTrace, Versions
from tastebud.serving_port import ServingState
from tastebud.settings import ServingKnobs


class RecommendationService:
    """handler -> service -> stages -> ports. Built once per process by the composition root."""

    def __init__(self, *, catalog: Catalog, features: FeatureStore, retriever: Retriever, reranker: Reranker,
                 fairness: FairnessDiversity, stock_filter: StockFilter, stock: StockStore, versions: Versions,
                 clock: Callable[[], float] = time.time, breakers: Mapping[str, Any] | None = None) -> None:
        self.catalog = catalog
        self.features = features
        self.retriever = retriever
        self.reranker = reranker
        self.fairness = fairness
        self.stock_filter = stock_filter
        self.stock = stock
        self.versions = versions
        self._clock = clock
        self.breakers: dict[str, Any] = dict(breakers or {})  # dependency name -> its circuit breaker (AWS)

    def dependencies(self) -> dict[str, str]:
        """Each remote dependency's circuit: ok | degraded | down (what /health/ready reports on AWS)."""
        return {name: breaker_state(breaker) for name, breaker in self.breakers.items()}

    @property
    def live(self) -> None:
        """No live changes here: on AWS events go through Kinesis, catalog changes through the hot-swap pipeline."""
        return None

    def state(self) -> ServingState:
        return ServingState(versions=self.versions, catalog=self.catalog)

    @classmethod
    def wire(cls, *, catalog: Catalog, features: FeatureStore, encoder: UserEncoder, index: CandidateIndex,
             ranker: Ranker, stock: StockStore, knobs: ServingKnobs, versions: Versions,
             fresh: FreshItemsIndex = EMPTY_FRESH_INDEX, fallback_out_of_stock: Container[str] = frozenset(),
             clock: Callable[[], float] = time.time,
             breakers: Mapping[str, Any] | None = None) -> RecommendationService:
        """The four stages over one catalog and its adapters: the one wiring that every backend, bench and test use."""
        return cls(
            catalog=catalog,
            features=features,
            retriever=Retriever(catalog, encoder, index, knobs, fresh),
            reranker=Reranker(catalog, ranker),
            fairness=FairnessDiversity(catalog, knobs),
            stock_filter=StockFilter(catalog, stock, serve_without_filter=knobs.serve_without_stock_filter,
                                     fallback_out_of_stock=fallback_out_of_stock),
            stock=stock,
            versions=versions,
            clock=clock,
            breakers=breakers,
        )

    def recommend(self, user_id: str, k: int = 20, domain: str = "all", lat: float | None = None,
                  lon: float | None = None, exclude_item_ids: tuple[str, ...] = (),
                  request_id: str | None = None, user: UserProfile | None = None,
                  trace: StageTrace | None = None) -> Recommendation:
        """Run the four stages. ``user``: a profile already read (with live events); else the feature store's.

        ``trace``: filled with what each stage did (see ``StageTrace``).
        """
        started = time.perf_counter()
        context = RequestContext(
            now=self._clock(),
            domain=domain,
            lat=float("nan") if lat is None else lat,
            lon=float("nan") if lon is None else lon,
            exclude_item_ids=exclude_item_ids,
        )
        degraded: list[str] = []
        if user is None:
            try:
                user = self.features.user(user_id)
            except DependencyError:
                # Feature store down (DynamoDB throttled/unreachable): serve the user as cold, never a 5xx.
                degraded.append("features")
                user = UserProfile.cold(user_id)
        state = RequestState(user, context, k, degraded=degraded, trace=trace)
        stock = _StockPrefetcher(self.stock_filter)
        try:
            ranked = self.rank(state, started=started, on_retrieved=stock.start)
            t = time.perf_counter()
            final = self.stock_filter.run(state, ranked, stock.prefetched)
        finally:
            stock.close()
        if trace is not None:
            trace.user, trace.context, trace.k, trace.final, trace.catalog = user, context, k, final, self.catalog
        stage_ms = state.stage_ms
        stage_ms["stock"] = (time.perf_counter() - t) * 1000 + stock.start_ms
        stage_ms["total"] = (time.perf_counter() - started) * 1000
        return Recommendation(
            user_id=user_id,
            request_id=request_id or str(uuid.uuid4()),
            items=self._items(final),
            model_version=self.versions.model_version,
            index_version=self.versions.index_version,
            stage_ms={name: round(ms, 3) for name, ms in stage_ms.items()},
            degraded=state.degraded,
            stage_errors=state.errors,
        )

    def rank(self, state: RequestState, *, started: float | None = None,
             on_retrieved: Callable[[Candidates], None] | None = None) -> Candidates:
        """Stages 1–3 (everything but the real-time stock check)."""
        return rank_candidates(self.retriever, self.reranker, self.fairness, state, started=started,
                               on_retrieved=on_retrieved)

    def set_stock(self, item_id: str, in_stock: bool, quantity: int | None) -> None:
        if self.catalog.row_of(item_id) is None:
            raise NotFoundError(f"unknown item_id {item_id!r}", field="item_id")
        self.stock.set_stock(item_id, in_stock, quantity)

    def _items(self, candidates: Candidates) -> list[RecommendedItem]:
        catalog = self.catalog
        rows = candidates.rows
        item_ids = catalog.item_ids[rows].tolist()
        merchant_ids = catalog.merchant_ids[catalog.item_merchant[rows]].tolist()
        domains = [DOMAINS[d] for d in catalog.item_domain[rows].tolist()]
        scores = candidates.scores.tolist() if candidates.scores is not None else [0.0] * len(rows)
        flags = candidates.flags.tolist() if candidates.flags is not None else [0] * len(item_ids)
        reasons = [reasons_for(s, f) for s, f in zip(candidates.sources.tolist(), flags, strict=True)]
        return [
            RecommendedItem(item_id=i, merchant_id=m, domain=d, score=round(float(s), 6), rank=r + 1, reasons=why)
            for r, (i, m, d, s, why) in enumerate(zip(item_ids, merchant_ids, domains, scores, reasons, strict=True))
        ]



def rank_candidates(retriever: Retriever, reranker: Reranker, fairness: FairnessDiversity | None,
                    state: RequestState, *, started: float | None = None,
                    on_retrieved: Callable[[Candidates], None] | None = None) -> Candidates:
    """Retrieve, re-rank, then fairness/diversity (skipped when ``fairness`` is None); each stage's ms, what fell
    back and what failed with a bug go into ``state`` (see ``tastebud.pipeline.stages.failures``).

    The one implementation of stages 1–3, used by the service and by offline evaluation. ``on_retrieved`` sees
    stage 1's candidates before ranking starts (the service starts the stock lookup there); its time is not counted
    in any stage here.
    """
    trace = state.trace
    t0 = started if started is not None else time.perf_counter()
    candidates = retriever.run(state)
    t1 = time.perf_counter()
    retrieve_ms = (t1 - t0) * 1000
    if on_retrieved is not None:
        on_retrieved(candidates)
        t1 = time.perf_counter()
    if trace is not None:  # the re-ranker sets ``scores`` on its input: keep stage 1's view apart
        trace.retrieved = Candidates(candidates.rows, candidates.retrieval_scores, candidates.sources)
    candidates = reranker.run(state, candidates)
    t2 = time.perf_counter()
    if trace is not None:
        trace.rerank_scores = candidates.scores
    if fairness is not None:
        candidates = fairness.run(state, candidates, slots=2 * state.k + 10)
    else:
        assert candidates.scores is not None
        candidates = candidates.take(np.argsort(-candidates.scores, kind="stable"))
    t3 = time.perf_counter()
    if trace is not None:
        trace.ranked = candidates
    state.stage_ms.update(retrieve=retrieve_ms, rerank=(t2 - t1) * 1000, fairness=(t3 - t2) * 1000)
    return candidates


class _StockPrefetcher:
    """Starts the stock lookup of stage 1's candidates (``start``) and remembers it for stage 4."""

    def __init__(self, stock_filter: StockFilter) -> None:
        self._stock_filter = stock_filter
        self.prefetched: StockPrefetch | None = None
        self.start_ms = 0.0

    def start(self, candidates: Candidates) -> None:
        started = time.perf_counter()
        self.prefetched = self._stock_filter.prefetch(candidates)
        self.start_ms = (time.perf_counter() - started) * 1000

    def close(self) -> None:
        if self.prefetched is not None:
            self.prefetched.close()
