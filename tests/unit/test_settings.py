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


def test_tastebud_serve_reads_the_knob_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The README names `TASTEBUD_REDIS_REQUEST_BUDGET_MS` and the like: `tastebud serve` must honour them too."""
    from typer.testing import CliRunner

    import tastebud.http_server.local as local
    from tastebud_cli.app import app

    seen: list[Settings] = []
    monkeypatch.setattr(local, "serve_artifacts", lambda settings, *args, **kwargs: seen.append(settings))
    monkeypatch.setenv("TASTEBUD_REDIS_REQUEST_BUDGET_MS", "120")
    result = CliRunner().invoke(app, ["serve", "--artifacts", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert seen[0].knobs.redis_request_budget_ms == 120 and seen[0].artifacts == tmp_path

    monkeypatch.setenv("TASTEBUD_REDIS_REQUEST_BUDGET_MS", "soon")
    result = CliRunner().invoke(app, ["serve", "--artifacts", str(tmp_path)])
    assert result.exit_code != 0 and "TASTEBUD_REDIS_REQUEST_BUDGET_MS" in result.output
