"""One place that loads the sample events in events/ (the same files `sam local invoke -e` uses) and
template.yaml (with CloudFormation's short-form tags)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


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


class CloudFormationLoader(yaml.SafeLoader):
    """A SafeLoader that accepts CloudFormation short-form tags (!Ref, !Sub, !GetAtt, !If ...)."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


CloudFormationLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """template.yaml as a dict (short-form tags become their long form)."""
    return dict(yaml.load(path.read_text(), Loader=CloudFormationLoader))
