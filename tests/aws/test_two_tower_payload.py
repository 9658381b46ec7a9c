"""The SageMaker request for the two-tower user tower: TF Serving row format with the ONNX/Keras input names."""

from __future__ import annotations

import json

import numpy as np

from tastebud.adapters.aws.sagemaker_encoder import two_tower_payload
from tastebud.domain import RequestContext, UserProfile
from tastebud.features.two_tower import ENDPOINT_USER_INPUTS, HISTORY_LENGTH, MAX_PREFERENCES, TwoTowerVocab

from factories import NOW, make_catalog


def vocab() -> TwoTowerVocab:
    catalog = make_catalog(12)
    return TwoTowerVocab(user_ids=np.asarray(["u1", "u2"]), age_bands=("25-34",), genders=("female",),
                         item_index=np.arange(1, 13), merchant_index=np.arange(1, 5), n_items=12, n_merchants=4,
                         n_categories=3, n_preferences=2, price_edges=np.linspace(5, 15, 9),
                         text_vectors=np.eye(12, 4, dtype=np.float32)[: catalog.size])


def test_instance_has_every_user_tower_input_without_batch_axis() -> None:
    user = UserProfile("u2", True, history_rows=np.asarray([3, 1]), history_weights=np.asarray([2.0, 1.0], np.float32),
                       preference_rows=np.asarray([1]), age_band="25-34", gender="female", home_lat=52.5, home_lon=13.4)
    instance = two_tower_payload(vocab())(user, RequestContext(now=NOW, domain="restaurant"))
    assert instance is not None and set(instance) == set(ENDPOINT_USER_INPUTS)
    assert instance["user_idx"] == 2 and instance["age_idx"] == 1 and instance["domain"] == 1
    assert len(instance["hist_idx"]) == HISTORY_LENGTH and instance["hist_idx"][:3] == [4, 2, 0]
    assert len(instance["pref_idx"]) == MAX_PREFERENCES and instance["pref_idx"][0] == 2
    assert instance["hist_row"][:3] == [3, 1, 0]  # catalog rows: the endpoint holds the text table
    json.dumps({"instances": [instance]})  # JSON-serialisable as sent to InvokeEndpoint


def test_cold_users_are_encoded_too() -> None:
    instance = two_tower_payload(vocab())(UserProfile.cold("new"), RequestContext(now=NOW))
    assert instance is not None and instance["user_idx"] == 0 and not any(instance["hist_idx"])
