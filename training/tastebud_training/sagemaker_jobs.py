"""The SageMaker job definitions of the training state machine, built with the SageMaker Python SDK.

Run in its own venv (``make sagemaker-jobs``; the SDK pins rich/protobuf/packaging versions that conflict
with the dev venv, like samtranslator): ``python -m tastebud_training.sagemaker_jobs --region R --bucket B
--role ARN --out jobs.json --source-tar sourcedir.tar.gz``. It writes ``jobs.json``, one boto3 request per
job (``CreateProcessingJob`` for ``etl`` and ``embeddings``, ``CreateTrainingJob`` for ``training``) as the
SDK renders them (``sagemaker.workflow.airflow``: the same rendering the SDK's own workflow integrations
use). Upload both files to ``s3://B/training/`` (docs/DEPLOY.md); the ``job_specs`` control task reads
``jobs.json`` at the start of every execution and only sets the job names, so the state machine runs
exactly this definition.

  etl         PySpark on the SageMaker Spark processing image (3.5): lake + catalog -> data-contract Parquet
              tables (tastebud_training/etl/spark_etl.py); output s3://B/training/tables/. The lake is read for
              the last ``LAKE_WINDOW_DAYS`` days of ``dt=`` partitions only.
  embeddings  item text (MiniLM) and image (EfficientNetB0) vectors into the training cache, on the TF DLC
  training    the project's `tastebud train` + `tastebud evaluate` (tastebud_training/sagemaker_entry.py) on
              the AWS Deep Learning Container tensorflow-training:<TF>-cpu-py312; channels ``train``
              (tables) and ``cache`` (embeddings); metric regexes feed the evaluation gate. ``cache`` is a
              ManifestFile channel: the embeddings job lists the files it wrote in ``cache/manifest.json``, so
              the vectors of earlier nights (still under the prefix: S3 outputs only add) are not downloaded.
The TF version (``TF_VERSION``) is the DLC's: the user tower it exports is served by
``tensorflow-inference:<TF_VERSION>-cpu`` (template parameter ``UserTowerTfVersion``), so they match.

Containers' contracts the requests must meet (tests/aws/test_sagemaker_jobs.py and test_spark_etl.py run them,
modelled in tests/aws/container_contracts.py):
- ``processing_config()`` builds ``AppSpecification`` from ITS ``container_entrypoint`` argument and ignores
  ``Processor(entrypoint=...)``: each processing job passes its entrypoint explicitly. Without it the Spark
  image runs its own ENTRYPOINT ``smspark-submit`` with ``--lake ...`` as the app, and the TF image ``bash``.
- ``smspark-submit`` joins spark-submit's argv into ONE string and runs it with ``shell=True`` (older images
  join with spaces, newer ones ``shlex.quote`` each part): every ETL argument must be a shell-safe word, so
  the event weights are ``click=1,add_to_cart=2,...``, never JSON (``build_jobs`` refuses anything else).
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import tarfile
from pathlib import Path
from typing import Any

from tastebud.event_types import EVENT_TYPES, EVENT_WEIGHTS

ROOT = Path(__file__).resolve().parents[2]
TF_VERSION = "2.19"
PY_VERSION = "py312"
SPARK_VERSION = "3.5"
METRICS = [{"Name": name, "Regex": f"tastebud {name}=([0-9.]+);"} for name in ("recall@20", "ndcg@20", "recall@100")]
PROCESSING = "/opt/ml/processing"
SHIM = "from tastebud_training.sagemaker_entry import main\n\nraise SystemExit(main())\n"
# Nightly cost bound: the ETL reads this many days of `dt=` partitions (plus today), not the whole lake.
LAKE_WINDOW_DAYS = 180
CACHE_MANIFEST = "manifest.json"  # tastebud_training.sagemaker_entry.CACHE_MANIFEST
ETL_SCRIPT = f"{PROCESSING}/input/code/spark_etl.py"
ETL_ENTRYPOINT = ["smspark-submit", ETL_SCRIPT]
EMBEDDINGS_ENTRYPOINT = ["bash", "-c", f"cd {PROCESSING}/input/code && tar xzf sourcedir.tar.gz && "
                         "python -m pip install -q -r requirements.txt && "
                         "python -m tastebud_training.sagemaker_entry embed"]


def event_weights_argument(weights: dict[str, int]) -> str:
    """``click=1,add_to_cart=2,purchase=3``: survives smspark-submit's shell unchanged (JSON would not)."""
    return ",".join(f"{name}={int(weight)}" for name, weight in weights.items())


def etl_arguments(*, lake: str, catalog: str, tables: str, window_days: int = LAKE_WINDOW_DAYS) -> list[str]:
    arguments = ["--lake", lake, "--catalog", catalog, "--out", tables, "--event-types", ",".join(EVENT_TYPES),
                 "--event-weights", event_weights_argument(EVENT_WEIGHTS), "--window-days", str(window_days)]
    unsafe = [argument for argument in arguments if shlex.quote(argument) != argument]
    if unsafe:  # smspark-submit would split or expand them in its shell
        raise ValueError(f"ETL arguments must be shell-safe words: {unsafe}")
    return arguments


def source_tarball(out: Path) -> Path:
    """``sourcedir.tar.gz``: the training package, the shared ``tastebud`` package, the entry script and the
    requirements the DLC lacks (installed by the SageMaker training toolkit before the script runs)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        for package, base in (("tastebud_training", ROOT / "training"), ("tastebud", ROOT / "layers" / "core")):
            tar.add(base / package, arcname=package,
                    filter=lambda info: None if "__pycache__" in info.name else info)
        tar.add(ROOT / "requirements" / "sagemaker-job.txt", arcname="requirements.txt")
        shim = SHIM.encode()
        info = tarfile.TarInfo("sagemaker_entry.py")
        info.size = len(shim)
        tar.addfile(info, io.BytesIO(shim))
    return out


def build_jobs(*, region: str, bucket: str, role: str, prefix: str = "training", lake: str = "lake/events",
               training_instance: str = "ml.c7i.4xlarge", etl_instance: str = "ml.m5.2xlarge", etl_instances: int = 2,
               hyperparameters: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    import boto3
    import sagemaker
    from sagemaker.inputs import TrainingInput
    from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
    from sagemaker.tensorflow import TensorFlow
    from sagemaker.workflow.airflow import processing_config, training_config

    session = sagemaker.session.Session(boto_session=boto3.Session(region_name=region), default_bucket=bucket)
    base = f"s3://{bucket}/{prefix}"
    tables, cache = f"{base}/tables/", f"{base}/cache/"

    # py312 explicitly: the bare `3.5-cpu` tag does not say which Python runs spark_etl.py (3.9 and 3.12 exist).
    spark = Processor(role=role, image_uri=sagemaker.image_uris.retrieve(
        "spark", region, version=SPARK_VERSION, py_version=PY_VERSION, image_scope="processing"),
        instance_count=etl_instances,
        instance_type=etl_instance, volume_size_in_gb=100, max_runtime_in_seconds=4 * 3600, sagemaker_session=session,
        entrypoint=ETL_ENTRYPOINT)
    # Spark reads the lake and writes the tables on S3 itself (every executor, no copy through one disk).
    # processing_config() ignores Processor.entrypoint: pass it, or the request has no ContainerEntrypoint.
    etl = processing_config(spark, inputs=[
        ProcessingInput(source=f"{base}/code/spark_etl.py", destination=f"{PROCESSING}/input/code", input_name="code")],
        outputs=[], job_name="tastebud-etl", container_entrypoint=spark.entrypoint,
        container_arguments=etl_arguments(lake=f"s3://{bucket}/{lake}/", catalog=f"{base}/catalog/", tables=tables))

    tf_training = sagemaker.image_uris.retrieve("tensorflow", region, version=TF_VERSION, py_version=PY_VERSION,
                                                instance_type=training_instance, image_scope="training")
    embedder = Processor(role=role, image_uri=tf_training, instance_count=1, instance_type=training_instance,
                         volume_size_in_gb=50, max_runtime_in_seconds=4 * 3600, sagemaker_session=session,
                         entrypoint=EMBEDDINGS_ENTRYPOINT, env={"TASTEBUD_CACHE_S3_URI": cache})
    embeddings = processing_config(embedder, inputs=[
        ProcessingInput(source=f"{base}/code/sourcedir.tar.gz", destination=f"{PROCESSING}/input/code",
                        input_name="code"),
        ProcessingInput(source=tables, destination=f"{PROCESSING}/input/data", input_name="tables")],
        outputs=[ProcessingOutput(source=f"{PROCESSING}/output/cache", destination=cache, output_name="cache")],
        job_name="tastebud-embeddings", container_entrypoint=embedder.entrypoint)

    estimator = TensorFlow(
        entry_point="sagemaker_entry.py", source_dir=f"{base}/code/sourcedir.tar.gz", framework_version=TF_VERSION,
        py_version=PY_VERSION, role=role, instance_count=1, instance_type=training_instance, volume_size=100,
        max_run=8 * 3600, output_path=f"{base}/output", code_location=f"{base}/code", sagemaker_session=session,
        hyperparameters={"epochs": 8, "seed": 7, "retrieval": "two_tower", "evaluate": "true",
                         **(hyperparameters or {})},
        metric_definitions=METRICS, disable_profiler=True, debugger_hook_config=False)
    training = training_config(estimator, inputs={
        "train": TrainingInput(tables, content_type="application/x-parquet"),
        "cache": TrainingInput(f"{cache}{CACHE_MANIFEST}", s3_data_type="ManifestFile")}, job_name="tastebud-training")
    training.pop("S3Operations", None)  # the code is uploaded by `make sagemaker-jobs`, not by the SDK
    return {"etl": etl, "embeddings": embeddings, "training": training}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--role", required=True, help="the stack's TrainingJobRole ARN")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--source-tar", type=Path)
    args = parser.parse_args(argv)
    jobs = build_jobs(region=args.region, bucket=args.bucket, role=args.role)
    args.out.write_text(json.dumps(jobs, indent=1, sort_keys=True, default=str))
    if args.source_tar:
        source_tarball(args.source_tar)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
