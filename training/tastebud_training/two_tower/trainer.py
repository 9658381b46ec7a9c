"""Training loop for the two towers: hybrid-negative softmax loss, learned temperature, feature dropout.

The model (towers + loss) is separate from the loop. Every epoch records the mean loss and the recall@100
of a time-ordered validation slice (the last 5% of examples) against the whole catalog, for the curves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from tastebud_training.two_tower.examples import Examples
from tastebud_training.two_tower.loss import hybrid_softmax_loss
from tastebud_training.two_tower.model import TowerConfig, build_item_tower, build_user_tower


@dataclass(frozen=True)
class TwoTowerConfig:
    """Hyper-parameters; the ablation switches are the issue's (no logQ, no hard negatives, no dropout)."""

    epochs: int = 8
    batch_size: int = 1024
    learning_rate: float = 1e-3
    initial_temperature: float = 0.05
    learn_temperature: bool = True
    use_logq: bool = True
    hard_negatives: int = 3
    feature_dropout: float = 0.25
    history_dropout: float = 0.15
    seed: int = 7
    towers: TowerConfig = field(default_factory=TowerConfig)

    def ablation(self, name: str) -> TwoTowerConfig:
        from dataclasses import replace

        changes = {"no_logq": {"use_logq": False}, "no_hard_negatives": {"hard_negatives": 0},
                   "no_feature_dropout": {"feature_dropout": 0.0, "history_dropout": 0.0}}
        return replace(self, **changes[name])  # type: ignore[arg-type]


@dataclass
class TrainedTowers:
    user_tower: keras.Model
    item_tower: keras.Model
    temperature: float
    history: dict[str, list[float]]
    config: TwoTowerConfig
    seconds: float


ItemInputs = Callable[[np.ndarray], dict[str, np.ndarray]]


def apply_feature_dropout(user: dict[str, np.ndarray], item: dict[str, np.ndarray], rate: float, history_rate: float,
                          rng: np.random.Generator) -> None:
    """Replace id features by the unknown index (0) at random, in place, so content alone must place them.

    Item id and merchant drop together (a new merchant's new dish has neither); the user id drops alone;
    the whole history drops at ``history_rate`` (a user with no past orders).
    """
    n = int(user["user_idx"].shape[0])
    if rate > 0:
        drop_item = rng.random(n) < rate
        item["item_idx"] = np.where(drop_item, 0, item["item_idx"])
        item["merchant_idx"] = np.where(drop_item, 0, item["merchant_idx"])
        user["user_idx"] = np.where(rng.random(n) < rate, 0, user["user_idx"])
    if history_rate > 0:
        drop_history = rng.random(n) < history_rate
        if drop_history.any():
            user["hist_idx"] = np.where(drop_history[:, None], 0, user["hist_idx"])
            user["hist_weight"] = np.where(drop_history[:, None], 0.0, user["hist_weight"]).astype(np.float32)
            user["hist_text"] = np.where(drop_history[:, None], 0.0, user["hist_text"]).astype(np.float32)


def train_towers(examples: Examples, item_inputs: ItemInputs, n_catalog: int, sizes: dict[str, int],
                 config: TwoTowerConfig, *, progress: Callable[[str], None] | None = None) -> TrainedTowers:
    started = time.time()
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    user_tower = build_user_tower(sizes, config.towers)
    item_tower = build_item_tower(sizes, config.towers)
    log_temperature = tf.Variable(math.log(config.initial_temperature), trainable=config.learn_temperature,
                                  dtype=tf.float32, name="log_temperature")
    optimizer = keras.optimizers.Adam(config.learning_rate)
    variables = user_tower.trainable_variables + item_tower.trainable_variables + (
        [log_temperature] if config.learn_temperature else [])
    n_hard = min(config.hard_negatives, examples.hard_rows.shape[1])

    order = np.argsort(examples.ts, kind="stable")
    n_valid = max(1, len(examples) // 20)
    train_index, valid_index = order[:-n_valid], order[-n_valid:]
    batch_size = int(min(config.batch_size, max(64, train_index.size // 8)))

    @tf.function(reduce_retracing=True)
    def step(user: dict, item: dict, hard: dict | None, hard_mask: tf.Tensor | None, item_ids: tf.Tensor,
             log_q: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            u = user_tower(user, training=True)
            v = item_tower(item, training=True)
            hard_emb = None
            if hard is not None:
                flat = item_tower(hard, training=True)
                hard_emb = tf.reshape(flat, (tf.shape(u)[0], n_hard, tf.shape(u)[1]))
            temperature = tf.clip_by_value(tf.exp(log_temperature), 0.01, 1.0)
            loss = hybrid_softmax_loss(u, v, item_ids, log_q, temperature, hard=hard_emb, hard_mask=hard_mask,
                                       use_logq=config.use_logq)
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return loss

    history: dict[str, list[float]] = {"loss": [], "valid_recall@100": [], "temperature": []}
    best: tuple[float, int, list, list, float] | None = None
    for epoch in range(config.epochs):
        shuffled = rng.permutation(train_index)
        losses = []
        for start in range(0, shuffled.size - batch_size + 1, batch_size):
            batch = examples.take(shuffled[start:start + batch_size])
            user = {k: v.copy() for k, v in batch.user.items()}
            item = item_inputs(batch.item_rows)
            apply_feature_dropout(user, item, config.feature_dropout, config.history_dropout, rng)
            hard = hard_mask = None
            if n_hard:
                hard_rows = batch.hard_rows[:, :n_hard]
                hard_mask = (hard_rows >= 0).astype(np.float32)
                hard = item_inputs(np.where(hard_rows >= 0, hard_rows, 0).reshape(-1))
            losses.append(float(step(user, item, hard, hard_mask, batch.item_rows, batch.log_q)))
        history["loss"].append(float(np.mean(losses)) if losses else float("nan"))
        history["temperature"].append(float(tf.exp(log_temperature)))
        recall = validation_recall(user_tower, item_tower, item_inputs, n_catalog, examples.take(valid_index))
        history["valid_recall@100"].append(recall)
        if progress:
            progress(f"epoch {epoch + 1}/{config.epochs}: loss {history['loss'][-1]:.4f}, "
                     f"valid recall@100 {recall:.3f}, temperature {history['temperature'][-1]:.4f}")
        if best is None or recall > best[0]:
            best = (recall, epoch, user_tower.get_weights(), item_tower.get_weights(), float(tf.exp(log_temperature)))
    assert best is not None
    # Keep the epoch with the best validation recall (the towers overfit small logs after a few epochs).
    user_tower.set_weights(best[2])
    item_tower.set_weights(best[3])
    history["best_epoch"] = [best[1] + 1]
    return TrainedTowers(user_tower, item_tower, best[4], history, config, time.time() - started)


def embed_items(item_tower: keras.Model, item_inputs: ItemInputs, n_catalog: int, batch: int = 4096) -> np.ndarray:
    parts = [item_tower(item_inputs(np.arange(s, min(s + batch, n_catalog))), training=False).numpy()
             for s in range(0, n_catalog, batch)]
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def validation_recall(user_tower: keras.Model, item_tower: keras.Model, item_inputs: ItemInputs, n_catalog: int,
                      valid: Examples, k: int = 100) -> float:
    items = embed_items(item_tower, item_inputs, n_catalog)
    users = user_tower(valid.user, training=False).numpy()
    scores = users @ items.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return float(np.mean([row in tops for row, tops in zip(valid.item_rows, top, strict=True)]))
