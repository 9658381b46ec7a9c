"""Stage 2 — re-rank: cross features for all candidates at once, scored by the XGBoost ranker (ONNX)."""

from __future__ import annotations

import logging

import numpy as np

from tastebud.catalog import Catalog
from tastebud.domain import Candidates
from tastebud.errors import DependencyError
from tastebud.features.ranker_features import ranker_features
from tastebud.pipeline.stages.failures import record_stage_bug
from tastebud.ports import Ranker
from tastebud.recommendation import RequestState

logger = logging.getLogger(__name__)


class Reranker:
    def __init__(self, catalog: Catalog, ranker: Ranker) -> None:
        self._catalog = catalog
        self._ranker = ranker

    def run(self, state: RequestState, candidates: Candidates) -> Candidates:
        """Attach ranker scores; on ranker failure keep the retrieval order and mark the stage degraded ("rerank" in
        ``state.degraded``, and in ``state.errors`` when the failure was a bug, anything but a DependencyError)."""
        if not len(candidates):
            candidates.scores = np.zeros(0, dtype=np.float32)
            return candidates
        try:
            features = ranker_features(self._catalog, state.user, candidates, state.context)
            candidates.scores = self._ranker.score(features)
        except DependencyError as exc:  # a remote ranker's outage: one line, no stack
            logger.warning("rerank stage degraded, serving retrieval order: %s", exc)
            state.degraded.append("rerank")
            candidates.scores = _retrieval_order(len(candidates))
        except Exception:  # a bug or a broken session: logged with its stack and counted; retrieval order is served
            record_stage_bug(logger, "rerank", state.degraded, state.errors)
            candidates.scores = _retrieval_order(len(candidates))
        return candidates


def _retrieval_order(n: int) -> np.ndarray:
    """Retrieval order is a reasonable ranking: ANN best first, then history, then popular."""
    return -np.arange(n, dtype=np.float32)
