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


EASE_DEFAULT_L2 = 500.0
# A dense float32 Gram matrix of N items is 4·N² bytes and is inverted in place (12,000 items: 0.58 GB,
# 20,000: 1.6 GB, plus LAPACK's workspace). Larger catalogs keep their N most popular items (see EASEBaseline).
EASE_MAX_ITEMS = 20_000
GRAM_BLOCK = 1024  # columns of XᵀX computed at once (a users × 1024 dense block of X)


def ease_weights(interactions: sp.csr_matrix, l2: float) -> np.ndarray:
    """EASE's item-item weights (Steck 2019, "Embarrassingly Shallow Autoencoders"), closed form.

    B = I - P·diag(1/diag(P)) with P = (XᵀX + λI)⁻¹, i.e. B_ij = -P_ij / P_jj off the diagonal and diag(B) = 0:
    the ridge regression of every item's column on all other items' columns. ``interactions`` is the
    users × items matrix X; the result is a dense items × items float32 array (column j scores item j).
    """
    if l2 <= 0:
        raise ValueError(f"EASE needs a positive L2 regularisation λ, not {l2}")
    from scipy.linalg import inv

    n_items = interactions.shape[1]
    by_item = interactions.tocsc().astype(np.float32)
    gram = np.empty((n_items, n_items), dtype=np.float32)
    # XᵀX block by block of columns: a sparse XᵀX of co-purchases can hold most of the N² pairs, and with its
    # indices it would take twice the dense matrix's memory on top of it.
    for start in range(0, n_items, GRAM_BLOCK):
        block = by_item[:, start:start + GRAM_BLOCK].toarray()
        gram[:, start:start + GRAM_BLOCK] = by_item.T @ block
    gram[np.diag_indices_from(gram)] += np.float32(l2)
    # In place, so one N×N buffer holds XᵀX + λI, then P, then B: LAPACK works in Fortran order, and the Gram
    # matrix and P are symmetric, so a transposed view is the same matrix without a copy. The C-ordered view is
    # kept: recommend() gathers rows of B.
    inverse = inv(gram.T, overwrite_a=True, check_finite=False)
    weights = inverse if inverse.flags.c_contiguous else inverse.T
    weights /= -np.diag(weights)[np.newaxis, :]
    np.fill_diagonal(weights, 0.0)
    return weights


class EASEBaseline:
    """EASE (Steck 2019): a linear item-item model, closed form, on binary user × item positives.

    A user's scores are x_u · B over the items they had (a sum of a few rows of B). ``l2`` is λ: Steck reports
    hundreds to a few thousand on data sets of this size; 500 is the default here, not tuned per data set.
    Memory guard: when the catalog has more than ``max_items`` items, only the ``max_items`` items with the
    most users are modelled (the dense N×N inverse would not fit); the others are never scored by EASE and
    appear only in the popularity padding after its list.
    """

    def __init__(self, users: UserTable, catalog: Catalog, *, l2: float = EASE_DEFAULT_L2,
                 max_items: int = EASE_MAX_ITEMS) -> None:
        n_users, n_items = users.size, catalog.size
        user_of_entry = np.repeat(np.arange(n_users), np.diff(users.offsets))
        matrix = sp.csr_matrix((np.ones(users.history_rows.size, np.float32), (user_of_entry, users.history_rows)),
                               shape=(n_users, n_items))
        matrix.data[:] = 1.0  # binary: a repeated item counts once, as in the paper
        users_per_item = np.asarray(matrix.getnnz(axis=0))
        if n_items > max_items:
            # Most popular first; stable so ties keep catalog order (deterministic).
            self._items = np.sort(np.argsort(-users_per_item, kind="stable")[:max_items])
        else:
            self._items = np.arange(n_items)
        self._matrix = matrix[:, self._items].tocsr()
        self._weights = ease_weights(self._matrix, l2)
        self._popular = catalog.popular_rows("all")

    @property
    def modelled_items(self) -> np.ndarray:
        """Catalog rows EASE scores (all rows unless the catalog is larger than ``max_items``)."""
        return self._items

    def recommend(self, user_index: int | None, k: int) -> np.ndarray:
        if user_index is None or self._matrix[user_index].nnz == 0:
            return self._popular[:k]
        row = self._matrix[user_index]
        scores = row.data @ self._weights[row.indices]
        top = min(k, scores.size)
        best = np.argpartition(-scores, top - 1)[:top]
        ranked = self._items[best[np.argsort(-scores[best], kind="stable")]]
        if ranked.size >= k:
            return ranked
        head = self._popular[: k + ranked.size]
        return np.concatenate([ranked, head[~np.isin(head, ranked)]])[:k]
