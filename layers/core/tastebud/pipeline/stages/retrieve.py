"""Stage 1 — retrieve ~200 candidates: ANN over item embeddings, plus the user's re-order items and popular ones.

Sources are merged (deduplicated, source bits OR-ed): the k-NN neighbours of the user's query vector from the
ANN index and from the fresh-items side index (items added since the index was built), the user's own recent
items (food is re-ordered) and the most popular items of the domain (the cold-start source and a safety net).
The ranker learns how much each source is worth.

What cannot be served is removed HERE, before later stages over-fetch: deleted items, items not created yet,
closed merchants and merchants that do not deliver to the request's location (or else the user's home).
When that removes many ANN neighbours, the index is asked again for more.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from tastebud.catalog import DOMAIN_CODE, Catalog
from tastebud.domain import (
    SOURCE_ANN,
    SOURCE_FRESH,
    SOURCE_HISTORY,
    SOURCE_POPULAR,
    SOURCE_RELATED,
    SOURCE_SIMILAR,
    Candidates,
    RequestContext,
    UserProfile,
)
from tastebud.errors import DependencyError
from tastebud.features.history import PURCHASES
from tastebud.features.ranker_features import haversine_km
from tastebud.features.repeat import RELATED_HISTORY
from tastebud.features.same_shoppers import SameShoppers, same_shoppers, same_shoppers_of
from tastebud.fresh_index import EMPTY_FRESH_INDEX, FreshItemsIndex
from tastebud.pipeline.stages.failures import record_stage_bug
from tastebud.ports import CandidateIndex, UserEncoder
from tastebud.recommendation import RequestState
from tastebud.settings import ServingKnobs

logger = logging.getLogger(__name__)
# Ask the ANN index for at most this many neighbours when filters remove most of the first answer.
MAX_ANN_FETCH = 4000


class Retriever:
    def __init__(self, catalog: Catalog, encoder: UserEncoder, index: CandidateIndex, knobs: ServingKnobs,
                 fresh: FreshItemsIndex = EMPTY_FRESH_INDEX) -> None:
        self._catalog = catalog
        self._encoder = encoder
        self._index = index
        self._knobs = knobs
        self._fresh = fresh

    @property
    def encoder(self) -> UserEncoder:
        return self._encoder

    @property
    def index(self) -> CandidateIndex:
        return self._index

    @property
    def fresh(self) -> FreshItemsIndex:
        return self._fresh

    def with_knobs(self, knobs: ServingKnobs) -> Retriever:
        return Retriever(self._catalog, self._encoder, self._index, knobs, self._fresh)

    def run(self, state: RequestState) -> Candidates:
        """Return merged candidates; an encoder/index failure degrades to history + popularity ("retrieve" in
        ``state.degraded``, and in ``state.errors`` when it was a bug, not a DependencyError).

        When traced, ``state.trace.timings`` receives the sub-stage times in ms: ``user_tower`` (the query
        embedding) and ``knn`` (ANN + fresh-items search, re-asks included); a sub-stage that did not run is absent.
        """
        user, context, knobs = state.user, state.context, self._knobs
        location = (context.lat, context.lon) if not np.isnan(context.lat) else (user.home_lat, user.home_lon)
        parts = [self._ann(state, location)]
        ann_count = parts[0][0].size
        similar = same_shoppers(self._catalog, user, context.now)
        for rows, source in ((history_candidates(user, knobs.history_candidates), SOURCE_HISTORY),
                             (self._bought_together(user, knobs.related_candidates), SOURCE_RELATED),
                             (_unbought(similar, user, knobs.similar_candidates), SOURCE_SIMILAR)):
            parts.append(_unscored(rows, source))
        # Without ANN results popularity fills the whole candidate set (cold start or degraded retrieval).
        n_popular = knobs.popular_candidates if ann_count else knobs.retrieve_k
        parts.append(_unscored(self._first_available(self._catalog.popular_rows(context.domain), n_popular * 2,
                                                     context, location), SOURCE_POPULAR))

        rows, scores, sources = (np.concatenate(part) for part in zip(*parts, strict=True))
        keep = self._available(rows, context, location)
        rows, scores, sources = rows[keep], scores[keep], sources[keep]
        unique_rows, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
        merged_sources = np.zeros(unique_rows.size, dtype=np.int8)
        np.bitwise_or.at(merged_sources, inverse, sources)
        order = np.argsort(first, kind="stable")  # keep the order of first appearance: ANN rank, then others
        unique_rows, first, merged_sources = unique_rows[order], first[order], merged_sources[order]
        limit = (knobs.retrieve_k + knobs.fresh_candidates + knobs.history_candidates + knobs.related_candidates
                 + knobs.similar_candidates + knobs.popular_candidates)
        kept = unique_rows[:limit]
        return Candidates(rows=kept, retrieval_scores=scores[first[:limit]], sources=merged_sources[:limit],
                          same_shoppers=same_shoppers_of(similar, kept))

    def _ann(self, state: RequestState, location: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, scores, sources) of the user tower's nearest items; empty when the tower or the index failed."""
        user, context = state.user, state.context
        timings = None if state.trace is None else state.trace.timings
        try:
            t0 = time.perf_counter()
            query = self._encoder.encode(user, context)
            t1 = time.perf_counter()
            if timings is not None:
                timings["user_tower"] = (t1 - t0) * 1000
            if query is not None:
                found = self._neighbours(query, context, location)
                if timings is not None:
                    timings["knn"] = (time.perf_counter() - t1) * 1000
                return found
        except DependencyError:  # an outage: the adapter (and its circuit breaker) already said what failed
            state.degraded.append("retrieve")
        except Exception:  # a bug, not an outage: logged with its stack and counted; the page is still served
            record_stage_bug(logger, "retrieve", state.degraded, state.errors)
        return _unscored(np.zeros(0, np.int64), SOURCE_ANN)

    def _bought_together(self, user: UserProfile, n: int) -> np.ndarray:
        """Items most often bought in the same basket as the user's recent purchases (the habit's next item)."""
        if n <= 0 or user.history_repeat.shape[0] != user.history_rows.size:
            return np.zeros(0, dtype=np.int64)
        recent = user.history_rows[user.history_repeat[:, PURCHASES] > 0][:RELATED_HISTORY]
        _, partners, scores = self._catalog.related(recent)
        if not partners.size:
            return partners
        unique, inverse = np.unique(partners, return_inverse=True)
        summed = np.bincount(inverse, weights=scores)
        return unique[np.argsort(-summed, kind="stable")[:n]]

    def _neighbours(self, query: np.ndarray, context: RequestContext,
                    location: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ANN + fresh-items neighbours that can be served, best first; asks for more when filters bite.

        At most ``retrieve_k`` ANN neighbours (a re-ask must not crowd the other sources out of the set) plus at
        most ``fresh_candidates`` fresh items: new items compete for their own places instead of losing every one
        to long-known twins whose id embeddings carry their popularity.
        """
        knobs = self._knobs
        needed = knobs.retrieve_k * (knobs.domain_overfetch if context.domain != "all" else 1)
        fetch = min(MAX_ANN_FETCH, max(needed, int(np.ceil(needed * knobs.ann_overfetch))))
        while True:
            rows, scores = self._index.search(query, fetch, domain=context.domain)
            exhausted = rows.size < fetch
            keep = np.flatnonzero(self._available(rows, context, location))[: knobs.retrieve_k]
            if keep.size >= knobs.retrieve_k or exhausted or fetch >= MAX_ANN_FETCH:
                break
            fetch = min(fetch * 4, MAX_ANN_FETCH)
        rows, scores = rows[keep], scores[keep]
        sources = np.full(rows.size, SOURCE_ANN, dtype=np.int8)
        if len(self._fresh) and knobs.fresh_candidates > 0:
            fresh_rows, fresh_scores = self._fresh.search(query, 4 * knobs.fresh_candidates)
            fresh = np.flatnonzero(self._available(fresh_rows, context, location))[: knobs.fresh_candidates]
            rows = np.concatenate([rows, fresh_rows[fresh]])
            scores = np.concatenate([scores, fresh_scores[fresh]])
            sources = np.concatenate([sources, np.full(fresh.size, SOURCE_ANN | SOURCE_FRESH, np.int8)])
            order = np.argsort(-scores, kind="stable")
            rows, scores, sources = rows[order], scores[order], sources[order]
        return rows, scores, sources

    def _first_available(self, order: np.ndarray, n: int, context: RequestContext,
                         location: tuple[float, float]) -> np.ndarray:
        """The first ``n`` rows of ``order`` that can be served (looks further only when it must)."""
        window = max(4 * n, 64)
        while True:
            head = order[:window]
            picked = head[self._available(head, context, location)][:n]
            if picked.size >= n or window >= order.size:
                return picked
            window *= 8

    def _available(self, rows: np.ndarray, context: RequestContext, location: tuple[float, float]) -> np.ndarray:
        """Mask of rows that can be served: enabled, created, in the domain, open, delivering here, not excluded."""
        catalog = self._catalog
        keep = catalog.item_enabled[rows] & ~(catalog.item_created_at[rows] > context.now)  # NaN (unknown) is ok
        merchants = catalog.item_merchant[rows]
        keep &= catalog.merchant_open[merchants]
        lat, lon = location
        if not (np.isnan(lat) or np.isnan(lon)):
            distance = haversine_km(lat, lon, catalog.merchant_lat[merchants], catalog.merchant_lon[merchants])
            keep &= ~(distance > catalog.merchant_radius_km[merchants])  # unknown merchant location: keep
        if context.domain != "all":
            keep &= catalog.item_domain[rows] == DOMAIN_CODE[context.domain]
        if context.exclude_item_ids:
            keep &= ~np.isin(rows, catalog.rows_of(context.exclude_item_ids))
        return keep


def history_candidates(user: UserProfile, n: int) -> np.ndarray:
    """The user's re-order candidates: half the most recent items, the rest the most-bought of the older ones."""
    rows = user.history_rows
    if rows.size <= n:
        return rows
    recent = n // 2
    older = recent + np.argsort(-user.history_weights[recent:], kind="stable")[: n - recent]
    return np.concatenate([rows[:recent], rows[older]])


def _unbought(similar: SameShoppers, user: UserProfile, n: int) -> np.ndarray:
    """The ``n`` items the user has not bought with the best item-kNN score, best first (the explore candidates)."""
    rows, scores = similar
    if n <= 0 or not rows.size:
        return np.zeros(0, dtype=np.int64)
    bought = np.sort(user.history_rows[user.history_repeat[:, PURCHASES] > 0])
    if bought.size:  # both sorted: a searchsorted finds the bought ones
        pos = np.minimum(np.searchsorted(bought, rows), bought.size - 1)
        unseen = bought[pos] != rows
        rows, scores = rows[unseen], scores[unseen]
    if rows.size > n:
        top = np.argpartition(-scores, n - 1)[:n]
        rows, scores = rows[top], scores[top]
    return rows[np.argsort(-scores, kind="stable")]


def _unscored(rows: np.ndarray, source: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates of a source without a retrieval score (history, co-purchases, popularity ...)."""
    return rows, np.full(rows.size, np.nan, dtype=np.float32), np.full(rows.size, source, dtype=np.int8)
