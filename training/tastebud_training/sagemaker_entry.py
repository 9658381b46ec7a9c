"""SageMaker Training entry point: runs the project's `tastebud train` (and `tastebud evaluate`) code inside
the training container, in SageMaker's directory layout (``SM_*`` variables win when the toolkit sets them):

    /opt/ml/input/config/hyperparameters.json   hyperparameters (SageMaker writes every value as a string)
    /opt/ml/input/data/train/                   the ETL's data-contract tables (channel ``train``, Parquet)
    /opt/ml/model/                              ONE artifacts version (manifest.json at the top, user_tower/
                                                model.tar.gz, evaluation.json); SageMaker tars it to
                                                <output>/<job>/output/model.tar.gz, which the ``publish``
                                                control task unpacks into versions/<v>/
    /opt/ml/output/failure                      the reason, when the job fails (shown by DescribeTrainingJob)

The embeddings Processing job (``embed``) also writes ``manifest.json`` into its output: a SageMaker manifest
(``[{"prefix": $TASTEBUD_CACHE_S3_URI}, "<file>", ...]``) of the files it wrote, which the training job's
``cache`` channel (S3DataType ManifestFile) downloads, and nothing else from the prefix.

Metrics are printed as ``tastebud <metric>=<value>;`` lines, which the job definition's metric regexes
(``sagemaker_jobs.METRICS``) turn into FinalMetricDataList for the evaluation gate.

Hyperparameters: epochs, seed, retrieval (two_tower|content), images (true|false), max_ranker_groups,
evaluate (true|false), max_eval_users. The job never builds or imports ScaNN (``TrainConfig.ann_index="none"``,
manifest ``retrieval.index == "none"``): the version's serving index is OpenSearch, loaded from
``index_vectors.npy``; the evaluation uses exact search. ``python -m tastebud_training.sagemaker_entry`` (the job's
``sagemaker_program``); ``TASTEBUD_SM_ROOT`` moves ``/opt/ml`` (tests run it in a temporary directory).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

GATE_METRICS = ("recall@20", "ndcg@20", "recall@100")
CACHE_MANIFEST = "manifest.json"


def _paths() -> dict[str, Path]:
    root = Path(os.environ.get("TASTEBUD_SM_ROOT", "/opt/ml"))
    return {"hyperparameters": root / "input" / "config" / "hyperparameters.json",
            "train": Path(os.environ.get("SM_CHANNEL_TRAIN", root / "input" / "data" / "train")),
            "cache": Path(os.environ.get("SM_CHANNEL_CACHE", root / "input" / "data" / "cache")),
            "model": Path(os.environ.get("SM_MODEL_DIR", root / "model")),
            "failure": root / "output" / "failure",
            # the embeddings Processing job's layout
            "processing_data": root / "processing" / "input" / "data",
            "processing_cache": root / "processing" / "output" / "cache"}


def _hyperparameters(path: Path) -> dict[str, Any]:
    """SageMaker's hyperparameters.json holds JSON-encoded strings ('"true"', '8'); SM_HPS decoded ones."""
    if os.environ.get("SM_HPS"):
        return dict(json.loads(os.environ["SM_HPS"]))
    raw = json.loads(path.read_text()) if path.is_file() else {}
    decoded: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            decoded[name] = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            decoded[name] = value
    return decoded


def embed(paths: dict[str, Path]) -> None:
    """The embeddings Processing job: item text + image vectors into the cache `tastebud train` reads."""
    from tastebud_training.data import load_dataset
    from tastebud_training.item_features import image_features
    from tastebud_training.snapshot import preference_terms
    from tastebud_training.text_embedding import embed_texts, item_texts
    from tastebud_training.train import TrainConfig

    dataset = load_dataset(paths["processing_data"])
    cache = paths["processing_cache"]
    cache.mkdir(parents=True, exist_ok=True)
    embed_texts(item_texts(dataset.items), cache_dir=cache, progress=True)
    terms = preference_terms(dataset.users)
    if terms:
        embed_texts(terms, cache_dir=cache)
    defaults = TrainConfig()
    image_features(dataset, cache, enabled=defaults.images, weights=defaults.image_weights, progress=True, say=print)
    write_cache_manifest(cache, os.environ["TASTEBUD_CACHE_S3_URI"])


def write_cache_manifest(cache: Path, s3_prefix: str) -> Path:
    """The SageMaker manifest of this run's cache files, relative to the S3 prefix the output is uploaded to."""
    files = sorted(path.relative_to(cache).as_posix() for path in cache.rglob("*")
                   if path.is_file() and path.name != CACHE_MANIFEST)
    manifest = cache / CACHE_MANIFEST
    manifest.write_text(json.dumps([{"prefix": s3_prefix.rstrip("/") + "/"}, *files]))
    return manifest


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes")


def run(paths: dict[str, Path]) -> dict[str, Any]:
    from tastebud_training.data import load_dataset
    from tastebud_training.evaluate import evaluate
    from tastebud_training.train import TrainConfig, train

    hps = _hyperparameters(paths["hyperparameters"])
    seed = int(hps.get("seed", 7))
    # ann_index="none": no ScaNN in the job (ScaNN 1.4.2 needs TF 2.20, the DLC has 2.19, and `import scann`
    # would fail); the serving index is OpenSearch, bulk-loaded by the hot swap from index_vectors.npy.
    base = TrainConfig(seed=seed, progress=True, retrieval=str(hps.get("retrieval", "two_tower")),
                       images=_flag(hps.get("images", "true")), ann_index="none",
                       max_ranker_groups=int(hps.get("max_ranker_groups", 6000)))
    config = replace(base, two_tower=replace(base.two_tower, epochs=int(hps.get("epochs", 8)), seed=seed))
    dataset = load_dataset(paths["train"])
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = Path(tmp) / "artifacts"
        cache = Path(tmp) / "cache"
        if paths["cache"].is_dir():  # the embeddings job's output: text/image vectors are not recomputed
            shutil.copytree(paths["cache"], cache)
        manifest = train(dataset, artifacts, config, cache_dir=cache)
        version_dir = artifacts / "versions" / manifest.version
        model_dir = paths["model"]
        model_dir.mkdir(parents=True, exist_ok=True)
        for path in version_dir.iterdir():
            if path.name.startswith("."):
                continue  # markers of the local store
            target = model_dir / path.name
            (shutil.copytree if path.is_dir() else shutil.copy2)(path, target)
        report: dict[str, Any] = {}
        if _flag(hps.get("evaluate", "true")):
            report = evaluate(dataset, artifacts, max_users=int(hps.get("max_eval_users", 3000)), config=config)
            (model_dir / "evaluation.json").write_text(json.dumps(report, indent=1))
            for name in GATE_METRICS:
                value = ((report.get("models") or {}).get("tastebud") or {}).get(name)
                if value is not None:
                    print(f"tastebud {name}={float(value):.6f};", flush=True)
    return {"version": manifest.version, "evaluation": report}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    paths = _paths()
    try:
        if argv[:1] == ["embed"]:
            embed(paths)
        else:
            run(paths)
    except Exception as exc:
        paths["failure"].parent.mkdir(parents=True, exist_ok=True)
        paths["failure"].write_text(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"[:1024])
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
