"""Time to embed ONE new item in process with ONNX Runtime (the PUT /v1/items path), on the current version.

Usage (one core):
    taskset -c 0 .venv/bin/tastebud experiment bench_item_embedding --artifacts ARTIFACTS --data DATA [--repeat 200]

Prints JSON: milliseconds (median, p90) for the embedder's load, text only, text + item tower (no photo), and
text + photo + item tower, with the item's fields taken from a catalog item that has a photo.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from tastebud.adapters.embedded.onnx_item_embedder import OnnxItemEmbedder
from tastebud.adapters.embedded.onnx_text_encoder import OnnxTextEncoder
from tastebud.artifacts import LocalArtifactStore, Manifest
from tastebud.catalog import Catalog
from tastebud.domain import ItemDraft
from tastebud.features.two_tower import TwoTowerVocab
from tastebud.item_embedding_spec import ItemEmbeddingSpec


def timed(run: Callable[[], object], repeat: int, warmup: int = 10) -> dict[str, float]:
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(float(np.median(samples)), 3), "p90_ms": round(float(np.percentile(samples, 90)), 3)}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="data directory (image_uri root)")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)

    directory = LocalArtifactStore(args.artifacts).current_dir()
    manifest = Manifest.read(directory)
    catalog = Catalog.load(directory / "catalog.npz")
    vocab = (TwoTowerVocab.load(directory, np.load(directory / "text_vectors.npy"))
             if manifest.retrieval.get("kind") == "two_tower" else None)
    started = time.perf_counter()
    embedder = OnnxItemEmbedder.load(directory, manifest, vocab, image_root=args.data)
    load_ms = (time.perf_counter() - started) * 1000

    photo = next(p for p in sorted((args.data / "images").glob("*.png")))
    row = 0
    base = ItemDraft(item_id="bench-1", merchant_id=str(catalog.merchant_ids[catalog.item_merchant[row]]),
                     title="Spicy tofu ramen", category=str(catalog.categories[catalog.item_category[row]]),
                     description="miso broth, chili oil, spring onions, soft egg", price=12.5)
    with_photo = replace(base, image_uri=str(photo.relative_to(args.data)))
    rows = {"merchant_rows": catalog.item_merchant[[row]], "category_rows": catalog.item_category[[row]],
            "domains": catalog.item_domain[[row]].astype(np.int64)}
    spec = ItemEmbeddingSpec.from_manifest(manifest)  # the text stage alone, for the breakdown
    text_encoder = OnnxTextEncoder(directory / spec.text_encoder, directory / spec.tokenizer, spec.max_seq_length)

    results = {
        "version": manifest.version,
        "index_space": manifest.retrieval["item_embedding"]["index_space"],
        "image_size": manifest.retrieval["item_embedding"].get("image_encoder", {}).get("size"),
        "load_ms": round(load_ms, 1),
        "text_only": timed(lambda: text_encoder.encode(["Spicy tofu ramen. noodles. miso broth, chili oil"]),
                           args.repeat),
        "text_and_item_tower": timed(lambda: embedder.embed([base], **rows), args.repeat),
        "text_photo_and_item_tower": timed(lambda: embedder.embed([with_photo], **rows), args.repeat),
    }
    print(json.dumps(results, indent=2))
