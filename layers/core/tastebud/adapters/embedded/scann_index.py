"""CandidateIndex adapters that run in process: ScaNN (the default) and exact brute force (the reference)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

# Below this many items a partitioned tree has too few points per leaf; brute force is exact and fast.
SCANN_MIN_ITEMS_FOR_TREE = 20_000
# Leaves searched per query, whatever the catalog size. 5% of the leaves (until session 6) searched too few at
# 20k-100k and more than needed at 1M. Recall@200 for user-tower queries, 5% -> 60 leaves: 0.79 -> 0.90 at 20k,
# 0.96 -> 0.99 at 100k, 0.99 -> 0.98 at 1M (search 0.41 -> 0.27 ms); docs/BENCHMARKS.md, session 6.
LEAVES_TO_SEARCH = 60
REORDER_TYPES = ("float32", "bfloat16", "int8")
_ASSETS = "scann_assets.pbtxt"
_ASSET_PATH = re.compile(r'asset_path: "([^"]*)"')


class BruteForceIndex:
    """Exact maximum-inner-product search with numpy: the ground truth for recall measurements."""

    def __init__(self, vectors: np.ndarray, version: str = "brute-force") -> None:
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._version = version

    @property
    def version(self) -> str:
        return self._version

    def search(self, query: np.ndarray, k: int, *, domain: str = "all") -> tuple[np.ndarray, np.ndarray]:
        scores = self._vectors @ query.astype(np.float32)
        k = min(k, scores.size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return top.astype(np.int64), scores[top]


class ScannIndex:
    """ScaNN searcher over item vectors: tree partitioning + asymmetric hashing + exact re-ordering."""

    def __init__(self, searcher: object, size: int, version: str) -> None:
        self._searcher = searcher
        self._size = size
        self._version = version

    @property
    def version(self) -> str:
        return self._version

    @classmethod
    def build(cls, vectors: np.ndarray, version: str, *, max_k: int = 1000, seed: int = 0,
              reorder_as: str = "float32") -> ScannIndex:
        """``reorder_as``: how the re-ordering copy of the vectors is stored: float32, bfloat16 or int8."""
        from tastebud.adapters.embedded.scann_module import scann_ops_pybind  # only the embedded backend needs it

        if reorder_as not in REORDER_TYPES:
            raise ValueError(f"reorder_as must be one of {', '.join(REORDER_TYPES)}, not {reorder_as!r}")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n = vectors.shape[0]
        builder = scann_ops_pybind().builder(vectors, min(max_k, n), "dot_product")
        if n >= SCANN_MIN_ITEMS_FOR_TREE:
            # ~2 sqrt(n) leaves, LEAVES_TO_SEARCH searched; AH + re-ordering of 1000: recall@200 >= 0.97 (bench).
            leaves = int(np.sqrt(n) * 2)
            builder = builder.tree(num_leaves=leaves, num_leaves_to_search=min(leaves, LEAVES_TO_SEARCH),
                                   training_sample_size=min(n, 250_000))
            builder = builder.score_ah(2, anisotropic_quantization_threshold=0.2).reorder(
                1000, quantize=_reorder_type(reorder_as))
        else:
            builder = builder.score_brute_force()
        return cls(builder.build(), n, version)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._searcher.serialize(str(directory))  # type: ignore[attr-defined]
        # ScaNN records absolute asset paths; keep bare file names so the version directory can be moved
        # (staging -> published, local -> S3 -> Lambda /tmp).
        assets = directory / _ASSETS
        assets.write_text(_ASSET_PATH.sub(lambda m: f'asset_path: "{Path(m.group(1)).name}"', assets.read_text()))
        (directory / "size").write_text(str(self._size))

    @classmethod
    def load(cls, directory: Path, version: str) -> ScannIndex:
        from tastebud.adapters.embedded.scann_module import scann_ops_pybind

        if not (directory / _ASSETS).is_file():
            raise FileNotFoundError(f"no ScaNN index in {directory}")
        text = _ASSET_PATH.sub(lambda m: f'asset_path: "{directory.resolve() / Path(m.group(1)).name}"',
                               (directory / _ASSETS).read_text())
        pybind = scann_ops_pybind()
        searcher = pybind.ScannSearcher(pybind.scann_pybind.ScannNumpy(str(directory), text), None)
        return cls(searcher, int((directory / "size").read_text()), version)

    def search(self, query: np.ndarray, k: int, *, domain: str = "all") -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self._size)
        rows, scores = self._searcher.search(query.astype(np.float32), final_num_neighbors=k)  # type: ignore[attr-defined]
        return rows.astype(np.int64), scores.astype(np.float32)


def _reorder_type(name: str) -> object:
    """ScaNN's ReorderType member; its module is loaded by ``scann_ops_pybind`` (no TensorFlow import here)."""
    from scann.scann_ops.py.scann_builder import ReorderType

    return ReorderType[name.upper()]
