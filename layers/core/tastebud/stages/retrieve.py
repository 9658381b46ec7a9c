"""Stage 1 — retrieve ~200 candidates: ANN over item embeddings, plus the user's re-order items and popular ones.

Three sources are merged (deduplicated, source bits OR-ed): the k-NN neighbours of the user's query
vector, the user's own recent items (food is re-ordered) and the most popular items of the domain (the
cold-start source and a safety net). The ranker learns how much each source is worth.
"""

from __future__ import annotations

import numpy as np

from tastebud.catalog import DOMAIN_CODE, Catalog
from tastebud.domain import SOURCE_ANN, SOURCE_HISTORY, SOURCE_POPULAR, Candidates, RequestContext, UserProfile
from tastebud.errors import DependencyError
from tastebud.ports import CandidateIndex, UserEncoder
from tastebud.settings import ServingKnobs


class Retriever:
    def __init__(self, catalog: Catalog, encoder: UserEncoder, index: CandidateIndex, knobs: ServingKnobs) -> None:
        self._catalog = catalog
        self._encoder = encoder
        self._index = index
        self._knobs = knobs

    @property
    def encoder(self) -> UserEncoder:
        return self._encoder

    @property
    def index(self) -> CandidateIndex:
        return self._index

    def with_knobs(self, knobs: ServingKnobs) -> Retriever:
        return Retriever(self._catalog, self._encoder, self._index, knobs)

    def run(self, user: UserProfile, context: RequestContext, degraded: list[str]) -> Candidates:
        """Return merged candidates; an encoder/index failure degrades to history + popularity."""
        knobs = self._knobs
        domain = context.domain
        parts_rows: list[np.ndarray] = []
        parts_scores: list[np.ndarray] = []
        parts_sources: list[np.ndarray] = []

        ann_count = 0
        try:
            query = self._encoder.encode(user, context)
            if query is not None:
                fetch = knobs.retrieve_k * (knobs.domain_overfetch if domain != "all" else 1)
                rows, scores = self._index.search(query, fetch, domain=domain)
                ann_count = rows.size
                parts_rows.append(rows)
                parts_scores.append(scores)
                parts_sources.append(np.full(rows.size, SOURCE_ANN, dtype=np.int8))
        except DependencyError:
            degraded.append("retrieve")
        except Exception:  # an adapter bug must not take the page down either; the stage degrades
            degraded.append("retrieve")

        history = user.history_rows[: knobs.history_candidates]
        parts_rows.append(history)
        parts_scores.append(np.full(history.size, np.nan, dtype=np.float32))
        parts_sources.append(np.full(history.size, SOURCE_HISTORY, dtype=np.int8))

        # Without ANN results popularity fills the whole candidate set (cold start or degraded retrieval).
        n_popular = knobs.popular_candidates if ann_count else knobs.retrieve_k
        popular = self._catalog.popular_rows(domain)[: n_popular * 2]
        parts_rows.append(popular)
        parts_scores.append(np.full(popular.size, np.nan, dtype=np.float32))
        parts_sources.append(np.full(popular.size, SOURCE_POPULAR, dtype=np.int8))

        rows = np.concatenate(parts_rows)
        scores = np.concatenate(parts_scores)
        sources = np.concatenate(parts_sources)
        keep = self._available(rows, context)
        rows, scores, sources = rows[keep], scores[keep], sources[keep]

        unique_rows, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
        merged_sources = np.zeros(unique_rows.size, dtype=np.int8)
        np.bitwise_or.at(merged_sources, inverse, sources)
        order = np.argsort(first, kind="stable")  # keep the order of first appearance: ANN rank, then others
        unique_rows, first, merged_sources = unique_rows[order], first[order], merged_sources[order]
        candidates = Candidates(rows=unique_rows, retrieval_scores=scores[first], sources=merged_sources)
        limit = knobs.retrieve_k + knobs.history_candidates + knobs.popular_candidates
        return candidates.take(np.arange(min(limit, len(candidates))))

    def _available(self, rows: np.ndarray, context: RequestContext) -> np.ndarray:
        """Mask of rows in the requested domain, already created, and not excluded by the caller."""
        catalog = self._catalog
        keep = ~(catalog.item_created_at[rows] > context.now)  # NaN (unknown) counts as available
        if context.domain != "all":
            keep &= catalog.item_domain[rows] == DOMAIN_CODE[context.domain]
        if context.exclude_item_ids:
            keep &= ~np.isin(rows, catalog.rows_of(context.exclude_item_ids))
        return keep
