"""Softmax cross-entropy over hybrid negatives (Yi et al. 2019, "Sampling-bias-corrected neural modeling").

For a batch of B (user, positive item) pairs the logits of user i are
    s(i, j) = <u_i, v_j> / T - log q_j          for every item j of the batch (in-batch negatives)
    s(i, h) = <u_i, w_ih> / T                   for the hard negatives h of example i (shown, not clicked)
and the loss is the cross-entropy with the positive j = i as the label. ``q_j`` is the probability that
item j appears in a batch as a positive (its share of the training stream): popular items are sampled
as negatives more often, and subtracting log q undoes that bias. Where item j of the batch IS the item of
example i (j != i, an "accidental hit"), the logit is masked out, since it is not a negative. Hard
negatives were not sampled by popularity, so they get no correction.
"""

from __future__ import annotations

import tensorflow as tf

MASKED = -1e9


def hybrid_softmax_loss(user: tf.Tensor, item: tf.Tensor, item_ids: tf.Tensor, log_q: tf.Tensor,
                        temperature: tf.Tensor | float, *, hard: tf.Tensor | None = None,
                        hard_mask: tf.Tensor | None = None, use_logq: bool = True,
                        remove_accidental_hits: bool = True) -> tf.Tensor:
    """Mean cross-entropy per example.

    Args:
        user: [B, D] user embeddings.
        item: [B, D] embeddings of each example's positive item.
        item_ids: [B] int ids of the positive items (to find accidental hits).
        log_q: [B] log sampling probability of each positive item.
        temperature: softmax temperature T.
        hard: [B, H, D] hard-negative item embeddings, or None.
        hard_mask: [B, H] 1.0 where a hard negative exists, 0.0 for padding.
        use_logq: subtract log q from in-batch logits (the ablation switches it off).
        remove_accidental_hits: mask other examples that share the positive item.
    """
    logits = tf.matmul(user, item, transpose_b=True) / temperature
    if use_logq:
        logits = logits - log_q[tf.newaxis, :]
    if remove_accidental_hits:
        same = tf.equal(item_ids[:, tf.newaxis], item_ids[tf.newaxis, :])
        not_self = tf.logical_not(tf.eye(tf.shape(item_ids)[0], dtype=tf.bool))
        logits = tf.where(tf.logical_and(same, not_self), tf.cast(MASKED, logits.dtype), logits)
    if hard is not None:
        hard_logits = tf.einsum("bd,bhd->bh", user, hard) / temperature
        if hard_mask is not None:
            hard_logits = tf.where(hard_mask > 0, hard_logits, tf.cast(MASKED, hard_logits.dtype))
        logits = tf.concat([logits, hard_logits], axis=1)
    labels = tf.range(tf.shape(user)[0])
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
