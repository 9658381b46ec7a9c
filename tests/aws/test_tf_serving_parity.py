"""Issue 20, check 4 (defect 8): the user tower the endpoint serves, run by the serving container's TensorFlow.

The SageMaker endpoint runs TF Serving 2.19 (template.yaml UserTowerTfVersion; there is no 2.20 DLC), while the
bootstrap version is trained and exported by TF 2.20. Here the SavedModel of a tiny trained version
(``tiny_artifacts``: the real training pipeline) is loaded by TF 2.19 in its own venv (.venv-tf219, mk/parity.mk)
the way TF Serving loads it, and fed the request body the Lambda's ``SageMakerUserEncoder`` puts on the wire,
parsed by TF Serving's REST rules (tests/aws/tf_serving_predict.py). The container's answer goes back through the
encoder, whose vector must equal the in-process ONNX user tower's for the same user and context.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aws_doubles import sagemaker_reply, sagemaker_runtime_client

from tastebud.adapters.aws.sagemaker_encoder import SageMakerUserEncoder, two_tower_payload
from tastebud.adapters.embedded.onnx_user_encoder import OnnxUserEncoder
from tastebud.adapters.embedded.user_table import UserTable
from tastebud.artifacts import USER_TOWER, LocalArtifactStore, Manifest
from tastebud.catalog import Catalog
from tastebud.domain import RequestContext, UserProfile
from tastebud.features.two_tower import TwoTowerVocab

from factories import NOW
from helpers import load_template

ROOT = Path(__file__).resolve().parents[2]
TF_SERVING_PYTHON = ROOT / ".venv-tf219" / "bin" / "python"
HARNESS = Path(__file__).with_name("tf_serving_predict.py")
# ONNX Runtime vs TF 2.19 on the same float32 weights: summation order only (measured ~1e-7).
TOLERANCE = 2e-6

pytestmark = pytest.mark.slow


def tf_serving(*args: str) -> Any:
    """Run the harness in the serving TF's venv; its stdout is JSON."""
    if not TF_SERVING_PYTHON.exists():
        message = f"{TF_SERVING_PYTHON} missing: `make tf-serving-venv` (make test builds it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run([str(TF_SERVING_PYTHON), str(HARNESS), *args], capture_output=True, text=True,
                          timeout=300, check=False, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout) if done.stdout.strip() else None


@pytest.fixture(scope="module")
def version(tiny_artifacts: Path) -> Path:
    return LocalArtifactStore(tiny_artifacts).current_dir()


@pytest.fixture(scope="module")
def saved_model(version: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.tar.gz as the SageMaker TF Serving container unpacks it into /opt/ml/model."""
    out = tmp_path_factory.mktemp("opt_ml_model")
    with tarfile.open(version / "user_tower" / "model.tar.gz") as tar:
        tar.extractall(out, filter="data")
    return out


def lambda_encoder(version: Path, respond: Any) -> SageMakerUserEncoder:
    """The encoder exactly as tastebud.composition.aws builds it (vocabulary WITHOUT the text table), on a real
    botocore sagemaker-runtime client whose HTTP layer is ``respond``."""
    manifest = Manifest.read(version)
    no_text = np.zeros((Catalog.load(version / "catalog.npz").size, 0), dtype=np.float32)
    client, _ = sagemaker_runtime_client(respond)
    return SageMakerUserEncoder("user-tower", two_tower_payload(TwoTowerVocab.load(version, no_text)),
                                dimension=int(manifest.retrieval["dimension"]), client=client)


def cases(version: Path) -> list[tuple[str, UserProfile, RequestContext]]:
    users = UserTable.load(version / "users.npz")
    profiles = [users.user(str(user_id)) for user_id in users.user_ids]
    warm = max(profiles, key=lambda p: p.history_rows.size)
    with_preferences = next(p for p in profiles if p.preference_rows.size)
    return [("longest history", warm, RequestContext(now=NOW, domain="grocery")),
            ("preferences, located", with_preferences, RequestContext(now=NOW + 5 * 3600, domain="restaurant",
                                                                      lat=52.52, lon=13.40)),
            ("cold", UserProfile.cold("new-user"), RequestContext(now=NOW + 40 * 3600))]


def test_tf_serving_2_19_answers_the_lambdas_request_as_the_onnx_user_tower_does(
        version: Path, saved_model: Path, tmp_path: Path) -> None:
    # 1. What the Lambda puts on the wire, captured at botocore's HTTP layer.
    bodies: list[str] = []

    def capture(request: Any) -> Any:
        bodies.append(request.body.decode())
        return sagemaker_reply([[1.0] + [0.0] * 127])

    capturing = lambda_encoder(version, capture)
    users = cases(version)
    for _, user, context in users:
        capturing.encode(user, context)
    assert len(bodies) == len(users)

    # 2. TF Serving 2.19 answers each body (and the object-graph loader, for comparison).
    requests = tmp_path / "requests.json"
    requests.write_text(json.dumps(bodies))
    answers = tf_serving("predict", str(saved_model / "user_tower" / "1"), str(requests))
    for (name, _, _), answer in zip(users, answers, strict=True):
        assert answer["status"] == 200, f"{name}: TF Serving 2.19 answered {answer['body']}"

    # 3. The answer goes back through the Lambda's encoder; the ONNX user tower is the in-process reference.
    replies = {body: answer for body, answer in zip(bodies, answers, strict=True)}
    served = lambda_encoder(version, lambda request: (200, {"content-type": "application/json"},
                                                      json.dumps(replies[request.body.decode()]["body"]).encode()))
    onnx = OnnxUserEncoder(version / USER_TOWER, TwoTowerVocab.load(version, np.load(version / "text_vectors.npy")))
    for (name, user, context), answer in zip(users, answers, strict=True):
        endpoint = served.encode(user, context)
        reference = onnx.encode(user, context)
        assert endpoint is not None and reference is not None
        assert np.max(np.abs(endpoint - reference / np.linalg.norm(reference))) < TOLERANCE, name
        raw = np.asarray(answer["body"]["predictions"][0], dtype=np.float32)
        assert np.max(np.abs(raw - np.asarray(answer["object_graph"][0], np.float32))) < TOLERANCE, name


def test_tf_serving_rejects_what_its_rest_parser_rejects(saved_model: Path, tmp_path: Path) -> None:
    """The harness enforces TF Serving's conversion rules, so a drift of the Lambda's JSON fails the check above."""
    good = {"user_idx": 1, "age_idx": 0, "gender_idx": 0, "area_idx": 0, "hour": 3, "dow": 2, "domain": 1,
            "pref_idx": [0] * 8, "hist_idx": [0] * 20, "hist_weight": [0.0] * 20, "hist_row": [0] * 20}
    drifts = {
        "a float in an int64 input": {**good, "user_idx": 1.0},
        "a ragged list": {**good, "hist_idx": [[1, 2], [3]]},
        "a history of another length": {**good, "hist_idx": [0] * 19},
        "a missing input": {k: v for k, v in good.items() if k != "hist_row"},
        "an unknown input": {**good, "history_item_ids": ["i1"]},
        "a string for an int64": {**good, "domain": "grocery"},
    }
    requests = tmp_path / "requests.json"
    requests.write_text(json.dumps([json.dumps({"instances": [good]})]
                                   + [json.dumps({"instances": [drift]}) for drift in drifts.values()]))
    first, *rejected = tf_serving("predict", str(saved_model / "user_tower" / "1"), str(requests))
    assert first["status"] == 200
    for name, answer in zip(drifts, rejected, strict=True):
        assert answer["status"] == 400 and "error" in answer["body"], name


def test_the_archive_records_the_serving_versions_that_load_it(version: Path, saved_model: Path) -> None:
    from tastebud_training.two_tower.serving import SERVING_MANIFEST, SERVING_TF_VERSION

    record = json.loads((saved_model / SERVING_MANIFEST).read_text())
    assert json.loads((version / "user_tower" / SERVING_MANIFEST).read_text()) == record
    assert SERVING_TF_VERSION in record["servable_by"]
    assert record["exported_by_tensorflow"] == (saved_model / "tensorflow_version").read_text().strip()


def test_the_checked_in_op_registry_is_the_serving_tensorflows(tmp_path: Path) -> None:
    """package_model_tar checks graphs against training/.../tf_serving_ops/<version>.txt: keep it true."""
    from tastebud_training.two_tower.serving import OP_REGISTRY_DIR, SERVING_TF_VERSION

    tf_serving("ops", str(tmp_path / "ops.txt"))
    assert (tmp_path / "ops.txt").read_text() == (OP_REGISTRY_DIR / f"{SERVING_TF_VERSION}.txt").read_text(), \
        "regenerate with `make tf-serving-ops`"


def test_the_serving_version_is_the_same_everywhere() -> None:
    """The export's target, the template default, the parity venv's TensorFlow and the runbook agree."""
    from tastebud_training.two_tower.serving import SERVING_TF_VERSION

    template = load_template(ROOT / "template.yaml")
    assert template["Parameters"]["UserTowerTfVersion"]["Default"] == SERVING_TF_VERSION
    pins = (ROOT / "requirements" / "tf-serving-parity.txt").read_text()
    assert f"tensorflow-cpu=={SERVING_TF_VERSION}." in pins
    runbook = (ROOT / "docs" / "DEPLOY.md").read_text()
    assert f"`UserTowerTfVersion` (default {SERVING_TF_VERSION}) must be listed in the archive's `tf_serving.json` " \
           "`servable_by`" in " ".join(runbook.split())


def test_the_export_refuses_a_graph_the_serving_tensorflow_cannot_load(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A TF Serving whose registry lacks an op the graph runs (here: 2.19's without Einsum) gets no archive."""
    from tastebud_training.two_tower import serving
    from tastebud_training.two_tower.model import TowerConfig, build_user_tower

    registry = (serving.OP_REGISTRY_DIR / f"{serving.SERVING_TF_VERSION}.txt").read_text().splitlines()
    (tmp_path / "0.1.txt").write_text("\n".join(line for line in registry if not line.startswith("Einsum ")))
    (tmp_path / f"{serving.SERVING_TF_VERSION}.txt").write_text("\n".join(registry))
    monkeypatch.setattr(serving, "OP_REGISTRY_DIR", tmp_path)
    text = np.zeros((12, 6), np.float32)
    vocab = TwoTowerVocab(user_ids=np.asarray(["u1", "u2"]), age_bands=("25-34",), genders=("female",),
                          item_index=np.arange(1, 13), merchant_index=np.arange(1, 5), n_items=12, n_merchants=4,
                          n_categories=3, n_preferences=2, price_edges=np.linspace(5, 15, 9), text_vectors=text)
    tower = build_user_tower(vocab.sizes, TowerConfig())
    archive = tmp_path / "user_tower" / "model.tar.gz"
    with pytest.raises(serving.ServingVersionError, match=r"op Einsum is not registered in TF 0\.1"):
        serving.package_model_tar(tower, text, archive, serving_tf_version="0.1")
    assert not archive.exists()
    serving.package_model_tar(tower, text, archive)  # 2.19's registry knows every op and attribute
    assert archive.exists()
