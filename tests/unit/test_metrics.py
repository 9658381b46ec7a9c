from __future__ import annotations

import math

import pytest

from tastebud_training.metrics import ndcg_at, recall_at, summarise


def test_recall_divides_by_min_of_k_and_relevant() -> None:
    assert recall_at([1, 2, 3, 4], {2, 9}, 2) == 0.5
    assert recall_at([1, 2, 3, 4], {1, 2, 3, 4, 5, 6}, 2) == 1.0  # hits / min(K, |test|)
    assert recall_at([1], set(), 10) == 0.0


def test_ndcg_hand_computed() -> None:
    # hits at ranks 1 and 3: DCG = 1 + 1/log2(4); ideal for 2 relevant = 1 + 1/log2(3)
    expected = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at([7, 1, 8], {7, 8}, 3) == pytest.approx(expected)
    assert ndcg_at([7, 8], {7, 8}, 10) == pytest.approx(1.0)


def test_summarise_averages_over_users() -> None:
    out = summarise({"m": [[1, 2], [3, 4]]}, [{1}, {9}], ks=(1,))
    assert out["m"]["recall@1"] == 0.5
