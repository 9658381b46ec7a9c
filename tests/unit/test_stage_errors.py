"""A bug inside a stage is logged with its stack AND counted (tastebud_stage_errors_total); an outage is not."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tastebud.api.http import create_handler
from tastebud.domain import RequestContext, UserProfile
from tastebud.local_server import LocalLambdaContext

from factories import FailingEncoder, FailingRanker, make_service
from helpers import load_event, response_json


class BuggyEncoder:
    """A user encoder with a bug: an exception that is no domain/dependency error."""

    def encode(self, user: UserProfile, context: RequestContext) -> np.ndarray | None:
        raise KeyError("hist_row")


def invoke(handler: Any, name: str, path: str | None = None) -> dict[str, Any]:
    event = load_event(name)
    if path is not None:
        event["rawPath"] = path
        event["requestContext"]["http"]["path"] = path
    return handler(event, LocalLambdaContext(aws_request_id="test"))


def counter(handler: Any, stage: str) -> float:
    text = invoke(handler, "health", "/metrics")["body"]
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "tastebud_stage_errors_total" and sample.labels == {"stage": stage}:
                return sample.value
    raise AssertionError(f"no tastebud_stage_errors_total{{stage={stage!r}}} in /metrics")


def stage_error_records(caplog: pytest.LogCaptureFixture, stage: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "stage_error", False) and getattr(r, "stage", None) == stage]


@pytest.mark.parametrize(("stage", "wiring", "exception"), [
    ("retrieve", {"encoder": BuggyEncoder()}, KeyError),
    ("rerank", {"ranker": FailingRanker()}, RuntimeError),
])
def test_a_bug_in_a_stage_is_logged_with_its_stack_and_counted(caplog: pytest.LogCaptureFixture, stage: str,
                                                               wiring: dict[str, Any], exception: type) -> None:
    service = make_service(histories={"u00001": [0, 3, 6]}, item_id_format="i{:06d}", **wiring)
    handler = create_handler(lambda: service)
    assert counter(handler, stage) == 0  # the series exists before the first error (scrapes see a 0)

    with caplog.at_level(logging.ERROR):
        response = invoke(handler, "recommend")

    assert response["statusCode"] == 200  # the page is still served, from the stage's fallback
    body = response_json(response)
    assert stage in body["degraded"] and len(body["items"]) > 0
    assert "stage_errors" not in body  # internal: the response contract is unchanged
    records = stage_error_records(caplog, stage)
    assert len(records) == 1
    record = records[0]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert record.exc_info[0] is exception and record.exc_text  # the stack is in the log line
    assert counter(handler, stage) == 1
    metrics = response_json(invoke(handler, "health", "/metrics.json"))
    assert metrics["stages"][stage]["errors"] == 1
    assert metrics["stages"][stage]["degraded_rate"] == 1.0


@pytest.mark.parametrize(("stage", "wiring"), [("retrieve", {"encoder": FailingEncoder()})])
def test_an_outage_degrades_the_stage_but_is_not_counted_as_a_bug(caplog: pytest.LogCaptureFixture, stage: str,
                                                                  wiring: dict[str, Any]) -> None:
    service = make_service(histories={"u00001": [0, 3, 6]}, item_id_format="i{:06d}", **wiring)
    handler = create_handler(lambda: service)
    with caplog.at_level(logging.WARNING):
        body = response_json(invoke(handler, "recommend"))
    assert stage in body["degraded"]
    assert stage_error_records(caplog, stage) == []
    assert not [r for r in caplog.records if r.exc_info]
    assert counter(handler, stage) == 0
    assert response_json(invoke(handler, "health", "/metrics.json"))["stages"][stage]["errors"] == 0


def test_service_reports_stage_errors_next_to_degraded() -> None:
    service = make_service(ranker=FailingRanker())
    result = service.recommend("u1", k=5)
    assert result.stage_errors == ["rerank"] and "rerank" in result.degraded
    assert make_service().recommend("u1", k=5).stage_errors == []
