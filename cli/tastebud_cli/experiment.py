"""`tastebud experiment`: the one-off measurements behind docs/BENCHMARKS.md (tastebud_bench.experiments)."""

from __future__ import annotations

from typing import Annotated

import typer

from tastebud_cli.console import fail, out


def experiment(
    name: Annotated[str, typer.Argument(help="The experiment (`list` names them all)")],
    args: Annotated[list[str] | None, typer.Argument(help="Its own arguments, as docs/BENCHMARKS.md gives them")]
    = None,
) -> None:
    """Run one experiment of docs/BENCHMARKS.md, e.g. `tastebud experiment idle_penalty 1000000`."""
    from tastebud_bench import experiments

    if name == "list":
        for known in experiments.names():
            out.print(f"{known:<22} {experiments.summary(known)}", highlight=False, soft_wrap=True)
        return
    try:
        experiments.run(name, list(args or []))
    except ValueError as exc:  # an unknown name, or arguments the experiment cannot use
        fail(str(exc))
