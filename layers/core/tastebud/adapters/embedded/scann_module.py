"""ScaNN's searcher without TensorFlow.

``scann/__init__.py`` imports TensorFlow when it is installed (for ScaNN's TF ops, which we never use); its pybind
searcher is a standalone extension (it links only libc/libstdc++) and the wrapper around it needs only protobuf.
``import scann`` took 5.3 s and 655 MB RSS here; this import of the same package takes 0.1 s and 44 MB.
While the package initialises, ``tensorflow`` is marked absent in ``sys.modules`` (the import system then raises
ModuleNotFoundError, which ScaNN's ``__init__`` catches and skips its TF ops); the mark is removed afterwards, so a
later ``import tensorflow`` (training) still works. The package is otherwise the real one.
Imported on first use: the Lambda layer has no ScaNN (on AWS the index is OpenSearch).
"""

from __future__ import annotations

import functools
import sys
from types import ModuleType


@functools.cache
def scann_ops_pybind() -> ModuleType:
    """``scann.scann_ops_pybind`` (builder, ScannSearcher, the pybind extension); ImportError without ScaNN."""
    if "scann" in sys.modules or "tensorflow" in sys.modules:
        import scann  # already paid for (or TensorFlow is loaded anyway): nothing to avoid

        return scann.scann_ops_pybind
    sys.modules["tensorflow"] = None  # type: ignore[assignment]  # "absent": import raises ModuleNotFoundError
    try:
        import scann
    finally:
        if sys.modules.get("tensorflow", ...) is None:
            del sys.modules["tensorflow"]
    return scann.scann_ops_pybind
