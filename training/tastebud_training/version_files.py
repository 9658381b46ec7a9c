"""A trained version's files: the snapshots, vectors, ANN index and stock serving loads, and the manifest that
lists every file with its hash. ``train`` writes them into a staging directory that is published as a whole.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tastebud.adapters.embedded.user_table import UserTable
from tastebud.artifacts import Manifest, sha256_of
from tastebud.catalog import Catalog
from tastebud.display import DISPLAY_FILE, DisplayTable
from tastebud.features.schema import FEATURE_VERSION
from tastebud.ports import CandidateIndex
from tastebud_training.data import Dataset


@dataclass(frozen=True)
class TrainingRun:
    """What a version is trained on and called: the data (already cut at ``as_of``), its fingerprint, the name."""

    dataset: Dataset
    as_of: float
    fingerprint: str
    version: str


@dataclass(frozen=True)
class ItemText:
    """The items' texts and their MiniLM vectors; the vocabulary of stated preferences and its vectors."""

    texts: list[str]
    vectors: np.ndarray
    terms: list[str]
    preference_vectors: np.ndarray


def write_serving_files(out: Path, dataset: Dataset, catalog: Catalog, users: UserTable, text: ItemText,
                        index_vectors: np.ndarray, index: CandidateIndex, ann_index: str) -> None:
    """The serving snapshots (as of the end of the data), the vectors, the ANN index (``ann_index="scann"``; "none"
    has nothing to save) and the stock snapshot."""
    catalog.save(out / "catalog.npz")
    display_table(dataset, catalog).save(out / DISPLAY_FILE)
    users.save(out / "users.npz")
    np.save(out / "text_vectors.npy", text.vectors)
    np.save(out / "index_vectors.npy", index_vectors)
    np.save(out / "preference_vectors.npy", text.preference_vectors)
    (out / "preference_terms.json").write_text(json.dumps(text.terms))
    if ann_index == "scann":
        index.save(out / "index")  # type: ignore[attr-defined]
    (out / "stock_snapshot.json").write_text(json.dumps(_stock_snapshot(dataset)))


def write_manifest(out: Path, run: TrainingRun, retrieval_kind: str, index_version: str, retrieval: dict[str, Any],
                   ranker: dict[str, Any], n_users: int) -> Manifest:
    """The manifest of every file in ``out`` (but the report), written last into ``out``."""
    files = {p.name: sha256_of(p) for p in sorted(out.iterdir()) if p.name != "report"}
    model_version = (f"{retrieval_kind.replace('_', '')}-xgb-"
                     f"{hashlib.sha256((files['ranker.onnx'] + index_version).encode()).hexdigest()[:12]}")
    dataset = run.dataset
    manifest = Manifest(
        version=run.version,
        model_version=model_version,
        index_version=index_version,
        feature_version=FEATURE_VERSION,
        created_at=time.time(),
        retrieval=retrieval,
        ranker=ranker,
        data={"source": str(Path(dataset.source).resolve()), "fingerprint": run.fingerprint, "as_of": run.as_of,
              # Live events and upserts received after this are applied on top of the version by serving.
              "read_at": dataset.read_at if dataset.read_at is not None else time.time(),
              "interactions": len(dataset.interactions), "items": len(dataset.items), "users": n_users},
        files=files,
    )
    (out / "manifest.json").write_text(manifest.to_json())
    return manifest


def display_table(dataset: Dataset, catalog: Catalog) -> DisplayTable:
    """Titles per catalog item row and names per merchant row (what `explain` and the CLI show)."""
    titles = dataset.items.set_index("item_id")["title"].reindex(catalog.item_ids).fillna("").astype(str)
    names = dataset.merchants.set_index("merchant_id")["name"].reindex(catalog.merchant_ids).fillna("").astype(str)
    return DisplayTable(np.asarray(titles.to_numpy(), dtype=str), np.asarray(names.to_numpy(), dtype=str))


def _stock_snapshot(dataset: Dataset) -> dict:
    if dataset.stock is None or dataset.stock.empty:
        return {"out_of_stock": [], "quantities": {}}
    stock = dataset.stock
    quantity = stock["quantity"] if "quantity" in stock else pd.Series(np.nan, index=stock.index)
    out = stock.loc[~stock["in_stock"].astype(bool) | (quantity == 0), "item_id"].astype(str).tolist()
    known = stock[quantity.notna()]
    return {"out_of_stock": sorted(out),
            "quantities": {str(i): int(q) for i, q in zip(known["item_id"], known["quantity"], strict=True)}}
