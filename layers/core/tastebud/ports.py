"""Ports: what the serving stages need from the outside world. Each has an embedded and an AWS adapter.

Arrays cross these boundaries (not per-item objects) so that the request path stays vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from tastebud.domain import InteractionEvent, ItemDraft, RequestContext, UserProfile


@runtime_checkable
class UserEncoder(Protocol):
    """Turns a user (profile + history + request context) into a query vector for the candidate index."""

    def encode(self, user: UserProfile, context: RequestContext) -> np.ndarray | None:
        """Return a float32 vector of the index's dimension, or None when the user gives no signal (cold)."""
        ...


@runtime_checkable
class CandidateIndex(Protocol):
    """Approximate nearest-neighbour search over item embeddings (ScaNN locally, OpenSearch k-NN on AWS)."""

    @property
    def version(self) -> str: ...

    def search(self, query: np.ndarray, k: int, *, domain: str = "all") -> tuple[np.ndarray, np.ndarray]:
        """Return (catalog rows int64, inner-product scores float32), best first, at most k of each.

        ``domain`` lets an index that filters inside the query (OpenSearch) do so; in-process indexes may
        ignore it, because the retriever over-fetches and filters by domain afterwards either way.
        """
        ...


@runtime_checkable
class Ranker(Protocol):
    """Scores candidates from their feature matrix (rows = candidates, columns = ranker feature names)."""

    @property
    def version(self) -> str: ...

    def score(self, features: np.ndarray) -> np.ndarray:
        """Return one float32 score per row; higher is better."""
        ...


@runtime_checkable
class PendingStock(Protocol):
    """A stock lookup under way: the answer is collected when the stock stage needs it."""

    def result(self) -> np.ndarray:
        """The bool array of ``out_of_stock``; raises DependencyError as it would. Call at most once."""
        ...

    def close(self) -> None:
        """Give back what the lookup holds (a connection) whether or not ``result`` was called."""
        ...


@runtime_checkable
class StockStore(Protocol):
    """Real-time stock: which items cannot be sold right now."""

    def out_of_stock(self, item_ids: Sequence[str]) -> np.ndarray:
        """Return a bool array, True where the item is out of stock."""
        ...

    def begin_out_of_stock(self, item_ids: Sequence[str]) -> PendingStock:
        """Start ``out_of_stock`` now and collect it later, so a remote round trip overlaps the ranking work.

        A store with nothing to overlap returns a lookup that runs ``out_of_stock`` when its result is asked for.
        """
        ...

    def set_stock(self, item_id: str, in_stock: bool, quantity: int | None = None) -> None: ...


@runtime_checkable
class FeatureStore(Protocol):
    """User profiles and recent history, as of now."""

    def user(self, user_id: str) -> UserProfile:
        """Return the user's profile; an unknown user gets a cold profile (``known=False``), never an error."""
        ...


@runtime_checkable
class EventSink(Protocol):
    """Where interaction events go (Kinesis on AWS, a local append-only file otherwise)."""

    def put(self, events: Sequence[InteractionEvent]) -> None: ...


@runtime_checkable
class ArtifactStore(Protocol):
    """Versioned model/index artifacts with one current pointer that flips atomically."""

    def current_version(self) -> str: ...

    def fetch(self, version: str, destination: Path) -> Path:
        """Make the version's files available under ``destination`` and return the version's directory."""
        ...

    def publish(self, source: Path, version: str, *, make_current: bool = True) -> None: ...


@runtime_checkable
class ItemEmbedder(Protocol):
    """Embeds new items in the serving process (text encoder + item tower, ONNX Runtime)."""

    def embed(self, drafts: Sequence[ItemDraft], *, merchant_rows: np.ndarray, category_rows: np.ndarray,
              domains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index vectors float32 [n, D] in the candidate index's space, text vectors float32 [n, 384]).

        merchant_rows/category_rows are catalog rows (-1 = unknown -> embedding index 0); domains are DOMAIN codes.
        """
        ...
