"""The `sam local` stand-ins without Docker (issue 25): each over its real client and wire (opensearch-py over HTTP,
a botocore sagemaker-runtime client, redis-py with AUTH, boto3 against the moto server), and the whole seeded set
serving the deployed composition in this process. The container runs are tests/sam_local."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tastebud.adapters.aws.local_endpoints import use_local_endpoints
from tastebud.adapters.aws.opensearch_admin import OpenSearchIndexAdmin
from tastebud.adapters.aws.opensearch_index import OpenSearchIndex
from tastebud.adapters.aws.sagemaker_encoder import SageMakerUserEncoder, two_tower_payload
from tastebud.adapters.aws.stock import elasticache_client
from tastebud.adapters.embedded.onnx_user_encoder import OnnxUserEncoder
from tastebud.adapters.embedded.user_table import UserTable
from tastebud.api.http import create_handler
from tastebud.artifacts import USER_TOWER, LocalArtifactStore, Manifest
from tastebud.catalog import Catalog
from tastebud.composition.aws import build_aws_service, opensearch_client
from tastebud.domain import RequestContext
from tastebud.errors import DependencyError
from tastebud.features.two_tower import TwoTowerVocab
from tastebud.settings import Settings, SettingsError
from tastebud_sam_local import base_image
from tastebud_sam_local.opensearch_domain import FakeOpenSearchDomain, serve_opensearch
from tastebud_sam_local.sagemaker_endpoint import UserTowerEndpoint, serve_endpoints
from tastebud_sam_local.standins import StandIns, start_standins

from factories import NOW, make_catalog
from helpers import invoke, load_event, response_json

HOST = "127.0.0.1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def test_use_local_endpoints_sets_boto3s_own_variables_only_when_configured() -> None:
    deployed = {"TASTEBUD_AWS_ENDPOINT_URL": "", "TASTEBUD_SAGEMAKER_RUNTIME_URL": ""}  # the template's defaults
    assert use_local_endpoints(deployed) == {} and "AWS_ENDPOINT_URL" not in deployed
    local = {"TASTEBUD_AWS_ENDPOINT_URL": "http://172.17.0.1:5000", "TASTEBUD_SAGEMAKER_RUNTIME_URL": "http://h:1"}
    use_local_endpoints(local)
    assert local["AWS_ENDPOINT_URL"] == "http://172.17.0.1:5000"
    assert local["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == "http://h:1"


def test_boto3_clients_follow_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    settings = {"TASTEBUD_AWS_ENDPOINT_URL": "http://172.17.0.1:5000",
                "TASTEBUD_SAGEMAKER_RUNTIME_URL": "http://172.17.0.1:6000"}
    for name, value in use_local_endpoints(dict(settings)).items():  # into os.environ through monkeypatch: undone
        monkeypatch.setenv(name, value)
    session = boto3.session.Session(region_name="eu-west-1", **CREDENTIALS)
    assert session.client("dynamodb").meta.endpoint_url == "http://172.17.0.1:5000"
    assert session.client("sagemaker-runtime").meta.endpoint_url == "http://172.17.0.1:6000"


def test_the_opensearch_client_speaks_http_only_when_asked() -> None:
    credentials = boto3.session.Session(**CREDENTIALS).get_credentials()
    local = opensearch_client("http://172.17.0.1:9200", "eu-west-1", credentials, timeout=1.0)
    (connection,) = local.transport.connection_pool.connections
    assert connection.host == "http://172.17.0.1:9200" and not connection.use_ssl
    deployed = opensearch_client("vpc-x.eu-west-1.es.amazonaws.com", "eu-west-1", credentials, timeout=1.0)
    (connection,) = deployed.transport.connection_pool.connections
    assert connection.host == "https://vpc-x.eu-west-1.es.amazonaws.com:443" and connection.use_ssl


def test_plain_redis_is_refused_unless_local_endpoints_are_in_use() -> None:
    with pytest.raises(SettingsError, match="rediss://"):
        elasticache_client("redis://127.0.0.1:6379/0", "t", socket_timeout=0.1, connect_timeout=0.1)
    client = elasticache_client("redis://127.0.0.1:6379/0", "t", socket_timeout=0.1, connect_timeout=0.1,
                                allow_plaintext=True)
    assert client.connection_pool.connection_kwargs["password"] == "t"


def test_the_base_image_digest_follows_its_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python = base_image.python312()
    pins = tmp_path / "pins.txt"
    pins.write_text("boto3==1.40.4\n")
    monkeypatch.setattr(base_image, "PINS", pins)
    first = base_image.inputs_digest(python)
    assert base_image.inputs_digest(python) == first  # nothing changed: no rebuild
    pins.write_text("boto3==1.40.5\n")
    assert base_image.inputs_digest(python) != first


@pytest.fixture
def served_domain() -> Iterator[tuple[FakeOpenSearchDomain, str]]:
    domain = FakeOpenSearchDomain()
    server = serve_opensearch(domain, HOST)
    try:
        yield domain, f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_opensearch_stand_in_answers_the_adapters_over_http(served_domain: tuple[FakeOpenSearchDomain, str]
                                                               ) -> None:
    domain, url = served_domain
    client = opensearch_client(url, "eu-west-1", boto3.session.Session(**CREDENTIALS).get_credentials(), timeout=5.0)
    vectors = np.eye(6, 4, dtype=np.float32)
    admin = OpenSearchIndexAdmin(client, "items")
    name = admin.create("idx-1", 4)
    catalog = make_catalog(6, item_id_format="i{:06d}")
    assert admin.bulk_load(name, admin.documents(catalog, vectors)) == 6
    admin.swap_alias(name)
    index = OpenSearchIndex(client, "items", catalog, "idx-1", require_in_stock=False, timeout=5.0)
    rows, _ = index.search(vectors[2], 3)
    assert rows[0] == 2  # exact k-NN over HTTP
    assert domain.requests[-1]["headers"].get("Authorization", "").startswith("AWS4-HMAC-SHA256")  # SigV4 signed
    missing = OpenSearchIndex(client, "nothing", catalog, "idx-1", require_in_stock=False, timeout=5.0)
    with pytest.raises(DependencyError, match="index_not_found_exception"):
        missing.search(vectors[0], 3)


@pytest.mark.slow
def test_the_user_tower_endpoint_answers_as_the_in_process_tower(tiny_artifacts: Path) -> None:
    version = LocalArtifactStore(tiny_artifacts).current_dir()
    server = serve_endpoints({"user-tower": UserTowerEndpoint(version)}, HOST)
    url = f"http://{HOST}:{server.server_address[1]}"
    try:
        client = boto3.client("sagemaker-runtime", endpoint_url=url, region_name="eu-west-1",
                              config=Config(retries={"total_max_attempts": 1}), **CREDENTIALS)
        catalog = Catalog.load(version / "catalog.npz")
        no_text = np.zeros((catalog.size, 0), dtype=np.float32)  # as the deployed function loads the vocabulary
        dimension = int(Manifest.read(version).retrieval["dimension"])
        encoder = SageMakerUserEncoder("user-tower", two_tower_payload(TwoTowerVocab.load(version, no_text)),
                                       dimension=dimension, client=client)
        reference = OnnxUserEncoder(version / USER_TOWER,
                                    TwoTowerVocab.load(version, np.load(version / "text_vectors.npy")))
        users = UserTable.load(version / "users.npz")
        user = max((users.user(str(u)) for u in users.user_ids), key=lambda p: p.history_rows.size)
        context = RequestContext(now=NOW, domain="grocery")
        served, expected = encoder.encode(user, context), reference.encode(user, context)
        assert served is not None and expected is not None
        assert np.max(np.abs(served - expected / np.linalg.norm(expected))) < 2e-6
        unknown = SageMakerUserEncoder("no-such-endpoint", two_tower_payload(TwoTowerVocab.load(version, no_text)),
                                       dimension=dimension, client=client)
        with pytest.raises(DependencyError, match="ValidationError"):
            unknown.encode(user, context)
        with pytest.raises(ClientError) as error:  # the container's 400, wrapped as SageMaker does
            client.invoke_endpoint(EndpointName="user-tower", Body=b'{"instances": [{}]}',
                                   ContentType="application/json")
        assert error.value.response["Error"]["Code"] == "ModelError"
        assert error.value.response["OriginalStatusCode"] == 400
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def standins(tiny_artifacts: Path, tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIns]:
    work = tmp_path_factory.mktemp("standins")
    running = start_standins(HOST, LocalArtifactStore(tiny_artifacts).current_dir(), tiny_data, work,
                             say=lambda line: None)
    try:
        yield running
    finally:
        running.close()


@pytest.mark.slow
def test_the_seeded_stand_ins_serve_the_deployed_composition(standins: StandIns, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    environment = {**standins.environment(), "TASTEBUD_BACKEND": "aws", "TASTEBUD_ARTIFACTS": str(tmp_path),
                   "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
                   "AWS_SECRET_ACCESS_KEY": "testing"}
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    for name, value in {**environment, **use_local_endpoints(dict(environment))}.items():
        monkeypatch.setenv(name, value)  # undone after the test: no later client follows the stand-ins
    service = build_aws_service(Settings.from_env())
    answer = invoke(create_handler(lambda: service), load_event("recommend"))
    page = response_json(answer)
    assert answer["statusCode"] == 200 and page["degraded"] == [] and len(page["items"]) == 10, page
    assert page["index_version"] == standins.live["index_version"]
    env_file = standins.env_vars_file(tmp_path / "env.json")
    assert json.loads(env_file.read_text()) == {"Parameters": standins.environment()}
    verify, warm = (json.loads(p.read_text()) for p in standins.index_task_events(tmp_path / "events"))
    assert verify["action"] == "verify" and verify["index"] == standins.live["index"]
    assert warm == {"action": "warm_up", "index": standins.live["index"]}
