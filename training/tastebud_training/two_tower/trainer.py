"""Training loop for the two towers: hybrid-negative softmax loss, learned temperature, feature dropout.

The model (towers + loss) is separate from the loop. Every epoch records the mean loss and the recall@100
of a time-ordered validation slice (the last 5% of examples) against the whole catalog, for the curves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import keras
import numpy as np
import tensorflow as tf

from tastebud_training.two_tower.examples import Examples
from tastebud_training.two_tower.loss import hybrid_softmax_loss
from tastebud_training.two_tower.model import TowerConfig, build_item_tower, build_user_tower


@dataclass(frozen=True)
class TwoTowerConfig:
    """Hyper-parameters; the ablation switches are the issue's (no logQ, no hard negatives, no dropout) and the
    cold-start options (a higher item-id dropout, a scaled-down item-id embedding: ``ABLATIONS``).

    ``item_id_dropout``: the rate at which the item id alone is replaced by the unknown index, on top of
    ``feature_dropout`` (which drops the item id and its merchant together); None = ``feature_dropout``. A new
    dish at a known merchant has a merchant but no id: a higher rate teaches the tower to place that case from
    content. ``towers.item_id_scale`` multiplies the item-id embedding before the tower's MLP.
    """

    epochs: int = 8
    batch_size: int = 1024
    learning_rate: float = 1e-3
    initial_temperature: float = 0.05
    learn_temperature: bool = True
    use_logq: bool = True
    hard_negatives: int = 3
    feature_dropout: float = 0.25
    item_id_dropout: float | None = None
    history_dropout: float = 0.15
    seed: int = 7
    # Also export the user tower with int8 MatMul weights and serve it when it retrieves what float32 retrieves
    # (two_tower/export.py: INT8_MIN_NEIGHBOUR_AGREEMENT); False serves float32.
    user_tower_int8: bool = True
    towers: TowerConfig = field(default_factory=TowerConfig)

    def __post_init__(self) -> None:
        if self.item_id_dropout is not None and not self.feature_dropout <= self.item_id_dropout <= 1.0:
            raise ValueError(f"item_id_dropout ({self.item_id_dropout}) must be between feature_dropout "
                             f"({self.feature_dropout}) and 1")

    @property
    def id_dropout(self) -> float:
        """The rate at which the item id is replaced by the unknown index."""
        return self.feature_dropout if self.item_id_dropout is None else self.item_id_dropout

    def ablation(self, name: str) -> TwoTowerConfig:
        """This config with the named change (``ABLATIONS``); raises KeyError for an unknown name."""
        from dataclasses import replace

        changes = dict(ABLATIONS[name])
        towers = cast(dict[str, Any], changes.pop("towers", {}))
        changed = replace(self, **changes)  # type: ignore[arg-type]
        return replace(changed, towers=replace(self.towers, **towers)) if towers else changed


# Named variants of a config (evaluate --ablations, the cold-start study). "towers" changes the TowerConfig.
ABLATIONS: dict[str, dict[str, object]] = {
    "no_logq": {"use_logq": False},
    "no_hard_negatives": {"hard_negatives": 0},
    "no_feature_dropout": {"feature_dropout": 0.0, "history_dropout": 0.0},
    "item_id_dropout_50": {"item_id_dropout": 0.5},
    "item_id_scale_half": {"towers": {"item_id_scale": 0.5}},
    "item_id_dropout_50_scale_half": {"item_id_dropout": 0.5, "towers": {"item_id_scale": 0.5}},
}


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
                          rng: np.random.Generator, *, item_id_rate: float | None = None) -> None:
    """Replace id features by the unknown index (0) at random, in place, so content alone must place them.

    Item id and merchant drop together at ``rate`` (a new merchant's new dish has neither); the item id alone
    drops at ``item_id_rate`` >= ``rate`` when given (a new dish at a known merchant: the examples whose merchant
    drops are a subset of those whose id drops); the user id drops alone at ``rate``; the whole history drops at
    ``history_rate`` (a user with no past orders).
    """
    n = int(user["user_idx"].shape[0])
    id_rate = rate if item_id_rate is None else max(rate, item_id_rate)
    if rate > 0 or id_rate > 0:
        draw = rng.random(n)  # one draw for both, so that the default (id_rate == rate) keeps its random stream
        item["item_idx"] = np.where(draw < id_rate, 0, item["item_idx"])
        item["merchant_idx"] = np.where(draw < rate, 0, item["merchant_idx"])
    if rate > 0:
        user["user_idx"] = np.where(rng.random(n) < rate, 0, user["user_idx"])
    if history_rate > 0:
        drop_history = rng.random(n) < history_rate
        if drop_history.any():
            user["hist_idx"] = np.where(drop_history[:, None], 0, user["hist_idx"])
            user["hist_weight"] = np.where(drop_history[:, None], 0.0, user["hist_weight"]).astype(np.float32)
            user["hist_text"] = np.where(drop_history[:, None], 0.0, user["hist_text"]).astype(np.float32)


# (user, item, hard negatives or None, their mask or None, item rows, log q) -> the batch's loss
StepFn = Callable[..., tf.Tensor]


def train_towers(examples: Examples, item_inputs: ItemInputs, n_catalog: int, sizes: dict[str, int],
                 config: TwoTowerConfig, *, progress: Callable[[str], None] | None = None) -> TrainedTowers:
    started = time.time()
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    user_tower = build_user_tower(sizes, config.towers)
    item_tower = build_item_tower(sizes, config.towers)
    log_temperature = tf.Variable(math.log(config.initial_temperature), trainable=config.learn_temperature,
                                  dtype=tf.float32, name="log_temperature")
    n_hard = min(config.hard_negatives, examples.hard_rows.shape[1])
    train_index, valid_index = _time_split(examples)
    batch_size = int(min(config.batch_size, max(64, train_index.size // 8)))
    step = _train_step(user_tower, item_tower, log_temperature, n_hard, config)

    history: dict[str, list[float]] = {"loss": [], "valid_recall@100": [], "temperature": []}
    best: tuple[float, int, list, list, float] | None = None
    for epoch in range(config.epochs):
        shuffled = rng.permutation(train_index)
        losses = _train_epoch(step, examples, shuffled, batch_size, item_inputs, n_hard, config, rng)
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


def _time_split(examples: Examples) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) example indices: the validation slice is the latest 5% of examples (at least one)."""
    order = np.argsort(examples.ts, kind="stable")
    n_valid = max(1, len(examples) // 20)
    return order[:-n_valid], order[-n_valid:]


def _train_step(user_tower: keras.Model, item_tower: keras.Model, log_temperature: tf.Variable, n_hard: int,
                config: TwoTowerConfig) -> StepFn:
    """One compiled gradient step on a batch (towers and, when learned, the temperature); returns the loss."""
    optimizer = keras.optimizers.Adam(config.learning_rate)
    variables = user_tower.trainable_variables + item_tower.trainable_variables + (
        [log_temperature] if config.learn_temperature else [])

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

    return step


def _train_epoch(step: StepFn, examples: Examples, shuffled: np.ndarray, batch_size: int, item_inputs: ItemInputs,
                 n_hard: int, config: TwoTowerConfig, rng: np.random.Generator) -> list[float]:
    """The losses of one pass over the full batches of ``shuffled``, with feature dropout drawn from ``rng``."""
    losses = []
    for start in range(0, shuffled.size - batch_size + 1, batch_size):
        batch = examples.take(shuffled[start:start + batch_size])
        user = {k: v.copy() for k, v in batch.user.items()}
        item = item_inputs(batch.item_rows)
        apply_feature_dropout(user, item, config.feature_dropout, config.history_dropout, rng,
                              item_id_rate=config.item_id_dropout)
        hard = hard_mask = None
        if n_hard:
            hard_rows = batch.hard_rows[:, :n_hard]
            hard_mask = (hard_rows >= 0).astype(np.float32)
            hard = item_inputs(np.where(hard_rows >= 0, hard_rows, 0).reshape(-1))
        losses.append(float(step(user, item, hard, hard_mask, batch.item_rows, batch.log_q)))
    return losses


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
