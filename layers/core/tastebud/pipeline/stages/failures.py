"""What a stage does when it fails: an outage degrades it quietly, a bug is logged with its stack AND counted.

A ``DependencyError`` is an outage of a backing service (its adapter already said what failed, and a circuit
breaker keeps it from costing a timeout per request): the stage falls back and is listed in ``degraded``.
Anything else raised inside a stage is a bug: the same fallback keeps the page served, but the exception is logged
with its stack (``logger.exception``) and the stage is appended to ``errors``, which the service reports as
``Recommendation.stage_errors`` and the metrics count as ``tastebud_stage_errors_total{stage}``.
"""

from __future__ import annotations

import logging


def record_stage_bug(logger: logging.Logger, stage: str, degraded: list[str], errors: list[str] | None) -> None:
    """Call inside an ``except`` block: logs the active exception with its stack, degrades and counts the stage."""
    logger.exception("%s stage failed with an unexpected error (a bug, not an outage); serving its fallback", stage,
                     extra={"stage": stage, "stage_error": True})
    if stage not in degraded:
        degraded.append(stage)
    if errors is not None:
        errors.append(stage)
