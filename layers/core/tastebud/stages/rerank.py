"""Stage 2 — re-rank: cross features for all candidates at once, scored by the XGBoost ranker (ONNX)."""

from __future__ import annotations

import logging

import numpy as np

from tastebud.catalog import Catalog
from tastebud.domain import Candidates, RequestContext, UserProfile
from tastebud.features import ranker_features
from tastebud.ports import Ranker

logger = logging.getLogger(__name__)


class Reranker:
    def __init__(self, catalog: Catalog, ranker: Ranker) -> None:
        self._catalog = catalog
        self._ranker = ranker

    def run(self, user: UserProfile, context: RequestContext, candidates: Candidates,
            degraded: list[str]) -> Candidates:
        """Attach ranker scores; on ranker failure keep the retrieval order and mark the stage degraded."""
        if not len(candidates):
            candidates.scores = np.zeros(0, dtype=np.float32)
            return candidates
        try:
            features = ranker_features(self._catalog, user, candidates, context)
            candidates.scores = self._ranker.score(features)
        except Exception:  # a bug or a broken session: logged with its stack; retrieval order is served
            logger.exception("rerank stage failed")
            degraded.append("rerank")
            # Retrieval order is a reasonable ranking: ANN best first, then history, then popular.
            candidates.scores = -np.arange(len(candidates), dtype=np.float32)
        return candidates
