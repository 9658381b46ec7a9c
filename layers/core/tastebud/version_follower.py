"""Follows a version pointer: builds what it names, smoke-tests it, swaps it in, and refuses a version that fails.

ONE follower for both backends; only who calls ``follow()`` and when differs:

* embedded: the pointer is the artifacts' ``CURRENT`` (a version name); the runtime's watcher thread calls
  ``follow()`` every ``watch_interval_s`` and ``POST /v1/admin/reload`` calls ``swap_to()``;
* AWS: the pointer is ``LIVE.json`` (version, endpoint and index together); the Lambda's provider calls
  ``follow()`` on a request at most every ``pointer_ttl_s``.

A version that fails to build or its smoke test is remembered as refused (the old one keeps serving); a refused
pointer is tried again only after ``retry_refused_s`` (never locally: the failure is the version's; on AWS a
refusal may be an S3 or endpoint hiccup, so the next tick tries again).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from tastebud.errors import TastebudError

logger = logging.getLogger(__name__)

P = TypeVar("P")  # the pointer: what names the version to serve
T = TypeVar("T")  # what serves: a local view, or an AWS-wired service


class VersionRefusedError(TastebudError):
    """A version failed to load or its smoke test; the live version keeps serving."""

    def __init__(self, version: str, reason: str) -> None:
        super().__init__(f"version {version} refused: {reason}")
        self.version = version
        self.reason = reason


@dataclass(frozen=True)
class Swap(Generic[P, T]):
    """A version swapped in: what it was built from, what serves now, and how long building and testing took."""

    pointer: P
    previous: P
    served: T
    build_ms: float


@dataclass(frozen=True)
class _Refusal:
    reason: str
    at: float


def _no_smoke_test(served: object) -> None:
    return None


class VersionFollower(Generic[P, T]):
    """See the module docstring. ``install`` puts a tested version in place (one reference assignment)."""

    def __init__(self, *, read_pointer: Callable[[], P], build: Callable[[P], T], install: Callable[[T], None],
                 serving: P, refusable: tuple[type[BaseException], ...],
                 smoke_test: Callable[[T], None] = _no_smoke_test, key: Callable[[P], Hashable] = repr,
                 retry_refused_s: float = math.inf, clock: Callable[[], float] = time.monotonic) -> None:
        self._read_pointer = read_pointer
        self._build = build
        self._install = install
        self._smoke_test = smoke_test
        self._refusable = refusable
        self._key = key
        self._retry_refused_s = retry_refused_s
        self._clock = clock
        self._serving = serving
        self._refused: dict[Hashable, _Refusal] = {}
        self._unreadable = ""  # why the pointer could not be read last time (logged when it changes)
        self._lock = threading.Lock()  # one swap at a time (the watcher and the admin route may both ask)

    @property
    def serving(self) -> P:
        """The pointer of the version being served."""
        return self._serving

    def read_pointer(self) -> P:
        return self._read_pointer()

    def refusal(self, pointer: P) -> str | None:
        """Why ``pointer``'s version was refused, if it was and the refusal still holds."""
        refusal = self._refused.get(self._key(pointer))
        if refusal is None or self._clock() - refusal.at >= self._retry_refused_s:
            return None
        return refusal.reason

    def follow(self) -> Swap[P, T] | None:
        """One tick: swap when the pointer names a version that is neither served nor refused. Never raises for a
        pointer that cannot be read or a version that is refused: the served version stays."""
        try:
            pointer = self._read_pointer()
        except self._refusable as exc:
            if str(exc) != self._unreadable:  # once per reason, not every tick
                logger.warning("version pointer unreadable, still serving %s: %s", self._serving, exc)
            self._unreadable = str(exc)
            return None
        self._unreadable = ""
        if self._key(pointer) == self._key(self._serving) or self.refusal(pointer) is not None:
            return None
        try:
            return self.swap_to(pointer)
        except VersionRefusedError:
            return None

    def swap_to(self, pointer: P) -> Swap[P, T] | None:
        """Build and smoke-test ``pointer``'s version, then install it; ``VersionRefusedError`` if either fails.
        None: that version is served already."""
        with self._lock:
            previous = self._serving
            if self._key(pointer) == self._key(previous):
                return None
            started = time.perf_counter()
            try:
                served = self._build(pointer)
                self._smoke_test(served)
            except self._refusable as exc:
                self._refuse(pointer, str(exc))
                raise VersionRefusedError(str(pointer), str(exc)) from exc
            except Exception as exc:  # a bug in building: logged with its stack; the served version must stay
                logger.exception("building version %s failed", pointer)
                self._refuse(pointer, f"{type(exc).__name__}: {exc}")
                raise VersionRefusedError(str(pointer), f"{type(exc).__name__}: {exc}") from exc
            self._install(served)
            self._serving = pointer
            self._refused.pop(self._key(pointer), None)
            return Swap(pointer, previous, served, (time.perf_counter() - started) * 1000)

    def _refuse(self, pointer: P, reason: str) -> None:
        self._refused[self._key(pointer)] = _Refusal(reason, self._clock())
        logger.error("refusing version %s (%s); still serving %s", pointer, reason, self._serving)
