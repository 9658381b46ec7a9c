"""Where a training caches what does not depend on the model being trained: text and image vectors, encoder
exports."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "TASTEBUD_CACHE_DIR"


def cache_directory(default: Path) -> Path:
    """``$TASTEBUD_CACHE_DIR`` when set, else ``default`` (beside the artifacts). Entries are keyed by their content
    (model, texts, image files), so one directory can serve every training on a machine: the test suite shares one
    across its trainings."""
    shared = os.environ.get(CACHE_ENV)
    return Path(shared) if shared else default
