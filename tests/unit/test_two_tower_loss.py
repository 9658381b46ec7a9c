"""The hybrid-negative softmax loss against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from tastebud_training.two_tower.loss import hybrid_softmax_loss

U = tf.constant([[1.0, 0.0], [0.0, 1.0]])
V = tf.constant([[1.0, 0.0], [0.0, 1.0]])
IDS = tf.constant([1, 2])
LOG_Q = tf.constant([math.log(0.5), math.log(0.25)])


def ce(logits: list[float], label: int) -> float:
    return math.log(sum(math.exp(x) for x in logits)) - logits[label]


def test_in_batch_softmax_without_correction() -> None:
    loss = hybrid_softmax_loss(U, V, IDS, LOG_Q, 1.0, use_logq=False)
    assert float(loss) == pytest.approx((ce([1, 0], 0) + ce([0, 1], 1)) / 2, rel=1e-6)


def test_logq_correction_subtracts_log_sampling_probability_per_candidate() -> None:
    # logits[i, j] = <u_i, v_j> - log q_j
    row0 = [1 - math.log(0.5), 0 - math.log(0.25)]
    row1 = [0 - math.log(0.5), 1 - math.log(0.25)]
    loss = hybrid_softmax_loss(U, V, IDS, LOG_Q, 1.0, use_logq=True)
    assert float(loss) == pytest.approx((ce(row0, 0) + ce(row1, 1)) / 2, rel=1e-6)


def test_logq_lowers_the_loss_when_the_positive_is_a_rare_item() -> None:
    """Rare positives are under-sampled as in-batch negatives; the correction boosts their logits relative
    to popular ones, so the same embeddings give a lower loss for the rare positive's example."""
    both = tf.constant([[1.0, 0.0], [1.0, 0.0]])
    items = tf.constant([[1.0, 0.0], [1.0, 0.0]])
    rare_first = hybrid_softmax_loss(both[:1], items[:1], tf.constant([1]), tf.constant([math.log(0.01)]), 1.0)
    assert float(rare_first) == pytest.approx(0.0, abs=1e-6)  # a single example: only its own logit
    log_q = tf.constant([math.log(0.01), math.log(0.9)])
    per_example = [ce([1 - math.log(0.01), 1 - math.log(0.9)], 0), ce([1 - math.log(0.01), 1 - math.log(0.9)], 1)]
    assert per_example[0] < per_example[1]
    loss = hybrid_softmax_loss(both, items, tf.constant([1, 2]), log_q, 1.0)
    assert float(loss) == pytest.approx(sum(per_example) / 2, rel=1e-6)


def test_temperature_scales_logits() -> None:
    loss = hybrid_softmax_loss(U, V, IDS, LOG_Q, 0.5, use_logq=False)
    assert float(loss) == pytest.approx((ce([2, 0], 0) + ce([0, 2], 1)) / 2, rel=1e-6)


def test_accidental_hits_are_not_negatives() -> None:
    same_item = tf.constant([7, 7])
    assert float(hybrid_softmax_loss(U, V, same_item, LOG_Q, 1.0)) == pytest.approx(0.0, abs=1e-6)
    kept = hybrid_softmax_loss(U, V, same_item, LOG_Q, 1.0, use_logq=False, remove_accidental_hits=False)
    assert float(kept) > 0.1


def test_hard_negatives_join_the_softmax_and_padding_is_ignored() -> None:
    user, item = tf.constant([[1.0, 0.0]]), tf.constant([[1.0, 0.0]])
    hard = tf.constant([[[0.0, 1.0], [0.5, 0.5]]])
    one = hybrid_softmax_loss(user, item, tf.constant([1]), tf.constant([0.0]), 1.0, hard=hard,
                              hard_mask=tf.constant([[1.0, 0.0]]))
    assert float(one) == pytest.approx(ce([1, 0], 0), rel=1e-6)
    both = hybrid_softmax_loss(user, item, tf.constant([1]), tf.constant([0.0]), 1.0, hard=hard,
                               hard_mask=tf.constant([[1.0, 1.0]]))
    assert float(both) == pytest.approx(ce([1, 0, 0.5], 0), rel=1e-6)


def test_gradient_pulls_user_towards_positive() -> None:
    user = tf.Variable([[0.6, 0.8]])
    items = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    with tf.GradientTape() as tape:
        loss = hybrid_softmax_loss(tf.concat([user, user], 0), items, tf.constant([1, 2]), tf.zeros(2), 1.0)
    grad = tape.gradient(loss, user).numpy()
    assert np.all(np.isfinite(grad))
