"""A table as read from its file, before any parsing, and the log its problems are collected in.

Problems are collected (up to MAX_ERRORS) and raised together as one DataValidationError.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tastebud_training.data.errors import DataError, DataValidationError
from tastebud_training.data.schema import MAX_ERRORS, Table


@dataclass(frozen=True)
class RawTable:
    """A table as read from its file, before any parsing."""

    table: Table
    file: str
    frame: pd.DataFrame
    row_numbers: np.ndarray  # where each row is in the file, as the user counts (CSV line / Parquet row)


class ErrorLog:
    """Collects DataErrors up to a limit and remembers whether more were left out."""

    def __init__(self, limit: int = MAX_ERRORS) -> None:
        self.limit = limit
        self.errors: list[DataError] = []
        self.truncated = False

    @property
    def full(self) -> bool:
        return len(self.errors) >= self.limit

    def add(self, error: DataError) -> None:
        if self.full:
            self.truncated = True
        else:
            self.errors.append(error)

    def add_rows(self, raw: RawTable, column: str, mask: np.ndarray, describe: Callable[[int], str]) -> None:
        """Add one error per True in ``mask``; ``describe`` gets the row's position in the frame."""
        positions = np.flatnonzero(mask)
        room = self.limit - len(self.errors)
        if len(positions) > room:
            self.truncated = True
        for position in positions[: max(room, 0)]:
            self.errors.append(DataError(raw.file, int(raw.row_numbers[position]), column, describe(int(position))))

    def raise_if_any(self) -> None:
        if self.errors:
            raise DataValidationError(self.errors, truncated=self.truncated)
