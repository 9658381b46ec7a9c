"""`tastebud data`: generate, import and validate data directories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tastebud_cli.console import err, fail, out, print_json

data_app = typer.Typer(no_args_is_help=True, help="Generate, import and validate data directories.")
import_app = typer.Typer(no_args_is_help=True, help="Import public data sets into the data contract.")
data_app.add_typer(import_app, name="import")


@data_app.command("generate")
def data_generate(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write (replaced atomically)")],
    users: Annotated[int, typer.Option(min=10, help="Number of users")] = 3000,
    items: Annotated[int, typer.Option(min=50, help="Number of items")] = 12000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files)")] = 7,
    days: Annotated[int, typer.Option(min=7, help="Days of logs")] = 60,
    purchase_only: Annotated[bool, typer.Option(
        "--purchase-only", help="Only what a real order log has: purchases, no text, images, impressions, stock, "
        "locations or profiles")] = False,
    single_merchant: Annotated[bool, typer.Option(
        "--single-merchant", help="With --purchase-only: one grocery store's log (grocery products only)")] = False,
    cadence: Annotated[bool, typer.Option(
        "--cadence", help="Shoppers re-buy each item on their own cycle and restock what is due (timing matters)")]
    = False,
    images: Annotated[bool, typer.Option(
        "--images/--no-images", help="Write a photo per item (about 10% get none)")] = True,
) -> None:
    """Simulate a marketplace: merchants, items, users with hidden tastes, logged impressions and orders."""
    from tastebud_training.simulator import marketplace

    try:
        summary = marketplace.generate(out_dir, users=users, items=items, seed=seed, days=days, progress=True,
                                       purchase_only=purchase_only, single_merchant=single_merchant, cadence=cadence,
                                       images=images)
    except (FileExistsError, ValueError) as exc:
        fail(str(exc))
    err.print(f"[green]wrote[/] {out_dir}")
    print_json(summary.as_dict())


@import_app.command("movielens-100k")
def import_movielens(out_dir: Annotated[Path, typer.Option("--out", help="Directory to write")]) -> None:
    """MovieLens-100K from the copy shipped inside a PyPI package (no download)."""
    from tastebud_training.importers import movielens

    try:
        summary = movielens.import_movielens_100k(out_dir)
    except (FileNotFoundError, ModuleNotFoundError, FileExistsError) as exc:
        fail(str(exc))
    print_json(summary.as_dict() if hasattr(summary, "as_dict") else summary)


@import_app.command("instacart")
def import_instacart(
    source: Annotated[Path, typer.Argument(help="Folder with orders.csv and order_products__*.csv (Kaggle layout)")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write")],
) -> None:
    """Instacart Online Grocery Shopping 2017 files; products/aisles/departments.csv name items when present.
    Timeline: every user's last order on one day, earlier orders days_since_prior_order before the next."""
    from tastebud_training.importers import instacart

    _import_grocery_log(instacart.import_instacart, source, out_dir)


@import_app.command("dunnhumby")
def import_dunnhumby(
    source: Annotated[Path, typer.Argument(help="Folder with transaction_data.csv (+ product.csv, "
                                                 "hh_demographic.csv): dunnhumby The Complete Journey")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write")],
) -> None:
    """dunnhumby "The Complete Journey" files. Timeline: DAY 1 is a fixed date, TRANS_TIME the time of day."""
    from tastebud_training.importers import dunnhumby

    _import_grocery_log(dunnhumby.import_dunnhumby, source, out_dir)


def _import_grocery_log(importer: Callable[[Path, Path], Any], source: Path, out_dir: Path) -> None:
    """Run a file importer; a bad file or a foreign --out is a clear error (file, line, column), not a traceback."""
    from tastebud_training.data import DataValidationError

    try:
        summary = importer(source, out_dir)
    except (DataValidationError, FileExistsError) as exc:
        fail(str(exc))
    print_json(summary.as_dict())


@data_app.command("validate")
def data_validate(directory: Path, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check a data directory against the contract; errors name file, row and column."""
    from tastebud_training.data import DataValidationError, validate_dir

    try:
        summary = validate_dir(directory)
    except (DataValidationError, FileNotFoundError, NotADirectoryError) as exc:
        fail(str(exc))
    if as_json:
        print_json(summary.as_dict())
        return
    info = summary.as_dict()
    table = Table(title=f"{directory} is valid")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in info["rows"].items():
        table.add_row(name, f"{rows:,}")
    out.print(table)
    out.print(f"events: {info['event_counts']}  positives: {info['n_positives']:,}  time: {info['time_range']}")
    for warning in info["warnings"]:
        out.print(f"[yellow]warning:[/] {warning}")
