"""The composition root: the ONE place that reads settings and builds clients, adapters and the service.

* ``build_runtime``: what serves requests. The embedded backend gets a ``ServingRuntime`` (live events, fresh
  items, merchant state, version hot swap); the AWS backend the service wired over AWS adapters.
* ``load_stages``: stages 1–3 of one artifact version, for offline evaluation.
The HTTP handler, the CLI, bench and the tests all build through here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tastebud.adapters.embedded.user_table import UserTable
from tastebud.artifacts import LocalArtifactStore, Manifest
from tastebud.catalog import Catalog
from tastebud.errors import ArtifactsMissingError
from tastebud.runtime import ServingRuntime
from tastebud.service import Versions
from tastebud.serving_port import Serving
from tastebud.serving_version import check_manifest, load_encoder, load_version
from tastebud.settings import ServingKnobs, Settings
from tastebud.stages.fairness import FairnessDiversity
from tastebud.stages.rerank import Reranker
from tastebud.stages.retrieve import Retriever

__all__ = ["RankingStages", "build_runtime", "check_manifest", "lazy_runtime", "load_encoder", "load_stages"]



@dataclass(frozen=True)
class RankingStages:
    """Stages 1–3 and what they read, loaded from one artifact version (offline evaluation)."""

    manifest: Manifest
    directory: Path
    catalog: Catalog
    users: UserTable
    retriever: Retriever
    reranker: Reranker
    fairness: FairnessDiversity

    @property
    def versions(self) -> Versions:
        m = self.manifest
        return Versions(m.model_version, m.index_version, m.feature_version)


def load_stages(artifacts: Path, knobs: ServingKnobs) -> RankingStages:
    """Load the current artifact version under ``artifacts`` and build the ranking stages."""
    if not artifacts.is_dir():
        raise ArtifactsMissingError(
            f"artifact directory {artifacts} does not exist; "
            "build it with `tastebud train --data DIR --out ARTIFACTS` (or `make demo`)"
        )
    version = load_version(LocalArtifactStore(artifacts).current_dir(), with_embedder=False)
    catalog = version.catalog
    return RankingStages(
        manifest=version.manifest,
        directory=version.directory,
        catalog=catalog,
        users=version.users,
        retriever=Retriever(catalog, version.encoder, version.index, knobs),
        reranker=Reranker(catalog, version.ranker),
        fairness=FairnessDiversity(catalog, knobs),
    )


def build_runtime(settings: Settings, *, redis_client: Any = None, clock: Callable[[], float] = time.time,
                  watch: bool = True) -> Serving:
    """What serves requests for these settings (see the module docstring)."""
    if settings.backend == "aws":
        from tastebud.aws_composition import build_aws_service

        return build_aws_service(settings, clock=clock)
    return ServingRuntime.from_settings(settings, clock=clock, redis_client=redis_client, watch=watch)


def lazy_runtime(load_settings: Callable[[], Settings]) -> Callable[[], Serving]:
    """Build on first use, once per process (Lambda init or a local server worker's first request)."""
    lock = threading.Lock()
    built: list[Serving] = []

    def provide() -> Serving:
        if not built:
            with lock:
                if not built:
                    built.append(build_runtime(load_settings()))
        return built[0]

    return provide

