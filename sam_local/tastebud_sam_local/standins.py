"""The functions' AWS dependencies on this machine, seeded with one artifacts version, for `sam local`.

- S3, DynamoDB, Kinesis, Secrets Manager, SageMaker (control plane) and Step Functions: a moto server;
- ElastiCache: a real ``redis-server`` with the AUTH token that Secrets Manager holds (plain TCP: the function
  image has no CA for a local TLS certificate; ``elasticache_client`` accepts ``redis://`` only beside local
  endpoints);
- OpenSearch: ``FakeOpenSearchDomain`` over HTTP (exact k-NN);
- the SageMaker runtime: the version's user tower (``UserTowerEndpoint``).

Seeding goes the way a deployed stack gets its data: the version is published to S3 (``S3ArtifactStore``), the
control task ``prepare`` names its index and endpoint, the index tasks create and bulk-load the index and
``flip`` writes LIVE.json; the profiles are written by ``seed_profiles`` (`tastebud aws seed`), some users'
history by the ingest function's ``HistoryWriter``. Every server listens on Docker's bridge address only, where the
function containers reach the host; ``env.json`` holds the functions' settings for ``sam local --env-vars``.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tastebud.processes import terminate

REGION = "eu-west-1"
BUCKET = "tastebud-artifacts-local"
PREFIX = "artifacts"
PROFILES_TABLE = "tastebud-local-profiles"
HISTORY_TABLE = "tastebud-local-history"
EVENTS_STREAM = "tastebud-local-events"
SECRET_NAME = "tastebud-local-redis-auth"
INDEX_ALIAS = "items"
ENDPOINT_PREFIX = "tastebud-local-user-tower"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
HISTORY_USERS = 50  # users whose recorded history is replayed into the history table (the first, by id)


@dataclass
class StandIns:
    """Running stand-ins; ``close()`` stops them."""

    host: str
    moto_url: str
    opensearch_url: str
    sagemaker_url: str
    redis_url: str
    secret_arn: str = ""
    live: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)  # the control task `prepare`'s answer for the version
    _stops: list[Callable[[], object]] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        """The functions' settings (template.yaml's names), pointed at the stand-ins."""
        return {
            "TASTEBUD_AWS_ENDPOINT_URL": self.moto_url,
            "TASTEBUD_SAGEMAKER_RUNTIME_URL": self.sagemaker_url,
            "TASTEBUD_ARTIFACTS_S3_URI": f"s3://{BUCKET}/{PREFIX}/",
            "TASTEBUD_OPENSEARCH_ENDPOINT": self.opensearch_url,
            "TASTEBUD_OPENSEARCH_INDEX_ALIAS": INDEX_ALIAS,
            "TASTEBUD_REDIS_URL": self.redis_url,
            "TASTEBUD_REDIS_AUTH_SECRET_ARN": self.secret_arn,
            "TASTEBUD_PROFILES_TABLE": PROFILES_TABLE,
            "TASTEBUD_HISTORY_TABLE": HISTORY_TABLE,
            "TASTEBUD_EVENTS_STREAM": EVENTS_STREAM,
            "TASTEBUD_ENDPOINT_PREFIX": ENDPOINT_PREFIX,
            "TASTEBUD_USER_TOWER_ROLE_ARN": "arn:aws:iam::123456789012:role/tastebud-local-user-tower",
            "TASTEBUD_USER_TOWER_IMAGE": "763104351884.dkr.ecr.eu-west-1.amazonaws.com/tensorflow-inference:2.19-cpu",
        }

    def env_vars_file(self, path: Path) -> Path:
        """``sam local --env-vars`` JSON: every function gets the settings its template declares."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_text(json.dumps({"Parameters": self.environment()}, indent=1) + "\n")
        partial.replace(path)
        return path

    def index_task_events(self, directory: Path) -> list[Path]:
        """Events for the index-task function about the seeded version (names and versions are the version's own, so
        they cannot be static files in events/): a recall ``verify`` and a k-NN ``warm_up`` of the live index, as
        the hot-swap state machine passes them on."""
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name, event in (("index_verify", {**self.plan, "action": "verify", "samples": 20}),
                            ("index_warm_up", {"action": "warm_up", "index": self.plan["index"]})):
            path = directory / f"{name}.json"
            path.write_text(json.dumps(event, indent=1) + "\n")
            written.append(path)
        return written

    def close(self) -> None:
        while self._stops:
            self._stops.pop()()


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def start_standins(host: str, version_dir: Path, data_dir: Path, work_dir: Path, *,
                   say: Callable[[str], None] = print) -> StandIns:
    """Start every stand-in on ``host`` and seed it with ``version_dir`` and ``data_dir``'s users."""
    from moto.server import ThreadedMotoServer

    from tastebud_sam_local.opensearch_domain import FakeOpenSearchDomain, serve_opensearch

    _accept_exponent_numbers()
    moto_port = free_port(host)
    moto = ThreadedMotoServer(ip_address=host, port=moto_port, verbose=False)
    moto.start()
    domain = serve_opensearch(FakeOpenSearchDomain(), host)
    token = secrets.token_urlsafe(24)
    redis_port, redis_process = _start_redis(host, token, work_dir)
    standins = StandIns(host=host, moto_url=f"http://{host}:{moto_port}",
                        opensearch_url=f"http://{host}:{domain.server_address[1]}", sagemaker_url="",
                        redis_url=f"redis://{host}:{redis_port}/0")
    standins._stops += [moto.stop, domain.shutdown, lambda: terminate(redis_process, 10)]
    try:
        _seed(standins, token, version_dir, data_dir, work_dir, say)
    except BaseException:
        standins.close()
        raise
    return standins


def _accept_exponent_numbers() -> None:
    """moto 5.2's DynamoDB ``ADD`` parses a stored number without a ``.`` with ``int()``, so a sum it stored
    itself as ``0E-16`` (the history's hour/weekday sine sums cancel out) fails the next ``ADD`` with a 500; real
    DynamoDB adds them. Numbers are handed to moto's own ``__add__``/``__sub__`` in positional notation."""
    from decimal import Decimal

    from moto.dynamodb.models.dynamo_type import DynamoType

    if getattr(DynamoType, "_tastebud_positional", False):
        return

    def positional(operation: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def apply(self: Any, other: Any) -> Any:
            for operand in (self, other):
                if operand.is_number() and "." not in operand.value and "e" in operand.value.lower():
                    operand.value = format(Decimal(operand.value), "f")
            return operation(self, other)
        return apply

    DynamoType.__add__ = positional(DynamoType.__add__)  # type: ignore[method-assign]
    DynamoType.__sub__ = positional(DynamoType.__sub__)  # type: ignore[method-assign]
    DynamoType._tastebud_positional = True  # type: ignore[attr-defined]


def _start_redis(host: str, token: str, work_dir: Path) -> tuple[int, subprocess.Popen[bytes]]:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port(host)
    work_dir = work_dir.resolve()  # redis-server changes into --dir before it opens --logfile
    work_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [server, "--bind", host, "--port", str(port), "--requirepass", token, "--save", "", "--appendonly", "no",
         "--dir", str(work_dir), "--logfile", str(work_dir / "redis.log")], stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return port, process
        except OSError as exc:
            if process.poll() is not None or time.monotonic() > deadline:
                terminate(process, 10)
                log = work_dir / "redis.log"
                raise RuntimeError(f"redis-server did not start on {host}:{port}; see {log}") from exc
            time.sleep(0.05)


def _session() -> Any:
    import boto3

    return boto3.session.Session(region_name=REGION, aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                 aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


def _clients(moto_url: str) -> dict[str, Any]:
    session = _session()
    names = ("s3", "dynamodb", "kinesis", "secretsmanager", "sagemaker", "stepfunctions")
    return {name: session.client(name, endpoint_url=moto_url) for name in names}


def _seed(standins: StandIns, token: str, version_dir: Path, data_dir: Path, work_dir: Path,
          say: Callable[[str], None]) -> None:
    from tastebud.adapters.aws.s3_artifacts import S3ArtifactStore
    from tastebud.artifacts import Manifest
    from tastebud.composition.aws import opensearch_client
    from tastebud.lifecycle import control_tasks, index_tasks
    from tastebud_sam_local.sagemaker_endpoint import UserTowerEndpoint, serve_endpoints

    clients = _clients(standins.moto_url)
    s3 = clients["s3"]
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    version = Manifest.read(version_dir).version
    S3ArtifactStore(BUCKET, PREFIX, client=s3).publish(version_dir, version)
    say(f"sam-local: s3://{BUCKET}/{PREFIX}/versions/{version}/ published")

    control = control_tasks.ControlDeps(
        s3=s3, sagemaker=clients["sagemaker"], bucket=BUCKET, prefix=PREFIX, alias=INDEX_ALIAS,
        endpoint_prefix=ENDPOINT_PREFIX, user_tower_image="local", user_tower_role_arn="local",
        stepfunctions=clients["stepfunctions"])
    plan = standins.plan = control_tasks.prepare({"version": version}, control)
    index_deps = index_tasks.IndexDeps(
        opensearch=opensearch_client(standins.opensearch_url, REGION, _session().get_credentials(), timeout=30.0),
        s3=s3,
        bucket=BUCKET, prefix=PREFIX, alias=INDEX_ALIAS, cache=work_dir / "index-cache")
    index_tasks.create_index(plan, index_deps)
    for chunk in plan["chunks"]:
        loaded = index_tasks.bulk_load({**plan, **chunk}, index_deps)
        if loaded["failed"]:
            raise RuntimeError(f"bulk load of {chunk} failed: {loaded.get('error')}")
    index_deps.opensearch.indices.refresh(index=plan["index"])
    live = index_tasks.flip(plan, index_deps)
    standins.live = live
    say(f"sam-local: index {plan['index']} ({plan['items']} items) behind alias {INDEX_ALIAS}; LIVE.json -> "
        f"{live['version']} / endpoint {live['endpoint']}")

    endpoint = serve_endpoints({plan["endpoint"]: UserTowerEndpoint(version_dir)}, standins.host)
    standins._stops.append(endpoint.shutdown)
    standins.sagemaker_url = f"http://{standins.host}:{endpoint.server_address[1]}"

    _create_tables(clients["dynamodb"])
    users, events = _seed_features(clients["dynamodb"], data_dir)
    say(f"sam-local: {PROFILES_TABLE}: {users} profiles; {HISTORY_TABLE}: {events} events of {HISTORY_USERS} users")
    clients["kinesis"].create_stream(StreamName=EVENTS_STREAM, ShardCount=1)
    standins.secret_arn = clients["secretsmanager"].create_secret(
        Name=SECRET_NAME, SecretString=json.dumps({"token": token}))["ARN"]


def _create_tables(dynamodb: Any) -> None:
    """The two feature tables with the key schema and index template.yaml deploys."""
    from tastebud_training.cfn_template import load_template

    resources = load_template()["Resources"]
    for logical, name in (("ProfilesTable", PROFILES_TABLE), ("HistoryTable", HISTORY_TABLE)):
        properties = resources[logical]["Properties"]
        schema = {key: properties[key] for key in ("KeySchema", "AttributeDefinitions", "LocalSecondaryIndexes")
                  if key in properties}
        dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **schema)


def _seed_features(dynamodb: Any, data_dir: Path) -> tuple[int, int]:
    from tastebud.adapters.aws.dynamodb_features import HistoryWriter
    from tastebud.adapters.aws.dynamodb_seed import seed_profiles
    from tastebud.domain import InteractionEvent
    from tastebud_training.data import frame_records, load_dataset

    dataset = load_dataset(data_dir)
    users = seed_profiles(dynamodb, PROFILES_TABLE, frame_records(dataset.users))
    chosen = set(sorted(dataset.users["user_id"].astype(str))[:HISTORY_USERS])
    rows = dataset.interactions[dataset.interactions["user_id"].isin(chosen)]
    writer = HistoryWriter(HISTORY_TABLE, client=dynamodb)
    written = sum(writer.record(event) for event in _events(rows, InteractionEvent))
    return users, written


def _events(rows: Any, kind: Any) -> Iterable[Any]:
    for row in rows.itertuples(index=False):
        event_id = getattr(row, "event_id", None)  # optional in the data contract
        yield kind(str(row.user_id), str(row.item_id), str(row.event_type), float(row.ts),
                   event_id=event_id if isinstance(event_id, str) and event_id else None)
