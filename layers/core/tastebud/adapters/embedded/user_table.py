"""FeatureStore over a user table built at training time (CSR arrays in one .npz, loaded once)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from tastebud.domain import EMPTY_REPEAT, UserProfile


@dataclass(frozen=True)
class UserTable:
    """Users' histories as CSR arrays: user i owns ``history_*[offsets[i]:offsets[i+1]]`` (most recent first)."""

    user_ids: np.ndarray
    offsets: np.ndarray
    history_rows: np.ndarray
    history_weights: np.ndarray
    history_last_ts: np.ndarray
    preference_offsets: np.ndarray
    preference_rows: np.ndarray
    home_lat: np.ndarray
    home_lon: np.ndarray
    age_band: np.ndarray | None = None
    gender: np.ndarray | None = None
    history_repeat: np.ndarray | None = None  # (entries, len(REPEAT_COLUMNS)); None in tables saved before it
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.user_ids.size
        if self.offsets.size != n + 1 or self.preference_offsets.size != n + 1:
            raise ValueError("user table offsets must have len(user_ids) + 1 entries")
        object.__setattr__(self, "_index", {user_id: i for i, user_id in enumerate(self.user_ids.tolist())})

    @property
    def size(self) -> int:
        return int(self.user_ids.size)

    def index_of(self, user_id: str) -> int | None:
        return self._index.get(user_id)

    def user(self, user_id: str) -> UserProfile:
        i = self.index_of(user_id)
        if i is None:
            return UserProfile.cold(user_id)
        start, end = self.offsets[i], self.offsets[i + 1]
        pstart, pend = self.preference_offsets[i], self.preference_offsets[i + 1]
        return UserProfile(
            user_id=user_id,
            known=True,
            history_rows=self.history_rows[start:end],
            history_weights=self.history_weights[start:end],
            history_last_ts=self.history_last_ts[start:end],
            history_repeat=EMPTY_REPEAT if self.history_repeat is None else self.history_repeat[start:end],
            preference_rows=self.preference_rows[pstart:pend],
            home_lat=float(self.home_lat[i]),
            home_lon=float(self.home_lon[i]),
            age_band="" if self.age_band is None else str(self.age_band[i]),
            gender="" if self.gender is None else str(self.gender[i]),
        )

    def save(self, path: Path) -> None:
        np.savez(path, **{f.name: getattr(self, f.name) for f in fields(self)
                          if f.init and getattr(self, f.name) is not None})

    @classmethod
    def load(cls, path: Path) -> UserTable:
        with np.load(path, allow_pickle=False) as data:
            return cls(**{f.name: data[f.name] for f in fields(cls) if f.init and f.name in data})
