"""Item images -> EfficientNetB0 features: shapes, missing and broken images, determinism, cache, weights policy."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tastebud_training import image_embedding
from tastebud_training.image_embedding import (
    ALLOW_DOWNLOAD_ENV,
    DIMENSION,
    ImageConfig,
    WeightsUnavailableError,
    embed_images,
)
from tastebud_training.simulator import photos

CONFIG = ImageConfig(weights=None, size=32, batch_size=2)  # 2: several batches and a partial last one
GOOD = ("i1", "i2", "i3")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], np.ndarray]:
    """A data directory with good, missing, corrupt, truncated and odd-format images, and the expected mask."""
    root = tmp_path_factory.mktemp("data")
    images = root / "images"
    photos.write_images(images, list(GOOD), ["italian", "dairy", "sushi"], np.array([0, 18, 14]),
                            np.array([0, 1, 0]), seed=1)
    (images / "corrupt.png").write_bytes(b"this is not a PNG")
    (images / "truncated.png").write_bytes((images / "i1.png").read_bytes()[:80])
    Image.new("L", (50, 40), color=90).save(images / "grey.jpg")  # greyscale JPEG, not square: converted, resized
    uris = ["images/i1.png", "", "images/gone.png", "images/corrupt.png", "images/i2.png", "images/truncated.png",
            "images/grey.jpg", "https://cdn.example.com/x.png", "images/i3.png"]
    expected = np.array([True, False, False, False, True, False, True, False, True])
    return root, uris, expected


def test_features_have_one_row_per_item_and_zeros_where_there_is_no_usable_image(
    catalog: tuple[Path, list[str], np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    root, uris, expected = catalog
    caplog.set_level("INFO", logger=image_embedding.__name__)
    features, has_image = embed_images(root, uris, CONFIG, cache_dir=None, progress=False)
    assert features.shape == (len(uris), DIMENSION) and features.dtype == np.float32
    assert has_image.dtype == bool and has_image.tolist() == expected.tolist()
    assert not features[~has_image].any()
    assert (np.abs(features[has_image]).sum(axis=1) > 0).all()
    assert np.isfinite(features).all()
    assert len({features[i].tobytes() for i in np.flatnonzero(has_image)}) == int(has_image.sum())
    log = caplog.text
    assert "RANDOM weights" in log
    assert "(file missing)" in log and "(unreadable)" in log and "(URL)" in log


def test_the_same_images_give_the_same_features_in_a_fresh_model(
    catalog: tuple[Path, list[str], np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, uris, _ = catalog
    first, _ = embed_images(root, uris, CONFIG, cache_dir=None, progress=False)
    monkeypatch.setattr(image_embedding, "_FORWARD", {})  # rebuild the network from its seed
    python_state, numpy_state = random.getstate(), np.random.get_state()[1].copy()
    second, _ = embed_images(root, uris, CONFIG, cache_dir=None, progress=False)
    np.testing.assert_array_equal(first, second)
    # Seeding Keras did not reset the caller's random generators.
    assert random.getstate() == python_state and np.array_equal(np.random.get_state()[1], numpy_state)


def test_a_second_run_comes_from_the_cache_and_a_changed_image_does_not(
    catalog: tuple[Path, list[str], np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, uris, _ = catalog
    cache = tmp_path / "cache"
    features, has_image = embed_images(root, uris, CONFIG, cache_dir=cache, progress=False)
    assert len(list(cache.glob("*.npz"))) == 1 and not list(cache.glob("*.tmp"))

    def no_network(*args: object) -> None:
        raise AssertionError("the network ran although the cache holds these images")

    monkeypatch.setattr(image_embedding, "_forward_fn", no_network)
    cached, cached_mask = embed_images(root, uris, CONFIG, cache_dir=cache, progress=False)
    np.testing.assert_array_equal(cached, features)
    np.testing.assert_array_equal(cached_mask, has_image)

    changed = tmp_path / "changed"
    (changed / "images").mkdir(parents=True)
    for uri in uris:
        if uri.startswith("images/") and (root / uri).is_file():
            (changed / uri).write_bytes((root / uri).read_bytes())
    Image.new("RGB", (64, 64), color=(200, 10, 10)).save(changed / "images" / "i2.png")
    with pytest.raises(AssertionError, match="the network ran"):
        embed_images(changed, uris, CONFIG, cache_dir=cache, progress=False)


def test_no_usable_image_needs_no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_embedding, "_forward_fn", lambda *a: pytest.fail("built a network for nothing"))
    features, has_image = embed_images(tmp_path, ["", "images/none.png"], CONFIG, cache_dir=tmp_path, progress=False)
    assert features.shape == (2, DIMENSION) and not features.any() and not has_image.any()


def test_imagenet_without_cached_weights_fails_clearly_instead_of_downloading(
    catalog: tuple[Path, list[str], np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, uris, _ = catalog
    monkeypatch.setattr(image_embedding, "_keras_cache_file", lambda: tmp_path / "models" / "efficientnetb0_notop.h5")
    monkeypatch.delenv(ALLOW_DOWNLOAD_ENV, raising=False)
    with pytest.raises(WeightsUnavailableError, match=r"not in the Keras cache.*~/\.keras/models") as caught:
        embed_images(root, uris, ImageConfig(weights="imagenet", size=32), cache_dir=None, progress=False)
    assert ALLOW_DOWNLOAD_ENV in str(caught.value)


def test_a_missing_weights_file_or_a_remote_one_fails_clearly(catalog: tuple[Path, list[str], np.ndarray]) -> None:
    root, uris, _ = catalog
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        embed_images(root, uris, ImageConfig(weights="/nowhere/b0.h5", size=32), cache_dir=None, progress=False)
    with pytest.raises(WeightsUnavailableError, match="only local files"):
        embed_images(root, uris, ImageConfig(weights="s3://bucket/b0.h5", size=32), cache_dir=None, progress=False)


def test_config_rejects_sizes_the_network_cannot_take() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        ImageConfig(size=16)
    with pytest.raises(ValueError, match="batch_size"):
        ImageConfig(batch_size=0)


def test_a_weights_file_gives_the_same_network_as_keras_imagenet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keras adds a Rescaling after Normalization only for weights="imagenet"; loading the file by path must match.

    Stand-in ImageNet weights (random, with ImageNet's normalisation) are saved in Keras' legacy .h5 format, the
    format of efficientnetb0_notop.h5, and Keras' own "imagenet" branch is pointed at them.
    """
    import h5py
    import keras
    from keras.src.applications import efficientnet
    from keras.src.legacy.saving import legacy_h5_format

    size = 32
    source = keras.applications.EfficientNetB0(include_top=False, weights=None, pooling="avg",
                                               input_shape=(size, size, 3))
    norm = next(layer for layer in source.layers if isinstance(layer, keras.layers.Normalization))
    norm.adapt_mean.assign(np.array([0.485, 0.456, 0.406], np.float32))
    norm.adapt_variance.assign(np.array([0.229, 0.224, 0.225], np.float32) ** 2)
    norm.finalize_state()
    weights = tmp_path / "efficientnetb0_notop.h5"
    with h5py.File(weights, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, source)

    monkeypatch.setattr(efficientnet.file_utils, "get_file", lambda *a, **k: str(weights))
    reference = keras.applications.EfficientNetB0(include_top=False, weights="imagenet", pooling="avg",
                                                  input_shape=(size, size, 3))
    images = np.random.default_rng(0).uniform(0, 255, (3, size, size, 3)).astype(np.float32)
    expected = reference(images, training=False).numpy()
    as_loaded = source(images, training=False).numpy()  # the same weights in the weights=None graph, unadjusted
    monkeypatch.setattr(image_embedding, "_FORWARD", {})
    ours = image_embedding._forward_fn(weights, "test-weights", size)(images)  # loads the file, then adjusts
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert np.abs(as_loaded - expected).max() > 100 * np.abs(ours - expected).max()  # the fix is what matches
