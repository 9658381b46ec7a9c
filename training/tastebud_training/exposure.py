"""Fairness audit: how much of the top of each list goes to emerging merchants (new, or less popular).

"Emerging" is the serving definition (``tastebud.pipeline.stages.fairness.emerging_merchants``), evaluated at each test
request's time, so the audit measures exactly what the exposure floor enforces.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tastebud.catalog import Catalog
from tastebud.pipeline.stages.fairness import emerging_merchants
from tastebud.settings import ServingKnobs

EXPOSURE_K = 20


def exposure_share(lists: Sequence[np.ndarray], request_ts: Sequence[float] | np.ndarray, catalog: Catalog,
                   knobs: ServingKnobs, k: int = EXPOSURE_K) -> float:
    """Mean share of the top-``k`` slots that show an emerging merchant's item (empty lists count as 0)."""
    shares = []
    for ranked, now in zip(lists, request_ts, strict=True):
        top = np.asarray(ranked[:k], dtype=np.int64)
        if top.size == 0:
            shares.append(0.0)
            continue
        shares.append(float(emerging_merchants(catalog, knobs, catalog.item_merchant[top], float(now)).sum()) / k)
    return float(np.mean(shares)) if shares else 0.0
