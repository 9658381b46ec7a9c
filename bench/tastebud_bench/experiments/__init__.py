"""One-off measurements behind docs/BENCHMARKS.md, run as `tastebud experiment NAME ARGS...` (`tastebud experiment
list` names them). Each module has ``main(argv)``; those on the synthetic catalog of `tastebud bench --items N`
share its set-up through ``harness.warm_service``."""

from __future__ import annotations

import importlib
from pathlib import Path

PACKAGE = __name__


def names() -> list[str]:
    """Every experiment, by module name."""
    return sorted(p.stem for p in Path(__file__).parent.glob("*.py") if p.stem not in ("__init__", "harness"))


def summary(name: str) -> str:
    """The first line of the experiment's docstring."""
    doc = importlib.import_module(f"{PACKAGE}.{name}").__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def run(name: str, argv: list[str]) -> None:
    """Run one experiment with its own arguments; an unknown name is a ValueError that lists the known ones."""
    if name not in names():
        raise ValueError(f"no experiment {name!r}; known: {', '.join(names())}")
    importlib.import_module(f"{PACKAGE}.{name}").main(argv)
