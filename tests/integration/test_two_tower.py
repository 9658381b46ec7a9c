"""A tiny two-tower model trained on tiny data in seconds: the loss falls, the ONNX export matches Keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tastebud.features.two_tower import item_inputs
from tastebud_training.two_tower import export
from tastebud_training.two_tower.examples import build_examples
from tastebud_training.two_tower.export import (
    export_item_tower,
    export_user_tower,
    publish_int8_user_tower,
    quantize_tower,
    quantized_agreement,
    tower_parity,
    user_tower_parity,
)
from tastebud_training.two_tower.model import TowerConfig
from tastebud_training.two_tower.trainer import TwoTowerConfig, train_towers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tiny_two_tower_snapshot):  # type: ignore[no-untyped-def]
    tiny_dataset, catalog, users, vocab, _ = tiny_two_tower_snapshot
    examples = build_examples(tiny_dataset, catalog, users, vocab, hard_negatives=2, seed=0)
    images, has_image = np.zeros((catalog.size, 32), np.float32), np.zeros(catalog.size, bool)

    def inputs_for(rows: np.ndarray) -> dict[str, np.ndarray]:
        return item_inputs(vocab, catalog, rows, images, has_image)

    config = TwoTowerConfig(epochs=4, batch_size=128, learning_rate=3e-3,
                            towers=TowerConfig(hidden=(64, 32), output_dim=16, image_dim=32, image_projection=8))
    return train_towers(examples, inputs_for, catalog.size, vocab.sizes, config), examples


def test_examples_have_hard_negatives_from_impressions(trained) -> None:  # type: ignore[no-untyped-def]
    _, examples = trained
    with_hard = (examples.hard_rows >= 0).any(axis=1)
    assert with_hard.mean() > 0.3
    assert not np.any(examples.hard_rows == examples.item_rows[:, None])  # a hard negative is never the positive


def test_training_loss_decreases(trained) -> None:  # type: ignore[no-untyped-def]
    towers, _ = trained
    assert towers.history["loss"][-1] < towers.history["loss"][0]
    assert all(np.isfinite(towers.history["loss"]))


def test_user_tower_onnx_parity(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    towers, examples = trained
    path = tmp_path / "user_tower.onnx"
    export_user_tower(towers.user_tower, path, text_dim=16)
    sample = examples.take(np.arange(min(200, len(examples))))
    assert user_tower_parity(towers.user_tower, path, sample.user) <= 1e-5


def test_int8_user_tower_quantizes_the_dense_layers_and_follows_float32(trained, tiny_two_tower_snapshot,  # type: ignore[no-untyped-def]
                                                                       tmp_path: Path) -> None:
    import onnx

    towers, examples = trained
    vectors = _item_vectors(towers, tiny_two_tower_snapshot)
    fp32, int8 = tmp_path / "user_tower.onnx", tmp_path / "user_tower.int8.onnx"
    export_user_tower(towers.user_tower, fp32, text_dim=16)
    quantize_tower(fp32, int8)
    graph = onnx.load(str(int8)).graph
    weights = {i.name for i in graph.initializer}
    float_dense = [n.name for n in graph.node if n.op_type == "MatMul" and set(n.input) & weights]
    assert float_dense == []  # every MatMul with a weight matrix runs in int8
    assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in graph.node)
    assert any(i.data_type == onnx.TensorProto.INT8 for i in graph.initializer)
    # The embedding tables stay float32: only dense weights are quantized.
    embedding_tables = [i for i in graph.initializer if "embedding" in i.name.lower() and len(i.dims) == 2]
    assert embedding_tables and all(i.data_type == onnx.TensorProto.FLOAT for i in embedding_tables)
    sample = examples.take(np.arange(min(200, len(examples))))
    agreement = quantized_agreement(fp32, int8, sample.user, vectors, k=10)
    assert agreement["queries"] == min(200, len(examples)) and agreement["k"] == 10
    assert agreement["cosine_median"] > 0.99 and agreement["neighbour_agreement_mean"] > 0.8


def test_int8_user_tower_is_not_published_below_the_agreement_threshold(trained, tiny_two_tower_snapshot,  # type: ignore[no-untyped-def]
                                                                        tmp_path: Path, monkeypatch) -> None:
    towers, examples = trained
    vectors = _item_vectors(towers, tiny_two_tower_snapshot)
    fp32, int8 = tmp_path / "user_tower.onnx", tmp_path / "user_tower.int8.onnx"
    export_user_tower(towers.user_tower, fp32, text_dim=16)
    sample = examples.take(np.arange(min(100, len(examples)))).user
    assert publish_int8_user_tower(fp32, int8, sample, vectors)["published"] is True and int8.is_file()
    monkeypatch.setattr(export, "INT8_MIN_NEIGHBOUR_AGREEMENT", 1.01)  # nothing can reach it
    result = publish_int8_user_tower(fp32, int8, sample, vectors)
    assert result["published"] is False and result["threshold"] == 1.01
    assert not int8.exists()  # nothing half-published next to the float32 tower


def _item_vectors(towers, snapshot) -> np.ndarray:  # type: ignore[no-untyped-def]
    _, catalog, _, vocab, _ = snapshot
    images, has_image = np.zeros((catalog.size, 32), np.float32), np.zeros(catalog.size, bool)
    inputs = item_inputs(vocab, catalog, np.arange(catalog.size), images, has_image)
    return np.asarray(towers.item_tower(inputs, training=False), dtype=np.float32)


def test_item_tower_onnx_parity_for_known_and_cold_items(trained, tiny_two_tower_snapshot,  # type: ignore[no-untyped-def]
                                                         tmp_path: Path) -> None:
    """The item tower embeds new items in serving (item_idx 0); ONNX must match Keras on both paths."""
    towers, _ = trained
    _, catalog, _, vocab, _ = tiny_two_tower_snapshot
    rows = np.arange(0, catalog.size, 5)
    images = np.random.default_rng(2).normal(size=(catalog.size, 32)).astype(np.float32)
    inputs = item_inputs(vocab, catalog, rows, images, np.arange(catalog.size) % 2 == 0)
    path = tmp_path / "item_tower.onnx"
    export_item_tower(towers.item_tower, path, text_dim=16, image_dim=32)
    assert tower_parity(towers.item_tower, path, inputs) <= 1e-5
    assert tower_parity(towers.item_tower, path, {**inputs, "item_idx": np.zeros_like(inputs["item_idx"])}) <= 1e-5


def test_scaled_item_id_embedding_enters_the_tower_scaled_and_exports(tiny_two_tower_snapshot,  # type: ignore[no-untyped-def]
                                                                       tmp_path: Path) -> None:
    """``item_id_scale`` multiplies the item-id embedding before the MLP; the ONNX item tower matches Keras."""
    import keras

    from tastebud_training.two_tower.model import build_item_tower

    _, catalog, _, vocab, _ = tiny_two_tower_snapshot
    towers = TowerConfig(hidden=(32, 16), output_dim=8, image_dim=32, image_projection=8, item_id_scale=0.5)
    tower = build_item_tower(vocab.sizes, towers)
    rows = np.arange(0, catalog.size, 7)
    images = np.random.default_rng(3).normal(size=(catalog.size, 32)).astype(np.float32)
    inputs = item_inputs(vocab, catalog, rows, images, np.arange(catalog.size) % 2 == 0)
    probe = keras.Model(tower.input, [tower.get_layer("item_id_embedding").output,
                                       tower.get_layer("item_id_scale").output])
    raw, scaled = (t.numpy() if hasattr(t, "numpy") else np.asarray(t) for t in probe(inputs))
    assert np.abs(raw).max() > 0 and np.allclose(scaled, 0.5 * raw)
    assert "item_id_scale" not in [layer.name for layer in build_item_tower(vocab.sizes, TowerConfig(
        hidden=(32, 16), output_dim=8, image_dim=32, image_projection=8)).layers]  # 1.0: the graph of today
    path = tmp_path / "item_tower.onnx"
    export_item_tower(tower, path, text_dim=16, image_dim=32)
    assert tower_parity(tower, path, inputs) <= 1e-5
