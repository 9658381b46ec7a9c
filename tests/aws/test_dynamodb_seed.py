"""Defect 7: profiles carry age_band/gender into serving exactly as training sees them; `tastebud aws seed`
writes the profiles table from a data directory (moto DynamoDB, the tables as template.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from tastebud.adapters.aws.dynamodb_features import DynamoFeatureStore
from tastebud.adapters.aws.dynamodb_seed import batch_put, profile_item
from tastebud.domain import RequestContext
from tastebud.features.two_tower import profile_inputs

REGION = "eu-west-1"


def test_seeded_profiles_give_serving_the_user_features_training_used(dynamodb: Any, tiny_data: Path,
                                                                     tiny_two_tower_snapshot: Any) -> None:
    from tastebud_cli.app import app

    dataset, catalog, users, vocab, as_of = tiny_two_tower_snapshot
    result = CliRunner().invoke(app, ["aws", "seed", "--data", str(tiny_data), "--profiles-table", "profiles",
                                      "--region", REGION])
    assert result.exit_code == 0, result.output
    assert f"profiles: {len(dataset.users)} profiles" in result.output
    assert sorted(dynamodb.list_tables()["TableNames"]) == ["history", "profiles"]  # nothing else is written
    assert vocab.age_bands and vocab.genders  # the tiny data has both attributes

    store = DynamoFeatureStore("profiles", "history", catalog, client=dynamodb)
    context = RequestContext(now=as_of)
    for user_id in users.user_ids[:25].tolist():
        served = store.user(user_id)
        row = int(np.searchsorted(users.user_ids, user_id))
        assert served.age_band == str(users.age_band[row]) and served.gender == str(users.gender[row])
        ids = profile_inputs(vocab, served, context)
        assert int(ids["age_idx"][0]) == vocab.age_index(str(users.age_band[row]))
        assert int(ids["gender_idx"][0]) == vocab.gender_index(str(users.gender[row]))
        if str(users.age_band[row]):
            assert int(ids["age_idx"][0]) > 0  # not the "unknown" bucket: the skew of defect 7


def test_profile_items_normalise_like_training_and_skip_missing_values() -> None:
    item = profile_item({"user_id": "u1", "age_band": " 25-34 ", "gender": "F", "preferences": "Sushi; vegan;sushi",
                         "home_lat": 52.5, "home_lon": float("nan"), "created_at": None})
    assert item == {"user_id": {"S": "u1"}, "age_band": {"S": "25-34"}, "gender": {"S": "f"},
                    "preferences": {"L": [{"S": "sushi"}, {"S": "vegan"}]}, "home_lat": {"N": "52.5"}}


def test_unprocessed_items_are_retried() -> None:
    class Throttled:
        def __init__(self) -> None:
            self.calls: list[int] = []

        def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            (requests,) = RequestItems.values()
            self.calls.append(len(requests))
            left = requests[1:] if len(self.calls) == 1 else []
            return {"UnprocessedItems": {"t": left} if left else {}}

    client = Throttled()
    written = batch_put(client, "t", ({"user_id": {"S": str(i)}} for i in range(30)), sleep=lambda s: None)
    assert written == 30 and client.calls == [25, 24, 5]
