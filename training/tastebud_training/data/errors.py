"""Validation errors that name the file, the row and the column of each problem."""

from __future__ import annotations

from dataclasses import dataclass

GENERATE_HINT = "Create a data directory with `tastebud data generate --out DIR` (or `tastebud data import`)."


@dataclass(frozen=True)
class DataError:
    """One problem in one file.

    Attributes:
        file: file name, e.g. ``items.csv``.
        row: the row as a user finds it: the line number for CSV (header = line 1), the 1-based row number for
            Parquet; None for problems of the whole file or column.
        column: column name, or None for problems of the whole file.
        message: what is wrong, quoting the bad value.
    """

    file: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" {'line' if self.file.endswith('.csv') else 'row'} {self.row}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: {self.message}"


class DataValidationError(ValueError):
    """A data directory breaks the contract; ``errors`` lists the problems found (at most MAX_ERRORS)."""

    def __init__(self, errors: list[DataError], *, truncated: bool = False) -> None:
        self.errors = list(errors)
        self.truncated = truncated
        plural = "" if len(self.errors) == 1 and not truncated else "s"
        lines = [f"invalid data ({len(self.errors)}{'+' if truncated else ''} error{plural}):"]
        lines += [f"  {e}" for e in self.errors]
        if truncated:
            lines.append("  ... stopped here; fix these and validate again to see more.")
        super().__init__("\n".join(lines))
