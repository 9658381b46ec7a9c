"""Stage 2 — re-rank: cross features for all candidates at once, scored by the XGBoost ranker (ONNX)."""

from __future__ import annotations

import logging

import numpy as np

from tastebud.catalog import Catalog
from tastebud.domain import Candidates, RequestContext, UserProfile
from tastebud.errors import DependencyError
from tastebud.features.ranker_features import ranker_features
from tastebud.pipeline.stages.failures import record_stage_bug
from tastebud.ports import Ranker

logger = logging.getLogger(__name__)


class Reranker:
    def __init__(self, catalog: Catalog, ranker: Ranker) -> None:
        self._catalog = catalog
        self._ranker = ranker

    def run(self, user: UserProfile, context: RequestContext, candidates: Candidates,
            degraded: list[str], errors: list[str] | None = None) -> Candidates:
        """Attach ranker scores; on ranker failure keep the retrieval order and mark the stage degraded.

        ``errors``: when given, receives ``"rerank"`` if the failure was a bug (anything but a DependencyError).
        """
        if not len(candidates):
            candidates.scores = np.zeros(0, dtype=np.float32)
            return candidates
        try:
            features = ranker_features(self._catalog, user, candidates, context)
            candidates.scores = self._ranker.score(features)
        except DependencyError as exc:  # a remote ranker's outage: one line, no stack
            logger.warning("rerank stage degraded, serving retrieval order: %s", exc)
            degraded.append("rerank")
            candidates.scores = _retrieval_order(len(candidates))
        except Exception:  # a bug or a broken session: logged with its stack and counted; retrieval order is served
            record_stage_bug(logger, "rerank", degraded, errors)
            candidates.scores = _retrieval_order(len(candidates))
        return candidates


def _retrieval_order(n: int) -> np.ndarray:
    """Retrieval order is a reasonable ranking: ANN best first, then history, then popular."""
    return -np.arange(n, dtype=np.float32)
