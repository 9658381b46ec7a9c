"""ONNX Runtime sessions for serving: created once at load, one intra-op thread (one request per core)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def single_thread_session(model_path: Path) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU with one intra-op and one inter-op thread."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
