"""Shared fixtures: tiny simulated marketplace, models trained on it once per session, services per test."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aws_calls
import orphans
import pytest

from factories import tiny_config

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/helpers.py

TINY = {"users": 120, "items": 600, "seed": 3}
REDIS_BEFORE = pytest.StashKey[set[int]]()


def pytest_configure(config: pytest.Config) -> None:
    aws_calls.install()  # before any S3 client class exists (boto3 injects the transfer methods at creation)
    config.addinivalue_line("markers", "after_the_aws_suites: reads the AWS calls the AWS suites recorded (runs last)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("after_the_aws_suites") is not None)  # stable: order kept


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[REDIS_BEFORE] = set(orphans.redis_servers())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    out = os.environ.get("TASTEBUD_AWS_CALLS_OUT")  # test_iam_against_code's run of the AWS suites
    if out:
        Path(out).write_text(json.dumps(sorted((asdict(c) for c in aws_calls.CALLS), key=json.dumps)))
    # Issue 21: whatever a test starts, it stops. A Redis server left running fails the run (the keepers would stop
    # them when pytest exits, which hides the leak: it is checked here, before that).
    left = orphans.left_running(session.config.stash[REDIS_BEFORE], session.config._tmp_path_factory.getbasetemp())
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"ORPHAN CHECK: {len(left)} redis-server process(es) this session started are still running:",
                 *(f"  {server}" for server in left)]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A moto DynamoDB (eu-west-1) with the stack's feature tables: profiles and history."""
    import boto3
    from aws_doubles import create_feature_tables
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        client = boto3.client("dynamodb")
        create_feature_tables(client)
        yield client


@pytest.fixture(scope="session", autouse=True)
def shared_embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One text/image vector and encoder-export cache for every training of the run (its entries are keyed by
    content): a training that embeds the same items, or exports the same encoders, as an earlier one reuses them."""
    from tastebud_training.training_cache import CACHE_ENV

    cache = tmp_path_factory.mktemp("embedding-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(cache))
        yield cache


@pytest.fixture(scope="module")
def frozen_heap() -> Iterator[None]:
    """For modules whose requests run under serving deadlines (Redis 10-50 ms, the fault budgets): the heap frozen
    as a serving process freezes its start-up heap (tastebud.heap). Without it, full collections of this process's
    heap (TensorFlow and the models earlier tests trained: 0.4-0.6 s, which no server carries) landed inside timed
    or budgeted calls. Thawed after the module."""
    from tastebud import heap

    heap.freeze_startup_heap()
    yield
    heap.thaw()


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tastebud_training.simulator import generate

    out = tmp_path_factory.mktemp("data") / "tiny"
    generate(out, progress=False, **TINY)
    return out


@pytest.fixture(scope="session")
def tiny_dataset(tiny_data: Path):  # type: ignore[no-untyped-def]
    from tastebud_training.data import load_dataset

    return load_dataset(tiny_data)


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """Real models (MiniLM text vectors, ScaNN, XGBoost -> ONNX) trained on the tiny data set."""
    from tastebud_training.train import train

    artifacts = tmp_path_factory.mktemp("artifacts")
    train(tiny_dataset, artifacts, tiny_config())
    return artifacts


@pytest.fixture
def service(tiny_artifacts: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fully wired service with its own embedded Redis (stock changes never leak between tests)."""
    from tastebud.composition.local import build_runtime
    from tastebud.settings import Settings

    # Its own data directory: accepted events and items must never land in the shared tiny data set.
    runtime = build_runtime(Settings(artifacts=tiny_artifacts, redis_db_path=tmp_path / "stock.rdb",
                                     data_dir=tmp_path / "data"), watch=False)
    yield runtime
    runtime.close()  # its embedded Redis server stops with it


@pytest.fixture
def embedded_redis_at():  # type: ignore[no-untyped-def]
    """``embedded_redis_at(path)``: an embedded Redis server for this test, stopped when the test ends."""
    from tastebud.adapters.redis_stock import embedded_redis, stop_embedded_redis

    started = []

    def start(db_path: Path):  # type: ignore[no-untyped-def]
        started.append(embedded_redis(db_path))
        return started[-1]

    yield start
    for client in reversed(started):
        stop_embedded_redis(client)


@pytest.fixture
def active_user(tiny_dataset) -> str:  # type: ignore[no-untyped-def]
    """A user with many positives (a warm user)."""
    interactions = tiny_dataset.interactions
    positives = interactions[interactions["event_type"].isin(("click", "add_to_cart", "purchase"))]
    return str(positives["user_id"].value_counts().index[0])


@pytest.fixture(scope="session")
def tiny_two_tower_snapshot(tiny_dataset):  # type: ignore[no-untyped-def]
    """(dataset, catalog, users, two-tower vocab, as_of) at the end of the tiny log; 16-d stand-in text vectors."""
    import numpy as np

    from tastebud_training.snapshot import build_catalog, build_user_table, preference_terms
    from tastebud_training.two_tower.examples import build_vocab

    as_of = float(tiny_dataset.interactions["ts"].max() + 1)
    catalog = build_catalog(tiny_dataset, as_of)
    terms = preference_terms(tiny_dataset.users)
    users = build_user_table(tiny_dataset, catalog, as_of, terms)
    text = np.random.default_rng(0).normal(size=(catalog.size, 16)).astype(np.float32)
    return tiny_dataset, catalog, users, build_vocab(tiny_dataset, catalog, users, text, len(terms)), as_of


@pytest.fixture
def kinesis(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Kinesis stream "events" with 2 shards (moto), for the EventSink contract and `events replay --kinesis`."""
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        client = boto3.client("kinesis")
        client.create_stream(StreamName="events", ShardCount=2)
        yield client
