"""Checks CloudFormation cannot run on a SAM template until the SAM transform has run.

    python scripts/sam_graph.py [template.yaml]       exit 1 on a circular dependency

cfn-lint 1.58 lints the template BEFORE the transform, so it misses cycles that only the transform
creates: e.g. a function's inline ``Policies`` become the generated ``<Function>Role``'s policy, and a
resource that names that role while the policy names the resource closes a loop (DESIGN §6). This runs
samtranslator's own ``transform`` offline (local code paths replaced by S3 URIs, a region set, a
managed-policy loader that knows no policies) and searches the resulting Ref / GetAtt / Sub / DependsOn
graph for strongly connected components.

Needs ``aws-sam-translator`` (in .venv-sam with the SAM CLI, and pinned in requirements/dev.txt).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REGION = "eu-west-1"
ACCOUNT = "123456789012"
# Properties that hold a local path `sam build` / `sam package` upload; the transform wants S3 there.
LOCAL_PATH_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
}
SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class _NoManagedPolicies:
    """managed_policy_loader that knows no AWS managed policy names (the template names none)."""

    def load(self) -> dict[str, str]:
        return {}


def load_template(path: Path) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse

    return dict(yaml_parse(path.read_text()))


def with_s3_code(template: dict[str, Any]) -> dict[str, Any]:
    """Local CodeUri/ContentUri/DefinitionUri strings -> s3://... (what `sam package` would upload)."""
    import copy

    template = copy.deepcopy(template)
    for name, resource in template.get("Resources", {}).items():
        prop = LOCAL_PATH_PROPERTIES.get(resource.get("Type", ""))
        props = resource.get("Properties", {})
        if prop and isinstance(props.get(prop), str) and not props[prop].startswith("s3://"):
            props[prop] = f"s3://tastebud-sam-graph/{name}/{Path(props[prop]).name}"
    return template


def parameter_values(template: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                              "AWS::StackName": "tastebud-graph", "AWS::URLSuffix": "amazonaws.com",
                              "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/tastebud-graph/x",
                              "AWS::NotificationARNs": []}
    for name, spec in template.get("Parameters", {}).items():
        values[name] = spec.get("Default", "placeholder")
    return values


def translate(path: Path) -> dict[str, Any]:
    """The CloudFormation template CloudFormation would see after `Transform: AWS::Serverless-2016-10-31`."""
    import os

    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)  # the translator's boto session needs a region only
    template = with_s3_code(load_template(path))
    return dict(transform(template, parameter_values(template), _NoManagedPolicies()))  # type: ignore[arg-type]


def references(node: Any) -> Iterator[str]:
    """Logical ids named by Ref / Fn::GetAtt / Fn::Sub anywhere inside ``node``."""
    if isinstance(node, dict):
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Ref" and isinstance(value, str):
                yield value
                return
            if key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".", 1)[0]
                yield str(target)
                return
            if key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1])
                for variable in SUB_VARIABLE.findall(text):
                    name = variable.split(".", 1)[0]
                    if name not in variables:
                        yield name
                yield from references(variables)
                return
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def dependency_graph(template: dict[str, Any]) -> dict[str, set[str]]:
    resources = template.get("Resources", {})
    graph: dict[str, set[str]] = {}
    for name, resource in resources.items():
        edges = {ref for ref in references({k: v for k, v in resource.items() if k != "DependsOn"})
                 if ref in resources}
        depends = resource.get("DependsOn", [])
        edges.update([depends] if isinstance(depends, str) else depends)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node, or a node depending on itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "template.yaml")
    translated = translate(path)
    found = cycles(dependency_graph(translated))
    for component in found:
        print(f"sam-graph: circular dependency after the SAM transform: {' <-> '.join(component)}")
    if not found:
        print(f"sam-graph: {path}: {len(translated['Resources'])} resources after the SAM transform, no circular "
              "dependency")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
