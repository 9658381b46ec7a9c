"""Fixtures of the handler tests: the Lambda handler over a hand-built service with an in-memory stock store."""

from __future__ import annotations

import pytest

from tastebud.api.http import create_handler

from factories import MemoryStock, make_service


@pytest.fixture
def stock() -> MemoryStock:
    return MemoryStock()


@pytest.fixture
def handler(stock: MemoryStock):  # type: ignore[no-untyped-def]
    service = make_service(stock=stock, histories={"u00001": [0, 3, 6]}, item_id_format="i{:06d}")
    return create_handler(lambda: service)
