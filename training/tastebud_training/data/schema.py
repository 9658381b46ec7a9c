"""The data-directory contract (DESIGN.md §3): tables, columns, kinds of values and enums."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from tastebud.catalog import DEFAULT_DELIVERY_RADIUS_KM
from tastebud.features.history import EVENT_TYPES, EVENT_WEIGHTS, POSITIVE_EVENTS

__all__ = ["DEFAULT_DELIVERY_RADIUS_KM", "EVENT_TYPES", "EVENT_WEIGHTS", "POSITIVE_EVENTS"]

DOMAINS = ("restaurant", "grocery")
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})
SUPPORTED_SUFFIXES = (".csv", ".parquet")
# Error collection stops here: past a few dozen, more messages do not help anyone fix a file.
MAX_ERRORS = 20


class Kind(Enum):
    """How a column's values are parsed and what they normalise to."""

    ID = "id"  # non-empty string
    TEXT = "text"  # string, '' when missing
    ENUM = "enum"  # one of Column.choices, case-insensitive
    FLOAT = "float"  # float, NaN when missing
    TIMESTAMP = "timestamp"  # ISO-8601 or epoch seconds -> float epoch seconds, NaN when missing
    BOOL = "bool"  # true/false/1/0/yes/no


@dataclass(frozen=True)
class Column:
    """One column of a table.

    Attributes:
        name: column name in the file.
        kind: how values are parsed.
        required: the column must be present (and, for ids, enums, timestamps and bools, every value set).
        choices: allowed values of an ENUM column.
        min_value: smallest allowed number (FLOAT).
        max_value: largest allowed number (FLOAT).
        references: table whose primary key this id must exist in.
    """

    name: str
    kind: Kind
    required: bool = False
    choices: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    references: str | None = None


@dataclass(frozen=True)
class Table:
    """One table of the data directory.

    Attributes:
        name: table name = file stem (``merchants.csv``, ``merchants.parquet``).
        columns: known columns in output order.
        primary_key: column whose values must be unique, if any.
        required: the file must be present.
    """

    name: str
    columns: tuple[Column, ...]
    primary_key: str | None
    required: bool = True

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        return next(c for c in self.columns if c.name == name)


def _lat(name: str) -> Column:
    return Column(name, Kind.FLOAT, min_value=-90.0, max_value=90.0)


def _lon(name: str) -> Column:
    return Column(name, Kind.FLOAT, min_value=-180.0, max_value=180.0)


MERCHANTS = Table(
    "merchants",
    (
        Column("merchant_id", Kind.ID, required=True),
        Column("name", Kind.TEXT, required=True),
        Column("domain", Kind.ENUM, required=True, choices=DOMAINS),
        Column("category", Kind.TEXT, required=True),
        _lat("lat"),
        _lon("lon"),
        Column("created_at", Kind.TIMESTAMP),
        # Missing = DEFAULT_DELIVERY_RADIUS_KM (no known zone: not filtered by distance); missing is_open = open.
        Column("delivery_radius_km", Kind.FLOAT, min_value=0.0),
        Column("is_open", Kind.BOOL),
    ),
    primary_key="merchant_id",
)
ITEMS = Table(
    "items",
    (
        Column("item_id", Kind.ID, required=True),
        Column("merchant_id", Kind.ID, required=True, references="merchants"),
        Column("title", Kind.TEXT, required=True),
        Column("category", Kind.TEXT, required=True),
        Column("description", Kind.TEXT),
        Column("price", Kind.FLOAT, min_value=0.0),
        Column("image_uri", Kind.TEXT),
        Column("created_at", Kind.TIMESTAMP),
    ),
    primary_key="item_id",
)
USERS = Table(
    "users",
    (
        Column("user_id", Kind.ID, required=True),
        Column("created_at", Kind.TIMESTAMP),
        Column("age_band", Kind.TEXT),
        Column("gender", Kind.TEXT),
        _lat("home_lat"),
        _lon("home_lon"),
        Column("preferences", Kind.TEXT),
    ),
    primary_key="user_id",
)
INTERACTIONS = Table(
    "interactions",
    (
        # user_id references nothing on purpose: a users table may be partial (warned, not rejected).
        Column("user_id", Kind.ID, required=True),
        Column("item_id", Kind.ID, required=True, references="items"),
        Column("event_type", Kind.ENUM, required=True, choices=EVENT_TYPES),
        Column("timestamp", Kind.TIMESTAMP, required=True),
        Column("session_id", Kind.TEXT),
        Column("request_id", Kind.TEXT),
        Column("position", Kind.FLOAT, min_value=0.0),
        Column("quantity", Kind.FLOAT, min_value=0.0),
    ),
    primary_key=None,
)
STOCK = Table(
    "stock",
    (
        Column("item_id", Kind.ID, required=True),
        Column("in_stock", Kind.BOOL, required=True),
        Column("quantity", Kind.FLOAT, min_value=0.0),
    ),
    primary_key="item_id",
    required=False,
)

# Validation order: a table is checked after the tables it references.
TABLES: tuple[Table, ...] = (MERCHANTS, ITEMS, USERS, INTERACTIONS, STOCK)
TABLE_NAMES = tuple(t.name for t in TABLES)
