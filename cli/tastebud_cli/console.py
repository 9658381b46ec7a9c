"""What every command prints through: stdout for results, stderr for errors and progress."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Say what is wrong (which file, row, field) and exit with ``code`` (2: the input was refused)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def load_data(path: Path) -> Any:
    from tastebud_training.data import DataValidationError, load_dataset

    try:
        return load_dataset(path)
    except (DataValidationError, FileNotFoundError, NotADirectoryError) as exc:
        fail(str(exc))
