from __future__ import annotations

from pathlib import Path

import pytest

from tastebud.settings import Settings, SettingsError


def test_artifacts_location_is_required() -> None:
    with pytest.raises(SettingsError, match="TASTEBUD_ARTIFACTS"):
        Settings.from_env({})


def test_knobs_are_parsed_and_typed() -> None:
    settings = Settings.from_env({"TASTEBUD_ARTIFACTS": "/a", "TASTEBUD_MAX_PER_MERCHANT": "2",
                                  "TASTEBUD_SERVE_WITHOUT_STOCK_FILTER": "true", "TASTEBUD_NEW_MERCHANT_BOOST": "0.3"})
    assert settings.artifacts == Path("/a")
    assert settings.knobs.max_per_merchant == 2 and settings.knobs.serve_without_stock_filter is True
    assert settings.knobs.new_merchant_boost == 0.3


def test_bad_knob_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="TASTEBUD_RETRIEVE_K"):
        Settings.from_env({"TASTEBUD_ARTIFACTS": "/a", "TASTEBUD_RETRIEVE_K": "many"})


def test_aws_backend_never_defaults_resource_names() -> None:
    with pytest.raises(SettingsError, match="TASTEBUD_OPENSEARCH_ENDPOINT"):
        Settings.from_env({"TASTEBUD_ARTIFACTS": "/a", "TASTEBUD_BACKEND": "aws"})
