"""Keep the garbage collector off the long-lived start-up heap of a serving process.

A worker starts with ~0.5 M tracked objects (imported modules, the version's catalog, models and their wrappers;
more when it was forked from a process that imported TensorFlow). A full collection walks all of them: tens to
hundreds of ms with the GIL held, during which every request on that worker waits. Measured at 1M items through
HTTP, open loop at half capacity: p99 99.8 ms without ``gc.freeze()``, 17.1 ms with it (docs/BENCHMARKS.md).
Freezing after start-up (the Instagram prefork practice, https://docs.python.org/3/library/gc.html#gc.freeze)
moves those objects to a permanent generation that collections skip; it also stops collections from writing to
pages a forked worker shares with its parent.

Frozen objects are never collected, so when a new artifact version replaces the one frozen at start-up,
``refreeze`` collects once (unfreeze, collect, freeze): one pause per version swap instead of one per full
collection, and the old version's cyclic garbage is released.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_frozen = False


def freeze_startup_heap() -> None:
    """Collect what start-up left behind, then freeze every object still alive."""
    global _frozen
    with _lock:
        gc.collect()
        gc.freeze()
        _frozen = True


def refreeze() -> None:
    """After a version swap, in a process that froze its start-up heap: release the old version, freeze the new."""
    with _lock:
        if not _frozen:
            return
        gc.unfreeze()
        gc.collect()
        gc.freeze()


def thaw() -> None:
    """Undo :func:`freeze_startup_heap`: a process that served and goes on to do other work (a test session)."""
    global _frozen
    with _lock:
        gc.unfreeze()
        _frozen = False
