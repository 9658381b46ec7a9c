"""The `tastebud` command line (DESIGN.md §3): the command tree. Each area's commands live in a module of their
own; heavy imports happen inside the commands, so `--help` is instant."""

from __future__ import annotations

import typer

from tastebud_cli.aws import aws_app
from tastebud_cli.bench import bench
from tastebud_cli.chaos import chaos
from tastebud_cli.data import data_app
from tastebud_cli.experiment import experiment
from tastebud_cli.live import catalog_app, events_app, versions_app
from tastebud_cli.sam_local import sam_local_app
from tastebud_cli.serve import recommend, serve
from tastebud_cli.train_evaluate import evaluate, train

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Tastebud: recommendations for a food-delivery marketplace.")
app.add_typer(data_app, name="data")
for command in (train, evaluate, serve, recommend, bench):
    app.command()(command)
app.add_typer(events_app, name="events")
app.add_typer(catalog_app, name="catalog")
app.add_typer(versions_app, name="versions")
app.add_typer(aws_app, name="aws")
app.add_typer(sam_local_app, name="sam-local")
app.command("chaos")(chaos)
app.command("experiment", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(experiment)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
