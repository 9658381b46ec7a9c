"""Small process helpers shared by the local server and the embedded Redis supervisor."""

from __future__ import annotations

import os


def process_alive(pid: int | None) -> bool:
    """True while a process with this id exists (also when it belongs to another user)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
