"""Defect 9 remainder: the SageMaker user tower holds the item-text table and takes history rows, so the
serving Lambda sends ids only. The packaged model.tar.gz (TF Serving layout) is loaded back and fed the
exact instance the Lambda sends; its vector equals the in-process user tower's on the full inputs."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np

from tastebud.adapters.aws.sagemaker_encoder import two_tower_payload
from tastebud.domain import RequestContext, UserProfile
from tastebud.features.two_tower import ENDPOINT_USER_INPUTS, TwoTowerVocab, profile_inputs

from factories import NOW

TEXT_DIM, N = 6, 12


def vocab(text: np.ndarray) -> TwoTowerVocab:
    return TwoTowerVocab(user_ids=np.asarray(["u1", "u2"]), age_bands=("25-34",), genders=("female",),
                         item_index=np.arange(1, N + 1), merchant_index=np.arange(1, 5), n_items=N, n_merchants=4,
                         n_categories=3, n_preferences=2, price_edges=np.linspace(5, 15, 9), text_vectors=text)


def test_the_packaged_endpoint_model_matches_the_user_tower_on_the_lambdas_id_payload(tmp_path: Path) -> None:
    import tensorflow as tf

    from tastebud_training.two_tower.model import TowerConfig, build_user_tower
    from tastebud_training.two_tower.serving import OUTPUT, package_model_tar

    text = np.random.default_rng(0).normal(size=(N, TEXT_DIM)).astype(np.float32)
    full = vocab(text)
    tower = build_user_tower(full.sizes, TowerConfig())
    archive = package_model_tar(tower, text, tmp_path / "user_tower" / "model.tar.gz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        tar.extractall(tmp_path / "x", filter="data")
    assert {"user_tower/1/saved_model.pb", "user_tower/1/variables", "tensorflow_version"} <= names
    assert (tmp_path / "x" / "tensorflow_version").read_text().strip() == tf.__version__

    # What the Lambda loads: the vocabulary WITHOUT the text table.
    lambda_vocab = vocab(np.zeros((N, 0), np.float32))
    served = tf.saved_model.load(str(tmp_path / "x" / "user_tower" / "1")).signatures["serving_default"]
    user = UserProfile("u2", True, history_rows=np.asarray([3, 1, 7]),
                       history_weights=np.asarray([2.0, 1.0, 3.0], np.float32), preference_rows=np.asarray([1]),
                       age_band="25-34", gender="female", home_lat=52.5, home_lon=13.4)
    for profile in (user, UserProfile.cold("new")):
        context = RequestContext(now=NOW, domain="grocery")
        instance = two_tower_payload(lambda_vocab)(profile, context)
        assert instance is not None and set(instance) == set(ENDPOINT_USER_INPUTS)
        body = json.dumps({"instances": [instance]})
        assert len(body) < 1000  # ids and weights only: no 384-float text vector on the wire
        specs = served.structured_input_signature[1]  # TF Serving parses the JSON into these dtypes
        batch = {name: tf.constant([value], dtype=specs[name].dtype)
                 for name, value in json.loads(body)["instances"][0].items()}
        endpoint = served(**batch)[OUTPUT].numpy()[0]
        local = tower(profile_inputs(full, profile, context), training=False).numpy()[0]
        assert np.max(np.abs(endpoint - local)) < 1e-5
