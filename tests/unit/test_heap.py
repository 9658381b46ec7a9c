"""The serving process freezes its start-up heap and lets a replaced version go (tastebud.heap)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from tastebud import heap
from tastebud.http_server.asgi import LambdaAsgiApp


class Version:
    """Stands for a loaded artifact version: a reference cycle, as real object graphs have."""

    def __init__(self) -> None:
        self.me = self
        self.payload = bytearray(1 << 20)


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    heap.thaw()


def test_a_worker_freezes_its_heap_once_the_handler_is_built() -> None:
    app = LambdaAsgiApp(lambda: (lambda event, context: {"statusCode": 200}))  # type: ignore[arg-type,return-value]
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(dict(message))

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert sent[0]["type"] == "lifespan.startup.complete"
    assert gc.get_freeze_count() > 0


def test_refreeze_releases_a_version_frozen_at_start_up() -> None:
    version = Version()
    alive = weakref.ref(version)
    heap.freeze_startup_heap()
    del version
    gc.collect()
    assert alive() is not None  # frozen: full collections skip it (the point), so a swap must refreeze
    heap.refreeze()
    assert alive() is None
    assert gc.get_freeze_count() > 0  # what is alive now is frozen again


def test_refreeze_does_nothing_in_a_process_that_never_froze() -> None:
    heap.refreeze()
    assert gc.get_freeze_count() == 0
