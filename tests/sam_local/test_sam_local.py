"""Issue 25: every function run by `sam local` in a Lambda python3.12 container (the offline base image), with its
sample event, against the stand-ins of its AWS dependencies; and `sam local start-api` answering the README's curl
lines. This proves that the built layer holds everything the functions import beyond what the runtime provides,
and that the deployed composition (tastebud.composition.aws) computes a real recommendation inside the container.

Needs a Docker engine (CI runs as root and the tier starts dockerd itself, with the host's network settings left
alone) and Debian's debootstrap for the base image; `make test` installs both.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tastebud.artifacts import LocalArtifactStore, Manifest
from tastebud.processes import terminate

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / ".venv-sam" / "bin" / "sam"
TASTEBUD = ROOT / ".venv" / "bin" / "tastebud"
EVENTS = ROOT / "events"
INVOKE_TIMEOUT_S = 300

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class LocalStack:
    template: Path
    env_vars: Path
    state: Path
    settings: dict[str, str]
    manifest: Manifest
    host_network_before: dict[str, str]


def host_network() -> dict[str, str]:
    """What a default dockerd changes on the host and leaves changed: IP forwarding and the iptables rules."""
    iptables = shutil.which("iptables") or shutil.which("iptables-legacy")
    rules = subprocess.run([iptables, "-S"], capture_output=True, text=True, check=False).stdout if iptables else ""
    nat = subprocess.run([iptables, "-t", "nat", "-S"], capture_output=True, text=True,
                         check=False).stdout if iptables else ""
    return {"ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(), "filter": rules, "nat": nat}


def _sam_env() -> dict[str, str]:
    # The moto server accepts any credentials; SAM hands these to the containers as the function's role would.
    return {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _run(command: list[str], timeout: float = INVOKE_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=ROOT, env=_sam_env(), capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert done.returncode == 0, f"{' '.join(command[:4])}: {done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def stack(tiny_artifacts: Path, tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    missing = [str(p) for p in (SAM, Path("/usr/sbin/dockerd"), Path("/usr/sbin/debootstrap")) if not p.exists()]
    if missing:
        message = f"{', '.join(missing)} missing: `make test` installs them"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    state = tmp_path_factory.mktemp("sam-local")
    build = state / "build"
    before = host_network()
    try:  # `image` starts the engine first: a failure building the image must stop it too
        _run([str(TASTEBUD), "sam-local", "image", "--dir", str(state)], timeout=1200)
        _run(["make", "-s", "sam-build", f"SAM_BUILD_DIR={build}"], timeout=900)
        _run([str(TASTEBUD), "sam-local", "up", "--artifacts", str(tiny_artifacts), "--data", str(tiny_data),
              "--dir", str(state)], timeout=600)
        env_vars = state / "env.json"
        yield LocalStack(template=build / "template.yaml", env_vars=env_vars, state=state,
                         settings=json.loads(env_vars.read_text())["Parameters"],
                         manifest=Manifest.read(LocalArtifactStore(tiny_artifacts).current_dir()),
                         host_network_before=before)
    finally:
        _run([str(TASTEBUD), "sam-local", "down", "--dir", str(state)], timeout=120)


def invoke(stack: LocalStack, function: str, event: Path) -> Any:
    """`sam local invoke` as the README shows it; the function's answer (SAM prints it last on stdout)."""
    done = _run([str(SAM), "local", "invoke", function, "-e", str(event), "--template", str(stack.template),
                 "--env-vars", str(stack.env_vars), "--skip-pull-image"])
    lines = [line for line in done.stdout.strip().splitlines() if line.startswith("{")]
    assert lines, f"no answer from {function}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return json.loads(lines[-1])


def body(answer: dict[str, Any]) -> Any:
    return json.loads(answer["body"])


def test_the_recommend_function_answers_a_real_recommendation_in_its_container(stack: LocalStack) -> None:
    answer = invoke(stack, "RecommendFunction", EVENTS / "recommend.json")
    page = body(answer)
    assert answer["statusCode"] == 200, page
    assert len(page["items"]) == 10 and page["degraded"] == []  # every dependency answered: none fell back
    assert page["model_version"] == stack.manifest.model_version
    assert page["index_version"] == stack.manifest.index_version
    assert [item["rank"] for item in page["items"]] == list(range(1, 11))
    assert len({item["item_id"] for item in page["items"]}) == 10

    cold = invoke(stack, "RecommendFunction", EVENTS / "recommend_cold_user.json")
    assert cold["statusCode"] == 200 and body(cold)["items"]

    health = invoke(stack, "RecommendFunction", EVENTS / "health.json")
    assert health["statusCode"] == 200 and body(health)["model_version"] == stack.manifest.model_version


@pytest.mark.parametrize("event", ["recommend_bad_k", "recommend_invalid_json"])
def test_a_bad_request_gets_the_same_400_as_everywhere(stack: LocalStack, event: str) -> None:
    """The container's answer equals the in-process handler's (the local server's and the tests') for the event."""
    from tastebud.api.http import create_handler

    from factories import MemoryStock, make_service
    from helpers import invoke as invoke_in_process
    from helpers import load_event

    service = make_service(stock=MemoryStock(), item_id_format="i{:06d}")
    expected = invoke_in_process(create_handler(lambda: service), load_event(event))
    answer = invoke(stack, "RecommendFunction", EVENTS / f"{event}.json")
    assert answer["statusCode"] == expected["statusCode"] == 400
    assert body(answer)["error"] == body(expected)["error"]


def _redis(stack: LocalStack) -> Any:
    import boto3
    import redis

    secrets = boto3.client("secretsmanager", endpoint_url=stack.settings["TASTEBUD_AWS_ENDPOINT_URL"],
                           region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    token = json.loads(secrets.get_secret_value(SecretId=stack.settings["TASTEBUD_REDIS_AUTH_SECRET_ARN"])
                       ["SecretString"])["token"]
    return redis.Redis.from_url(stack.settings["TASTEBUD_REDIS_URL"], password=token)


def test_the_stock_function_applies_its_change(stack: LocalStack) -> None:
    from tastebud.adapters.redis_stock import RedisStockStore

    store = RedisStockStore(_redis(stack))
    store.set_stock("i000001", True)
    assert not store.out_of_stock(["i000001"])[0]
    answer = invoke(stack, "StockFunction", EVENTS / "stock_update.json")  # i000001 -> out of stock
    assert answer["statusCode"] == 200, answer
    assert store.out_of_stock(["i000001"])[0]

    bad = invoke(stack, "StockFunction", EVENTS / "stock_update_bad_body.json")
    assert bad["statusCode"] == 400 and body(bad)["error"]["field"] == "in_stock"


def test_the_ingest_function_folds_the_kinesis_batch_into_the_history(stack: LocalStack) -> None:
    import boto3

    record = json.loads(EVENTS.joinpath("ingest_kinesis.json").read_text())["Records"][0]
    event = json.loads(base64.b64decode(record["kinesis"]["data"]))
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.settings["TASTEBUD_AWS_ENDPOINT_URL"],
                            region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    key = {"user_id": {"S": event["user_id"]}, "item_id": {"S": event["item_id"]}}
    table = stack.settings["TASTEBUD_HISTORY_TABLE"]
    before = float(dynamodb.get_item(TableName=table, Key=key).get("Item", {}).get("weight", {}).get("N", 0))
    assert invoke(stack, "IngestFunction", EVENTS / "ingest_kinesis.json") == {"batchItemFailures": []}
    after = float(dynamodb.get_item(TableName=table, Key=key)["Item"]["weight"]["N"])
    assert after > before
    # A malformed record can never succeed: it is logged and dropped, not retried for ever.
    assert invoke(stack, "IngestFunction", EVENTS / "ingest_kinesis_malformed.json") == {"batchItemFailures": []}


def test_the_lifecycle_functions_run_their_tasks(stack: LocalStack) -> None:
    plan = invoke(stack, "ControlTaskFunction", EVENTS / "control_prepare.json")
    assert plan["version"] == stack.manifest.version and plan["already_live"] is True
    assert plan["live"]["index"] == plan["index"]
    verified = invoke(stack, "IndexTaskFunction", stack.state / "events" / "index_verify.json")
    assert verified["ok"] is True and verified["count"] == verified["expected"] and verified["recall"] == 1.0
    warm = invoke(stack, "IndexTaskFunction", stack.state / "events" / "index_warm_up.json")
    assert warm["warm"] is True


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _http(method: str, url: str, payload: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=payload.encode() if payload is not None else None, method=method,
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_start_api_answers_the_readme_requests(stack: LocalStack) -> None:
    port = _free_port()
    log = (stack.state / "start-api.log").open("w")
    process = subprocess.Popen(
        [str(SAM), "local", "start-api", "--port", str(port), "--template", str(stack.template),
         "--env-vars", str(stack.env_vars), "--warm-containers", "LAZY", "--skip-pull-image"],
        cwd=ROOT, env=_sam_env(), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:  # the API is up once its port answers (SAM prints the routes first)
            try:
                urllib.request.urlopen(f"{base}/nowhere", timeout=2)
            except urllib.error.HTTPError:
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, \
                    (stack.state / "start-api.log").read_text()[-3000:]
                time.sleep(0.5)
        status, page = _http("POST", f"{base}/v1/recommendations", '{"user_id": "u00001", "k": 10}')
        assert status == 200 and len(page["items"]) == 10 and page["degraded"] == [], page
        status, error = _http("POST", f"{base}/v1/recommendations", '{"user_id": "u00001", "k": 0}')
        assert status == 400 and error["error"]["field"] == "k"
        status, stock = _http("PUT", f"{base}/v1/stock/i000123", '{"in_stock": false}')
        assert status == 200, stock
        status, health = _http("GET", f"{base}/health")
        assert status == 200 and health["model_version"] == stack.manifest.model_version
    finally:
        terminate(process, 30)
        log.close()
        _remove_leftover_containers()


def _remove_leftover_containers() -> None:
    """start-api's warm containers normally go with it; a killed SAM leaves them running."""
    docker = shutil.which("docker")
    if docker is None:
        return
    ids = subprocess.run([docker, "ps", "-q", "--filter", "label=sam.cli.container.type"], capture_output=True,
                         text=True, check=False).stdout.split()
    if ids:
        subprocess.run([docker, "rm", "-f", *ids], capture_output=True, check=False)


def test_the_engine_left_the_hosts_network_settings_alone(stack: LocalStack) -> None:
    """Last in the module, after every container ran: no IP forwarding turned on, no iptables rule added."""
    assert host_network() == stack.host_network_before
