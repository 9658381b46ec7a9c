"""Preflight: the Deep Learning Container images the jobs and the endpoint pull, in the region's DLC registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from tastebud_training.dlc_registries import DLC_REGISTRIES
from tastebud_training.preflight_result import CheckResult, access_denied, error_code
from tastebud_training.sagemaker_jobs import SPARK_VERSION, TF_VERSION


@dataclass(frozen=True)
class DlcImage:
    repository: str
    tag: str
    why: str


def dlc_images(tf_version: str = TF_VERSION, spark_version: str = SPARK_VERSION) -> list[DlcImage]:
    """The images sagemaker_jobs.py renders and the template's default user-tower image."""
    return [
        DlcImage("tensorflow-inference", f"{tf_version}-cpu", "user tower endpoint (UserTowerTfVersion)"),
        DlcImage("tensorflow-training", f"{tf_version}-cpu-py312", "embeddings and training jobs"),
        DlcImage("sagemaker-spark-processing", f"{spark_version}-cpu", "ETL job"),
    ]


def check_dlc_images(ecr: Any, region: str, images: list[DlcImage]) -> list[CheckResult]:
    results = []
    for image in images:
        name = f"image {image.repository}:{image.tag}"
        registry = DLC_REGISTRIES.get(image.repository, {}).get(region)
        if registry is None:
            results.append(CheckResult(name, "fail", f"no {image.repository} registry in {region} ({image.why})",
                                       "deploy in a region the SageMaker SDK lists for the image, or pass your own "
                                       "image (UserTowerImageUri for the endpoint)"))
            continue
        try:
            ecr.describe_images(registryId=registry, repositoryName=image.repository,
                                imageIds=[{"imageTag": image.tag}])
        except ClientError as error:
            code = error_code(error)
            if code in {"ImageNotFoundException", "RepositoryNotFoundException"}:
                results.append(CheckResult(name, "fail", f"{code} in {registry} ({image.why})",
                                           "pick a version the region has (UserTowerTfVersion / sagemaker_jobs.py)"))
            elif access_denied(error):
                results.append(CheckResult(name, "warn", f"ecr:DescribeImages on {registry} denied ({code}); the "
                                           "registry is the SDK's for this region",
                                           "run the preflight with ecr:DescribeImages on the DLC registry"))
            else:
                raise
            continue
        results.append(CheckResult(name, "ok", f"{registry}.dkr.ecr.{region} ({image.why})"))
    return results
