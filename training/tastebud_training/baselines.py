"""Baselines evaluated on the same split as Tastebud: popularity, the user's own history, iALS (implicit)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from tastebud.adapters.embedded.user_table import UserTable
from tastebud.catalog import Catalog


class Recommender(Protocol):
    """What `tastebud evaluate` asks of a baseline: the top ``k`` catalog rows for a user-table row (None: a
    user unknown before the cutoff, who gets a cold-start list)."""

    def recommend(self, user_index: int | None, k: int) -> np.ndarray: ...


class PopularityBaseline:
    def __init__(self, catalog: Catalog) -> None:
        self._order = catalog.popular_rows("all")

    def recommend(self, user_index: int | None, k: int) -> np.ndarray:
        return self._order[:k]


class PersonalHistoryBaseline:
    """The user's own most-ordered items (graded weight, then recency), padded with popular items."""

    def __init__(self, users: UserTable, catalog: Catalog) -> None:
        self._users = users
        self._popular = catalog.popular_rows("all")

    def recommend(self, user_index: int | None, k: int) -> np.ndarray:
        if user_index is None:
            return self._popular[:k]
        start, end = self._users.offsets[user_index], self._users.offsets[user_index + 1]
        rows = self._users.history_rows[start:end]
        weights = self._users.history_weights[start:end]
        own = rows[np.argsort(-weights, kind="stable")]  # stable: ties keep most-recent-first order
        head = self._popular[: k + own.size]
        padding = head[~np.isin(head, own)] if own.size < k else own[:0]
        return np.concatenate([own, padding])[:k]


class IALSBaseline:
    """Implicit ALS (Hu, Koren, Volinsky 2008) from the `implicit` package on graded positive weights."""

    def __init__(self, users: UserTable, catalog: Catalog, *, factors: int = 64, iterations: int = 15,
                 regularization: float = 0.05, alpha: float = 10.0, seed: int = 7) -> None:
        from implicit.als import AlternatingLeastSquares

        n_users, n_items = users.size, catalog.size
        user_of_entry = np.repeat(np.arange(n_users), np.diff(users.offsets))
        self._matrix = sp.csr_matrix(
            (users.history_weights.astype(np.float32), (user_of_entry, users.history_rows)), shape=(n_users, n_items)
        )
        with threadpool_limits(1, "blas"):  # implicit's ALS runs its own threads; a BLAS pool only contends
            self._model = AlternatingLeastSquares(factors=factors, iterations=iterations,
                                                  regularization=regularization, alpha=alpha, random_state=seed,
                                                  num_threads=1)
            self._model.fit(self._matrix, show_progress=False)
        self._popular = catalog.popular_rows("all")

    def recommend(self, user_index: int | None, k: int) -> np.ndarray:
        if user_index is None or self._matrix[user_index].nnz == 0:
            return self._popular[:k]
        ids, _ = self._model.recommend(user_index, self._matrix[user_index], N=k, filter_already_liked_items=False)
        return np.asarray(ids, dtype=np.int64)

