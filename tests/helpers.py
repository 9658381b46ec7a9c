"""One place that loads the sample events in events/ (the same files `sam local invoke -e` uses) and
template.yaml (with CloudFormation's short-form tags)."""

from __future__ import annotations

import copy
import json
import os
import shutil
from functools import cache
from pathlib import Path
from typing import Any

from tastebud_training.cfn_template import load_template

__all__ = ["invoke", "load_event", "load_template", "response_json"]

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


@cache
def _read(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / f"{name}.json").read_text())


def load_event(name: str, **body_overrides: Any) -> dict[str, Any]:
    """A fresh copy of ``events/<name>.json``; keyword arguments replace fields of its JSON body."""
    event = copy.deepcopy(_read(name))
    if body_overrides:
        body = json.loads(event.get("body") or "{}")
        body.update(body_overrides)
        event["body"] = json.dumps(body)
    return event


def invoke(handler: Any, event: dict[str, Any]) -> dict[str, Any]:
    """Call a Lambda handler as Lambda does (with a context object)."""
    from tastebud.local_server import LocalLambdaContext

    return handler(event, LocalLambdaContext(aws_request_id="test"))


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])




def read_kinesis_stream(client: Any, stream: str = "events") -> list[Any]:
    """Every record on the stream, decoded the way the ingest function decodes it (all shards, from the start)."""
    from tastebud.event_codec import decode_event

    events = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        events += [decode_event(r["Data"]) for r in client.get_records(ShardIterator=iterator)["Records"]]
    return events


def private_artifacts(source: Path, target: Path) -> Path:
    """A private copy of the artifact store ``source`` that tests may publish into and serve from: the versions' files
    hard-linked, the rest copied, no training cache.

    A version is never written in place (it is published whole and CURRENT is replaced atomically), so its files can
    be shared; copying them cost each test of the living-marketplace, faults and live-CLI modules 130 MB of writes.
    """
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("cache", "versions"))
    shutil.copytree(source / "versions", target / "versions", copy_function=os.link)
    return target
