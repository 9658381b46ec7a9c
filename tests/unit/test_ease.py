"""EASE baseline (Steck 2019): closed-form weights checked by hand and against per-item ridge regressions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tastebud.adapters.embedded.user_table import UserTable
from tastebud_training.baselines import EASEBaseline, ease_weights


def test_two_items_by_hand() -> None:
    # X = [[1,1],[1,0],[0,1]]: XᵀX = [[2,1],[1,2]]; with λ = 1, P = (1/8)[[3,-1],[-1,3]], so
    # B_01 = -P_01 / P_11 = (1/8) / (3/8) = 1/3, B_10 = 1/3, diag(B) = 0.
    x = sp.csr_matrix(np.array([[1, 1], [1, 0], [0, 1]], dtype=np.float32))
    np.testing.assert_allclose(ease_weights(x, l2=1.0), [[0.0, 1 / 3], [1 / 3, 0.0]], rtol=1e-6)


def test_each_column_is_a_ridge_regression_on_the_other_items() -> None:
    # The constrained problem min ||X - XB||² + λ||B||², diag(B) = 0, splits into one ridge regression per item j
    # on the other items' columns: B[-j, j] = (G[-j,-j] + λI)⁻¹ G[-j, j]. An independent check of the closed form.
    rng = np.random.default_rng(0)
    x = (rng.random((40, 6)) < 0.35).astype(np.float64)
    l2 = 2.5
    weights = ease_weights(sp.csr_matrix(x), l2)
    gram = x.T @ x
    for j in range(6):
        others = [i for i in range(6) if i != j]
        expected = np.linalg.solve(gram[np.ix_(others, others)] + l2 * np.eye(5), gram[others, j])
        np.testing.assert_allclose(weights[others, j], expected, rtol=1e-4, atol=1e-6)
        assert weights[j, j] == 0.0


def test_rejects_non_positive_l2() -> None:
    with pytest.raises(ValueError, match="positive"):
        ease_weights(sp.csr_matrix(np.eye(2, dtype=np.float32)), l2=0.0)


class _Catalog:
    """The two things EASEBaseline reads from a catalog."""

    def __init__(self, size: int, popular: list[int]) -> None:
        self.size = size
        self._popular = np.asarray(popular, dtype=np.int64)

    def popular_rows(self, domain: str = "all") -> np.ndarray:
        return self._popular


class _Users:
    """The CSR history arrays EASEBaseline reads from a user table (row i owns rows[offsets[i]:offsets[i+1]])."""

    def __init__(self, histories: list[list[int]]) -> None:
        self.size = len(histories)
        self.offsets = np.concatenate([[0], np.cumsum([len(h) for h in histories])]).astype(np.int64)
        self.history_rows = np.asarray([r for h in histories for r in h], dtype=np.int64)


def _users(histories: list[list[int]]) -> UserTable:
    return _Users(histories)  # type: ignore[return-value]


def test_recommends_co_purchased_items_then_pads_with_popular() -> None:
    # Items 0 and 1 are always bought together, 2 and 3 together; item 4 is never bought.
    users = _users([[0, 1], [0, 1], [0, 1], [2, 3], [2, 3], [0], []])
    baseline = EASEBaseline(users, _Catalog(5, popular=[4, 0, 1, 2, 3]), l2=0.5)  # type: ignore[arg-type]
    assert baseline.recommend(5, 1).tolist() == [1]  # bought 0 -> 1 first
    assert len(baseline.recommend(5, 5)) == 5 and set(baseline.recommend(5, 5).tolist()) == {0, 1, 2, 3, 4}
    assert baseline.recommend(6, 2).tolist() == [4, 0]  # no history: popularity
    assert baseline.recommend(None, 3).tolist() == [4, 0, 1]


def test_large_catalog_keeps_the_most_popular_items() -> None:
    users = _users([[0, 1], [0, 1], [1, 2], [3]])
    baseline = EASEBaseline(users, _Catalog(4, popular=[1, 0, 2, 3]), l2=1.0, max_items=2)  # type: ignore[arg-type]
    assert baseline.modelled_items.tolist() == [0, 1]  # 1 (3 users) and 0 (2 users)
    assert baseline.recommend(0, 1).tolist() == [1]
    assert set(baseline.recommend(3, 4).tolist()) == {0, 1, 2, 3}  # a user of an unmodelled item: padded
