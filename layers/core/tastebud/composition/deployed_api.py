"""The deployed API functions: the service built in the Lambda INIT phase, then following LIVE.json.

A ``VersionFollower`` (the one the local runtime uses) over LIVE.json, ticked by a request at most every
``pointer_ttl_s`` seconds: model, index and artifacts switch together, and a version that fails to build keeps the
old one serving.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tastebud.adapters.aws.live_pointer import LivePointer, read_live
from tastebud.adapters.aws.local_endpoints import use_local_endpoints
from tastebud.composition.aws import REFUSABLE, AwsClients, build_aws_service, build_clients
from tastebud.heap import freeze_startup_heap, refreeze
from tastebud.pipeline.service import RecommendationService
from tastebud.settings import Settings
from tastebud.version_follower import VersionFollower


def refreshing_provider(load_settings: Callable[[], Settings], *, clients: AwsClients | None = None,
                        clock: Callable[[], float] = time.monotonic,
                        build: Callable[..., RecommendationService] = build_aws_service,
                        ) -> Callable[[], RecommendationService]:
    """The deployed functions' service provider: built in the init phase (``warm()``), then a
    ``VersionFollower`` over LIVE.json, ticked by a request at most every ``pointer_ttl_s`` seconds: a new pointer
    builds the new version's service (model, index and artifacts together) and swaps it in. A failed build keeps
    serving the old version and is tried again on the next tick (an S3 or endpoint hiccup is not the version's)."""
    return _FollowingProvider(load_settings, clients, clock, build)


class _FollowingProvider:
    def __init__(self, load_settings: Callable[[], Settings], clients: AwsClients | None,
                 clock: Callable[[], float], build: Callable[..., RecommendationService]) -> None:
        self._load_settings = load_settings
        self._given = clients
        self._clock = clock
        self._build = build
        self._follower: VersionFollower[LivePointer | None, RecommendationService] | None = None
        self._service: RecommendationService | None = None
        self._ttl_s = 0.0
        self._checked = 0.0

    def __call__(self) -> RecommendationService:
        if self._follower is None or self._service is None:
            self._start()
        elif self._clock() - self._checked >= self._ttl_s:
            self._checked = self._clock()
            self._follower.follow()
        assert self._service is not None
        return self._service

    def _start(self) -> None:
        settings = self._load_settings()
        clients = build_clients(settings, self._given)

        def read_pointer() -> LivePointer | None:
            return _pointer(settings, clients)

        def build(pointer: LivePointer | None) -> RecommendationService:
            return self._build(settings, clients=clients, pointer=pointer)

        pointer = read_pointer()
        self._service = build(pointer)  # raises (the init phase logs it; a request retries)
        self._ttl_s = settings.knobs.pointer_ttl_s
        self._checked = self._clock()
        self._follower = VersionFollower(read_pointer=read_pointer, build=build, install=self._install,
                                         serving=pointer, refusable=REFUSABLE, retry_refused_s=0.0,
                                         key=lambda p: None if p is None else p.to_json())

    def _install(self, service: RecommendationService) -> None:
        self._service = service
        refreeze()  # after the INIT freeze: the old version's cycles are released, the new one's frozen


def _pointer(settings: Settings, clients: AwsClients) -> LivePointer | None:
    bucket, prefix = settings.artifacts_bucket_and_prefix
    return read_live(clients.s3, bucket, prefix)


def deployed_api_handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The API functions' handler: the service is built in the Lambda INIT phase (not inside the first request's
    timeout) and follows LIVE.json, so model, index and artifacts switch together."""
    import logging

    from tastebud.api.http import create_lambda_handler

    use_local_endpoints()
    provide = refreshing_provider(Settings.from_env)
    try:
        provide()
    except Exception:  # not ready yet (no LIVE.json) or a real bug: logged with its stack; requests retry the build
        logging.getLogger("tastebud.init").exception("service build at init failed; requests will retry it")
    else:
        # As each local HTTP worker does after start-up (tastebud.heap): no full collection walks the INIT heap
        # (modules, catalog, ONNX sessions) inside a request.
        freeze_startup_heap()
    return create_lambda_handler(provide)
