"""New items' vectors under a version's model: computed in process once, cached in Redis for every worker.

An upserted item is embedded before anything is stored (a bad image is the caller's 400); a new version embeds
the fresh items again with ITS model, and there a photo that has gone since must not refuse the version.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace

import numpy as np

from tastebud.adapters.redis_live_state import RedisLiveState
from tastebud.domain import ItemDraft
from tastebud.errors import BadRequestError
from tastebud.serving_version import ServingVersion

logger = logging.getLogger(__name__)


def draft_key(draft: ItemDraft) -> str:
    """Vectors are cached per item AND its fields: a changed title is embedded again."""
    digest = hashlib.sha256(json.dumps([draft.title, draft.category, draft.description, draft.price,
                                        draft.image_uri, draft.merchant_id]).encode()).hexdigest()[:16]
    return f"{draft.item_id}|{digest}"


class ItemVectors:
    """``embed_missing`` is what ``tastebud.live.view.build_view`` calls for the items its version lacks."""

    def __init__(self, live: RedisLiveState) -> None:
        self._live = live

    def embed_missing(self, version: ServingVersion, drafts: list[ItemDraft], merchant_rows: np.ndarray,
                      category_rows: np.ndarray, domains: np.ndarray, *,
                      strict: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(index vectors, text vectors) of ``drafts``: cached in Redis, computed in process when missing.

        ``strict``: a bad image is the caller's error (an upsert: 400); otherwise the item is embedded without it.
        """
        if version.embedder is None:
            return np.zeros((0, 1), np.float32), np.zeros((0, version.text_dim), np.float32)
        model = version.manifest.model_version
        keys = [draft_key(d) for d in drafts]
        cached_index = self._live.get_vectors(f"{model}:index", keys)
        cached_text = self._live.get_vectors(f"{model}:text", keys)
        missing = [i for i, key in enumerate(keys) if key not in cached_index or key not in cached_text]
        if missing:
            index_vectors, text_vectors = _embed(version, [drafts[i] for i in missing], merchant_rows[missing],
                                                 category_rows[missing], domains[missing], strict=strict)
            fresh_index = {keys[i]: index_vectors[j] for j, i in enumerate(missing)}
            fresh_text = {keys[i]: text_vectors[j] for j, i in enumerate(missing)}
            self._live.put_vectors(f"{model}:index", fresh_index)
            self._live.put_vectors(f"{model}:text", fresh_text)
            cached_index.update(fresh_index)
            cached_text.update(fresh_text)
        return (np.stack([cached_index[k] for k in keys]).astype(np.float32),
                np.stack([cached_text[k] for k in keys]).astype(np.float32))


def _embed(version: ServingVersion, drafts: list[ItemDraft], merchant_rows: np.ndarray, category_rows: np.ndarray,
           domains: np.ndarray, *, strict: bool) -> tuple[np.ndarray, np.ndarray]:
    embedder = version.embedder
    assert embedder is not None
    try:
        return embedder.embed(drafts, merchant_rows=merchant_rows, category_rows=category_rows, domains=domains)
    except BadRequestError:
        if strict:
            raise
    # Re-embedding for a new version: one item at a time, so that only the item whose photo has gone loses it.
    vectors = []
    for i, draft in enumerate(drafts):
        one = {"merchant_rows": merchant_rows[i:i + 1], "category_rows": category_rows[i:i + 1],
               "domains": domains[i:i + 1]}
        try:
            vectors.append(embedder.embed([draft], **one))
        except BadRequestError as exc:
            logger.warning("item %s: %s; embedded without its image", draft.item_id, exc.message)
            vectors.append(embedder.embed([replace(draft, image_uri=None)], **one))
    return np.concatenate([v[0] for v in vectors]), np.concatenate([v[1] for v in vectors])
