"""Two-tower model inputs: ONE numpy module used by training (batches of examples) and serving (one request).

Ids become embedding-table indices here, outside the model, so the exported ONNX user tower takes plain
int64/float32 tensors. Index 0 of every table is "unknown/out of vocabulary": new users, new items,
new merchants and missing attributes all map there, which is also what feature dropout produces in
training, so a cold entity at serving time looks exactly like a dropped-out one in training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tastebud.catalog import DOMAIN_CODE, Catalog
from tastebud.domain import RequestContext, UserProfile
from tastebud.row_table import GrowingRows

TWO_TOWER_FEATURE_VERSION = "two-tower-features-v1"
HISTORY_LENGTH = 20
MAX_PREFERENCES = 8
AREA_BUCKETS = 512
PRICE_BUCKETS = 10
CONTEXT_DOMAINS = ("all", *DOMAIN_CODE)  # 0 = all, 1 = restaurant, 2 = grocery

USER_INPUTS = ("user_idx", "age_idx", "gender_idx", "area_idx", "pref_idx", "hist_idx", "hist_weight",
               "hist_text", "hour", "dow", "domain")
# The SageMaker endpoint's inputs (TFRS style): the model holds the item-text table itself and takes the
# history's catalog rows (``hist_row``) instead of the averaged text, so no serving function loads the
# items x 384 text matrix (1.5 GB at 1M items). two_tower/serving.py wraps the user tower accordingly.
ENDPOINT_USER_INPUTS = (*(name for name in USER_INPUTS if name != "hist_text"), "hist_row")
ITEM_INPUTS = ("item_idx", "merchant_idx", "category_idx", "item_domain", "price_bucket", "text", "image",
               "has_image")


@dataclass(frozen=True)
class TwoTowerVocab:
    """Vocabularies and per-catalog-row lookups shared by both towers (saved with the model).

    Attributes:
        user_ids: known user ids; user ``user_ids[i]`` has index ``i + 1``.
        age_bands, genders: attribute values; index = position + 1.
        item_index: per catalog row, the item-id embedding index (0 = not seen in training: cold).
        merchant_index: per merchant row, the merchant embedding index (0 = not seen in training).
        n_preferences: size of the stated-preference vocabulary (rows of preference_terms.json).
        price_edges: quantile edges of item prices for PRICE_BUCKETS buckets.
        text_vectors: per catalog row, the item text vector (for the user's history text profile).
    """

    user_ids: np.ndarray
    age_bands: tuple[str, ...]
    genders: tuple[str, ...]
    item_index: np.ndarray
    merchant_index: np.ndarray
    n_items: int
    n_merchants: int
    n_categories: int
    n_preferences: int
    price_edges: np.ndarray
    text_vectors: np.ndarray | GrowingRows
    _user_lookup: dict[str, int] = field(init=False, repr=False, compare=False)
    _age_lookup: dict[str, int] = field(init=False, repr=False, compare=False)
    _gender_lookup: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_user_lookup", {u: i + 1 for i, u in enumerate(self.user_ids.tolist())})
        object.__setattr__(self, "_age_lookup", {a: i + 1 for i, a in enumerate(self.age_bands)})
        object.__setattr__(self, "_gender_lookup", {g: i + 1 for i, g in enumerate(self.genders)})

    def with_fresh_rows(self, text_vectors: np.ndarray) -> TwoTowerVocab:
        """The vocabulary for a catalog with fresh items appended: their text, and item index 0 (cold)."""
        base = self.text_vectors.base if isinstance(self.text_vectors, GrowingRows) else self.text_vectors
        n_base = base.shape[0]
        cold = np.zeros(len(text_vectors), dtype=self.item_index.dtype)
        item_index = np.concatenate([self.item_index[:n_base], cold])
        return replace(self, text_vectors=GrowingRows(base, text_vectors), item_index=item_index)

    def user_index(self, user_id: str) -> int:
        return self._user_lookup.get(user_id, 0)

    def age_index(self, value: str) -> int:
        return self._age_lookup.get(value, 0)

    def gender_index(self, value: str) -> int:
        return self._gender_lookup.get(value, 0)

    @property
    def sizes(self) -> dict[str, int]:
        """Embedding table sizes (index 0 included)."""
        return {"users": self.user_ids.size + 1, "ages": len(self.age_bands) + 1, "genders": len(self.genders) + 1,
                "areas": AREA_BUCKETS + 1, "preferences": self.n_preferences + 1, "items": self.n_items + 1,
                "merchants": self.n_merchants + 1, "categories": self.n_categories + 1,
                "prices": PRICE_BUCKETS + 1, "hours": 24, "days": 7, "domains": len(CONTEXT_DOMAINS),
                "text_dim": int(self.text_vectors.shape[1])}

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / "two_tower_vocab.npz", user_ids=self.user_ids, item_index=self.item_index,
                 merchant_index=self.merchant_index, price_edges=self.price_edges)
        (directory / "two_tower_vocab.json").write_text(json.dumps({
            "age_bands": list(self.age_bands), "genders": list(self.genders), "n_items": self.n_items,
            "n_merchants": self.n_merchants, "n_categories": self.n_categories, "n_preferences": self.n_preferences,
        }))

    @classmethod
    def load(cls, directory: Path, text_vectors: np.ndarray) -> TwoTowerVocab:
        meta = json.loads((directory / "two_tower_vocab.json").read_text())
        with np.load(directory / "two_tower_vocab.npz", allow_pickle=False) as arrays:
            return cls(user_ids=arrays["user_ids"], age_bands=tuple(meta["age_bands"]), genders=tuple(meta["genders"]),
                       item_index=arrays["item_index"], merchant_index=arrays["merchant_index"],
                       n_items=int(meta["n_items"]), n_merchants=int(meta["n_merchants"]),
                       n_categories=int(meta["n_categories"]), n_preferences=int(meta["n_preferences"]),
                       price_edges=arrays["price_edges"], text_vectors=text_vectors)


def area_bucket(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """A ~2 km grid cell hashed into AREA_BUCKETS buckets (1..AREA_BUCKETS); 0 when the location is unknown."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    known = ~(np.isnan(lat) | np.isnan(lon))
    cell_lat = np.floor(np.where(known, lat, 0) / 0.02).astype(np.int64)
    cell_lon = np.floor(np.where(known, lon, 0) / 0.03).astype(np.int64)
    hashed = (cell_lat * 73856093) ^ (cell_lon * 19349663)
    return np.where(known, np.mod(hashed, AREA_BUCKETS) + 1, 0).astype(np.int64)


def price_bucket(prices: np.ndarray, edges: np.ndarray) -> np.ndarray:
    prices = np.asarray(prices, dtype=np.float64)
    return np.where(np.isnan(prices), 0, np.searchsorted(edges, prices, side="right") + 1).astype(np.int64)


def history_matrix(rows: list[np.ndarray], weights: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Pad histories (most recent first) to HISTORY_LENGTH: catalog rows (-1 = padding) and weights (0)."""
    n = len(rows)
    out_rows = np.full((n, HISTORY_LENGTH), -1, dtype=np.int64)
    out_weights = np.zeros((n, HISTORY_LENGTH), dtype=np.float32)
    for i, (r, w) in enumerate(zip(rows, weights, strict=True)):
        m = min(r.size, HISTORY_LENGTH)
        out_rows[i, :m] = r[:m]
        out_weights[i, :m] = w[:m]
    return out_rows, out_weights


def preference_matrix(preferences: list[np.ndarray]) -> np.ndarray:
    out = np.zeros((len(preferences), MAX_PREFERENCES), dtype=np.int64)
    for i, p in enumerate(preferences):
        m = min(p.size, MAX_PREFERENCES)
        out[i, :m] = p[:m] + 1
    return out


def user_inputs(vocab: TwoTowerVocab, *, user_idx: np.ndarray, age_idx: np.ndarray, gender_idx: np.ndarray,
                area_idx: np.ndarray, pref_idx: np.ndarray, hist_rows: np.ndarray, hist_weights: np.ndarray,
                hour: np.ndarray, dow: np.ndarray, domain: np.ndarray) -> dict[str, np.ndarray]:
    """The user tower's input tensors for a batch; the single implementation behind training and serving."""
    ids = _id_inputs(vocab, user_idx=user_idx, age_idx=age_idx, gender_idx=gender_idx, area_idx=area_idx,
                     pref_idx=pref_idx, hist_rows=hist_rows, hist_weights=hist_weights, hour=hour, dow=dow,
                     domain=domain)
    text = history_text(vocab.text_vectors, ids.pop("hist_row"), ids["hist_weight"])
    return {name: (text if name == "hist_text" else ids[name]) for name in USER_INPUTS}


def history_text(text_vectors: np.ndarray | GrowingRows, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted mean text vector of a history (padding has weight 0). two_tower/serving.py does the same
    inside the SageMaker model, with the table as a variable."""
    total = weights.sum(axis=1, keepdims=True)
    return (np.einsum("bl,bld->bd", weights, text_vectors[rows]) / np.maximum(total, 1e-6)).astype(np.float32)


def _id_inputs(vocab: TwoTowerVocab, *, user_idx: np.ndarray, age_idx: np.ndarray, gender_idx: np.ndarray,
               area_idx: np.ndarray, pref_idx: np.ndarray, hist_rows: np.ndarray, hist_weights: np.ndarray,
               hour: np.ndarray, dow: np.ndarray, domain: np.ndarray) -> dict[str, np.ndarray]:
    valid = hist_rows >= 0
    safe_rows = np.where(valid, hist_rows, 0)
    hist_idx = np.where(valid, vocab.item_index[safe_rows], 0).astype(np.int64)
    weights = np.where(valid, hist_weights, 0.0).astype(np.float32)
    return {
        "user_idx": user_idx.astype(np.int64),
        "age_idx": age_idx.astype(np.int64),
        "gender_idx": gender_idx.astype(np.int64),
        "area_idx": area_idx.astype(np.int64),
        "pref_idx": pref_idx.astype(np.int64),
        "hist_idx": hist_idx,
        "hist_weight": weights,
        "hist_row": safe_rows.astype(np.int64),
        "hour": hour.astype(np.int64),
        "dow": dow.astype(np.int64),
        "domain": domain.astype(np.int64),
    }


def profile_inputs(vocab: TwoTowerVocab, user: UserProfile, context: RequestContext) -> dict[str, np.ndarray]:
    """Serving: one request's user tower inputs, from the same profile the other stages use."""
    return user_inputs(vocab, **_profile_arrays(vocab, user, context))


def profile_endpoint_inputs(vocab: TwoTowerVocab, user: UserProfile, context: RequestContext
                            ) -> dict[str, np.ndarray]:
    """Serving on SageMaker: ``ENDPOINT_USER_INPUTS`` (history rows instead of the history's text vector).
    ``vocab.text_vectors`` is not read, so the AWS functions load the vocabulary without the text table."""
    ids = _id_inputs(vocab, **_profile_arrays(vocab, user, context))
    return {name: ids[name] for name in ENDPOINT_USER_INPUTS}


def _profile_arrays(vocab: TwoTowerVocab, user: UserProfile, context: RequestContext) -> dict[str, np.ndarray]:
    hist_rows, hist_weights = history_matrix([user.history_rows], [user.history_weights])
    lat, lon = (context.lat, context.lon) if not np.isnan(context.lat) else (user.home_lat, user.home_lon)
    return dict(
        user_idx=np.asarray([vocab.user_index(user.user_id)]),
        age_idx=np.asarray([vocab.age_index(user.age_band)]),
        gender_idx=np.asarray([vocab.gender_index(user.gender)]),
        area_idx=area_bucket(np.asarray([lat]), np.asarray([lon])),
        pref_idx=preference_matrix([user.preference_rows]),
        hist_rows=hist_rows,
        hist_weights=hist_weights,
        hour=np.asarray([context.hour_of_day]),
        dow=np.asarray([context.day_of_week]),
        domain=np.asarray([CONTEXT_DOMAINS.index(context.domain)]),
    )


def item_features(vocab: TwoTowerVocab, *, item_idx: np.ndarray, merchant_rows: np.ndarray,
                  category_rows: np.ndarray, domains: np.ndarray, prices: np.ndarray, text: np.ndarray,
                  image: np.ndarray, has_image: np.ndarray) -> dict[str, np.ndarray]:
    """The item tower's input tensors from raw per-item arrays; the single implementation behind training
    (catalog rows, see ``item_inputs``) and serving (new items, which get ``item_idx`` 0 like dropped-out ids).

    Args:
        item_idx: item-id embedding indices (0 = unknown/cold).
        merchant_rows: catalog merchant rows; -1 (or a row the vocabulary does not know) -> unknown merchant.
        category_rows: catalog category rows; -1 (or beyond the vocabulary) -> unknown category.
        domains: DOMAIN codes (tastebud.catalog.DOMAINS); -1 -> unknown.
        prices: NaN when unknown; rounded to float32 first, as the catalog stores them (a float64 price can sit
            on the other side of a bucket edge than its float32 catalog copy).
        text, image: per-item vectors; has_image: bool/0-1 per item (0 -> the learned missing-image vector).
    """
    merchant_rows = np.asarray(merchant_rows, dtype=np.int64)
    category_rows = np.asarray(category_rows, dtype=np.int64)
    known_merchant = (merchant_rows >= 0) & (merchant_rows < vocab.merchant_index.size)
    known_category = (category_rows >= 0) & (category_rows < vocab.n_categories)
    return {
        "item_idx": np.asarray(item_idx, dtype=np.int64),
        "merchant_idx": np.where(known_merchant, vocab.merchant_index[np.where(known_merchant, merchant_rows, 0)],
                                 0).astype(np.int64),
        "category_idx": np.where(known_category, category_rows + 1, 0).astype(np.int64),
        "item_domain": np.maximum(np.asarray(domains, dtype=np.int64) + 1, 0),
        "price_bucket": price_bucket(np.asarray(prices, dtype=np.float32), vocab.price_edges),
        "text": np.asarray(text, dtype=np.float32),
        "image": np.asarray(image, dtype=np.float32),
        "has_image": np.asarray(has_image, dtype=np.float32).reshape(-1, 1),
    }


def item_inputs(vocab: TwoTowerVocab, catalog: Catalog, rows: np.ndarray, image_vectors: np.ndarray,
                has_image: np.ndarray) -> dict[str, np.ndarray]:
    """The item tower's input tensors for catalog ``rows`` (offline: training and index building)."""
    return item_features(
        vocab,
        item_idx=vocab.item_index[rows],
        merchant_rows=catalog.item_merchant[rows],
        category_rows=catalog.item_category[rows],
        domains=catalog.item_domain[rows],
        prices=catalog.item_price[rows],
        text=vocab.text_vectors[rows],
        image=image_vectors[rows],
        has_image=has_image[rows],
    )
