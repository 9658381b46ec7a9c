"""The towers: user and ONE item tower for restaurant dishes and groceries alike.

Each tower: concat(inputs) -> Dense 1024 -> Dense 512 -> Dense 128 -> L2 normalise. Id features are
trainable embeddings (index 0 = unknown); text (MiniLM, 384-d) and image (EfficientNetB0, 1280-d) vectors
are precomputed inputs; an item without an image gets a learned "missing image" vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import layers, ops

from tastebud.features.two_tower import HISTORY_LENGTH, MAX_PREFERENCES

OUTPUT_DIM = 128


@dataclass(frozen=True)
class TowerConfig:
    hidden: tuple[int, int] = (1024, 512)
    output_dim: int = OUTPUT_DIM
    id_dim: int = 64
    image_dim: int = 1280
    image_projection: int = 64
    # Multiplies the item-id embedding before the item tower's MLP (1.0: unscaled, the layer is left out). Below 1 the
    # id carries less of a known item's vector, so a new item (unknown id) lands nearer its known content twins.
    item_id_scale: float = 1.0


@keras.saving.register_keras_serializable(package="tastebud")
class WeightedMean(layers.Layer):
    """Weighted mean of a sequence of embeddings; weight 0 marks padding."""

    def call(self, embeddings: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        weights = ops.expand_dims(weights, -1)
        return ops.sum(embeddings * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1e-6)


@keras.saving.register_keras_serializable(package="tastebud")
class MissingAware(layers.Layer):
    """x where present, a learned vector where the input is missing (not zeros that look like data)."""

    def build(self, input_shape: tuple) -> None:
        self.missing = self.add_weight(shape=(input_shape[-1],), initializer="random_normal", name="missing")

    def call(self, x: tf.Tensor, present: tf.Tensor) -> tf.Tensor:
        return x * present + self.missing * (1.0 - present)


@keras.saving.register_keras_serializable(package="tastebud")
class L2Normalize(layers.Layer):
    def call(self, x: tf.Tensor) -> tf.Tensor:
        return x / ops.maximum(ops.sqrt(ops.sum(x * x, axis=-1, keepdims=True)), 1e-12)


def _mlp(x: tf.Tensor, config: TowerConfig, name: str) -> tf.Tensor:
    for i, units in enumerate(config.hidden):
        x = layers.Dense(units, activation="relu", name=f"{name}_dense_{units}_{i}")(x)
    x = layers.Dense(config.output_dim, name=f"{name}_dense_out")(x)
    return L2Normalize(name=f"{name}_l2")(x)


def _int_input(name: str, length: int | None = None) -> keras.KerasTensor:
    return keras.Input(shape=() if length is None else (length,), dtype="int64", name=name)


def build_user_tower(sizes: dict[str, int], config: TowerConfig) -> keras.Model:
    inputs = {
        "user_idx": _int_input("user_idx"),
        "age_idx": _int_input("age_idx"),
        "gender_idx": _int_input("gender_idx"),
        "area_idx": _int_input("area_idx"),
        "pref_idx": _int_input("pref_idx", MAX_PREFERENCES),
        "hist_idx": _int_input("hist_idx", HISTORY_LENGTH),
        "hist_weight": keras.Input(shape=(HISTORY_LENGTH,), dtype="float32", name="hist_weight"),
        "hist_text": keras.Input(shape=(sizes["text_dim"],), dtype="float32", name="hist_text"),
        "hour": _int_input("hour"),
        "dow": _int_input("dow"),
        "domain": _int_input("domain"),
    }
    pref_weight = ops.cast(inputs["pref_idx"] > 0, "float32")
    parts = [
        layers.Embedding(sizes["users"], config.id_dim, name="user_id_embedding")(inputs["user_idx"]),
        layers.Embedding(sizes["ages"], 8, name="age_embedding")(inputs["age_idx"]),
        layers.Embedding(sizes["genders"], 4, name="gender_embedding")(inputs["gender_idx"]),
        layers.Embedding(sizes["areas"], 16, name="area_embedding")(inputs["area_idx"]),
        WeightedMean(name="preferences")(
            layers.Embedding(sizes["preferences"], 16, name="preference_embedding")(inputs["pref_idx"]), pref_weight),
        WeightedMean(name="history")(
            layers.Embedding(sizes["items"], config.id_dim, name="history_item_embedding")(inputs["hist_idx"]),
            inputs["hist_weight"]),
        inputs["hist_text"],
        layers.Embedding(sizes["hours"], 4, name="hour_embedding")(inputs["hour"]),
        layers.Embedding(sizes["days"], 4, name="day_embedding")(inputs["dow"]),
        layers.Embedding(sizes["domains"], 4, name="domain_embedding")(inputs["domain"]),
    ]
    x = layers.Concatenate(name="user_features")(parts)
    return keras.Model(inputs, _mlp(x, config, "user"), name="user_tower")


def build_item_tower(sizes: dict[str, int], config: TowerConfig) -> keras.Model:
    inputs = {
        "item_idx": _int_input("item_idx"),
        "merchant_idx": _int_input("merchant_idx"),
        "category_idx": _int_input("category_idx"),
        "item_domain": _int_input("item_domain"),
        "price_bucket": _int_input("price_bucket"),
        "text": keras.Input(shape=(sizes["text_dim"],), dtype="float32", name="text"),
        "image": keras.Input(shape=(config.image_dim,), dtype="float32", name="image"),
        "has_image": keras.Input(shape=(1,), dtype="float32", name="has_image"),
    }
    image = layers.Dense(config.image_projection, activation="relu", name="image_projection")(inputs["image"])
    item_id = layers.Embedding(sizes["items"], config.id_dim, name="item_id_embedding")(inputs["item_idx"])
    if config.item_id_scale != 1.0:
        item_id = layers.Rescaling(config.item_id_scale, name="item_id_scale")(item_id)
    parts = [
        item_id,
        layers.Embedding(sizes["merchants"], 32, name="merchant_embedding")(inputs["merchant_idx"]),
        layers.Embedding(sizes["categories"], 16, name="category_embedding")(inputs["category_idx"]),
        layers.Embedding(3, 4, name="item_domain_embedding")(inputs["item_domain"]),
        layers.Embedding(sizes["prices"], 8, name="price_embedding")(inputs["price_bucket"]),
        inputs["text"],
        MissingAware(name="image_or_missing")(image, inputs["has_image"]),
    ]
    x = layers.Concatenate(name="item_features")(parts)
    return keras.Model(inputs, _mlp(x, config, "item"), name="item_tower")
