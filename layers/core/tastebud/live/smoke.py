"""A version serves only if it answers real requests: known users and a cold one, full pages, nothing degraded."""

from __future__ import annotations

import numpy as np

from tastebud.domain import RequestContext
from tastebud.live.view import LiveView
from tastebud.recommendation import RequestState

SMOKE_USERS = 3  # known users asked for a page before a version may serve (plus one cold user)
COLD_USER = "__tastebud_smoke_cold_user__"


def smoke_test(view: LiveView) -> None:
    """Raises RuntimeError naming what failed."""
    users = view.version.users
    ids = [str(u) for u in users.user_ids[:SMOKE_USERS].tolist()] + [COLD_USER]
    context = RequestContext(now=view.version.catalog.as_of)
    for user_id in ids:
        state = RequestState(view.profile(user_id, []), context, 10)
        candidates = view.service.rank(state)
        if state.degraded:
            raise RuntimeError(f"smoke test: stages {', '.join(state.degraded)} degraded for user {user_id!r}")
        if not len(candidates) or candidates.scores is None or not np.isfinite(candidates.scores).all():
            raise RuntimeError(f"smoke test: no finite-scored candidates for user {user_id!r}")
        if int(candidates.rows.max()) >= view.catalog.size:
            raise RuntimeError("smoke test: the index returned rows beyond the catalog (index and catalog differ)")
