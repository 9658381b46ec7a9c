"""Plain data passed between the stages: user profiles, request context, candidates, events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

EMPTY_INT = np.zeros(0, dtype=np.int64)
EMPTY_FLOAT = np.zeros(0, dtype=np.float32)
EMPTY_REPEAT = np.zeros((0, 11), dtype=np.float64)  # tastebud.features.history.REPEAT_COLUMNS


@dataclass(frozen=True)
class UserProfile:
    """What serving knows about a user: history as catalog rows, most recent first.

    Attributes:
        history_rows: catalog rows of items the user had positives on, most recent first (unique).
        history_weights: graded positive weight per row (click 1, add_to_cart 2, purchase 3, summed).
        history_last_ts: epoch seconds of the last positive per row.
        history_repeat: per row, the purchase statistics of ``tastebud.features.history.REPEAT_COLUMNS`` (n, 11)
            float64; empty (0, 7) when the store that built the profile does not keep them (features are then
            unknown).
        preference_rows: rows into the preference vocabulary (stated tastes), for cold users with a profile.
    """

    user_id: str
    known: bool
    history_rows: np.ndarray = field(default_factory=lambda: EMPTY_INT)
    history_weights: np.ndarray = field(default_factory=lambda: EMPTY_FLOAT)
    history_last_ts: np.ndarray = field(default_factory=lambda: EMPTY_FLOAT)
    history_repeat: np.ndarray = field(default_factory=lambda: EMPTY_REPEAT)
    preference_rows: np.ndarray = field(default_factory=lambda: EMPTY_INT)
    home_lat: float = float("nan")
    home_lon: float = float("nan")
    age_band: str = ""
    gender: str = ""

    @property
    def has_history(self) -> bool:
        return self.history_rows.size > 0

    @classmethod
    def cold(cls, user_id: str) -> UserProfile:
        return cls(user_id=user_id, known=False)


@dataclass(frozen=True)
class RequestContext:
    """Request-time context: when, where and which part of the marketplace."""

    now: float
    domain: str = "all"
    lat: float = float("nan")
    lon: float = float("nan")
    exclude_item_ids: tuple[str, ...] = ()

    @property
    def hour_of_day(self) -> int:
        return int(hour_of_day(self.now))

    @property
    def day_of_week(self) -> int:
        return int(day_of_week(self.now))


def hour_of_day(ts: Any) -> Any:
    """UTC hour (0..23) of epoch seconds, for a number or an array: requests and past orders alike."""
    return (np.floor_divide(ts, 3600) % 24).astype(np.int64) if isinstance(ts, np.ndarray) else (ts // 3600) % 24


def day_of_week(ts: Any) -> Any:
    """Day of week (Monday = 0; 1970-01-01 was a Thursday) of epoch seconds, for a number or an array."""
    if isinstance(ts, np.ndarray):
        return (np.floor_divide(ts, 86400) + 3).astype(np.int64) % 7
    return (ts // 86400 + 3) % 7


@dataclass
class Candidates:
    """Candidates flowing through the stages; arrays are aligned row by row."""

    rows: np.ndarray
    retrieval_scores: np.ndarray
    sources: np.ndarray  # bit flags, see SOURCE_*
    scores: np.ndarray | None = None
    flags: np.ndarray | None = None  # what fairness/diversity did to each item (tastebud.pipeline.reasons)
    # Each candidate's item-kNN score against the user's purchases (tastebud.features.same_shoppers.same_shoppers_of),
    # set by the retriever, which computes it anyway for its explore candidates; the features compute it when absent.
    same_shoppers: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.rows.size)

    def take(self, index: np.ndarray) -> Candidates:
        return Candidates(
            rows=self.rows[index],
            retrieval_scores=self.retrieval_scores[index],
            sources=self.sources[index],
            scores=None if self.scores is None else self.scores[index],
            flags=None if self.flags is None else self.flags[index],
            same_shoppers=None if self.same_shoppers is None else self.same_shoppers[index],
        )


SOURCE_ANN = 1
SOURCE_HISTORY = 2
SOURCE_POPULAR = 4
SOURCE_FRESH = 8  # items added since the index was built (the fresh-items side index)
SOURCE_RELATED = 16  # bought together (same basket) with the user's recent purchases
SOURCE_SIMILAR = 32  # not bought yet, but bought by the shoppers of what the user buys (item-kNN over users)


@dataclass(frozen=True)
class InteractionEvent:
    user_id: str
    item_id: str
    event_type: str
    timestamp: float
    request_id: str | None = None
    session_id: str | None = None
    position: int | None = None
    quantity: int | None = None
    event_id: str | None = None  # the producer's id; a replayed id is a duplicate, never applied twice


@dataclass(frozen=True)
class ItemDraft:
    """An item as a catalog upsert gives it (the data contract's items columns)."""

    item_id: str
    merchant_id: str
    title: str
    category: str
    description: str = ""
    price: float = float("nan")
    image_uri: str | None = None
