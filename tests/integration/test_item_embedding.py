"""Embedding a new item in process with ONNX Runtime reproduces what training computed (text, image, item tower).

The trained tiny version (``tiny_artifacts``) ships text_encoder.onnx, image_encoder.onnx and item_tower.onnx.
Catalog items sent through OnnxItemEmbedder as drafts must get training's text vectors and the Keras item tower's
output for a cold item (item id index 0, as feature dropout trains it), images included.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tastebud.adapters.embedded.onnx_item_embedder import OnnxItemEmbedder
from tastebud.artifacts import LocalArtifactStore, Manifest
from tastebud.catalog import Catalog
from tastebud.domain import ItemDraft
from tastebud.errors import ArtifactMismatchError, BadRequestError, NotFoundError
from tastebud.features.image import unit_rows
from tastebud.features.two_tower import TwoTowerVocab, item_inputs
from tastebud.ports import ItemEmbedder

pytestmark = pytest.mark.slow
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def version(tiny_artifacts: Path) -> tuple[Path, Manifest, Catalog, TwoTowerVocab]:
    directory = LocalArtifactStore(tiny_artifacts).current_dir()
    vocab = TwoTowerVocab.load(directory, np.load(directory / "text_vectors.npy"))
    return directory, Manifest.read(directory), Catalog.load(directory / "catalog.npz"), vocab


@pytest.fixture(scope="module")
def embedder(version, tiny_data: Path) -> OnnxItemEmbedder:  # type: ignore[no-untyped-def]
    directory, manifest, _, vocab = version
    return OnnxItemEmbedder.load(directory, manifest, vocab, image_root=tiny_data)


def drafts_of(dataset, catalog: Catalog, rows: np.ndarray) -> list[ItemDraft]:  # type: ignore[no-untyped-def]
    items = dataset.items.set_index("item_id").loc[catalog.item_ids[rows]]
    return [ItemDraft(item_id=str(item_id), merchant_id=str(row["merchant_id"]), title=str(row["title"]),
                      category=str(row["category"]), description=str(row.get("description") or ""),
                      price=float(row["price"]), image_uri=str(row["image_uri"]) or None)
            for item_id, row in items.fillna({"title": "", "description": "", "image_uri": ""}).iterrows()]


def embed_rows(embedder: OnnxItemEmbedder, catalog: Catalog, drafts: list[ItemDraft],
               rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return embedder.embed(drafts, merchant_rows=catalog.item_merchant[rows], category_rows=catalog.item_category[rows],
                          domains=catalog.item_domain[rows].astype(np.int64))


def test_manifest_lists_the_item_embedding_models(version) -> None:  # type: ignore[no-untyped-def]
    directory, manifest, _, _ = version
    section = manifest.retrieval["item_embedding"]
    assert section["index_space"] == "two_tower"
    for part in ("text_encoder", "item_tower", "image_encoder"):
        assert section[part]["parity_max_abs"] <= TOLERANCE
        assert section[part]["file"] in manifest.files and (directory / section[part]["file"]).is_file()
    assert section["text_encoder"]["max_seq_length"] == 128
    assert (directory / "tokenizer.json").is_file()
    assert (directory / "text_encoder.onnx").stat().st_nlink >= 2  # hard-linked from the training cache


def test_catalog_items_embed_as_training_embedded_them(version, embedder, tiny_dataset,  # type: ignore[no-untyped-def]
                                                       tiny_artifacts: Path) -> None:
    """Text vectors == text_vectors.npy (SentenceTransformer); index vectors == Keras item tower with item_idx 0."""
    import keras

    import tastebud_training.two_tower.model  # noqa: F401 - registers the custom layers for loading
    from tastebud_training.image_embedding import ImageConfig, embed_images

    directory, _, catalog, vocab = version
    assert isinstance(embedder, ItemEmbedder)
    rows = np.arange(0, catalog.size, max(1, catalog.size // 40))
    drafts = drafts_of(tiny_dataset, catalog, rows)
    assert any(d.image_uri for d in drafts) and not all(d.image_uri for d in drafts)
    index_vectors, text_vectors = embed_rows(embedder, catalog, drafts, rows)

    assert text_vectors.dtype == index_vectors.dtype == np.float32
    assert np.abs(text_vectors - vocab.text_vectors[rows]).max() <= TOLERANCE

    items = tiny_dataset.items  # training's own image features, in its item order (a cache hit)
    features, has_image = embed_images(Path(tiny_dataset.source), items["image_uri"].fillna("").tolist(),
                                       ImageConfig(), cache_dir=tiny_artifacts / "cache", progress=False)
    order = items.reset_index(drop=True).reset_index().set_index("item_id").loc[catalog.item_ids, "index"].to_numpy()
    inputs = item_inputs(vocab, catalog, rows, unit_rows(features[order]), has_image[order])
    inputs["item_idx"] = np.zeros_like(inputs["item_idx"])
    tower = keras.saving.load_model(directory / "item_tower.keras")
    expected = tower(inputs, training=False).numpy()
    assert np.abs(index_vectors - expected).max() <= TOLERANCE

    trained = np.load(directory / "index_vectors.npy")[rows]
    cold = vocab.item_index[rows] == 0  # items without an id embedding: the index holds exactly the cold vector
    if cold.any():
        assert np.abs(index_vectors[cold] - trained[cold]).max() <= TOLERANCE


def test_one_item_alone_embeds_like_in_a_batch(version, embedder, tiny_dataset) -> None:  # type: ignore[no-untyped-def]
    _, _, catalog, _ = version
    rows = np.asarray([3, 11, 25])
    drafts = drafts_of(tiny_dataset, catalog, rows)
    batch, _ = embed_rows(embedder, catalog, drafts, rows)
    alone, _ = embed_rows(embedder, catalog, drafts[1:2], rows[1:2])
    assert np.abs(alone[0] - batch[1]).max() <= TOLERANCE


def test_a_brand_new_item_of_an_unknown_merchant_gets_a_unit_vector(embedder) -> None:  # type: ignore[no-untyped-def]
    draft = ItemDraft(item_id="new-1", merchant_id="m-new", title="Spicy tofu ramen", category="noodles",
                      description="miso broth, chili oil", price=12.5)
    vectors, text = embedder.embed([draft], merchant_rows=np.asarray([-1]), category_rows=np.asarray([-1]),
                                   domains=np.asarray([0]))
    assert vectors.shape == (1, 128) and text.shape == (1, 384)
    assert np.isclose(np.linalg.norm(vectors[0]), 1.0, atol=1e-5)


@pytest.mark.parametrize(("uri", "error"), [("images/does-not-exist.png", NotFoundError),
                                            ("not-an-image.png", BadRequestError),
                                            ("https://example.com/x.png", NotFoundError),
                                            ("/definitely/missing.png", NotFoundError)])
def test_an_unusable_image_is_refused_naming_the_field(version, tiny_data: Path, tmp_path: Path, uri: str,  # type: ignore[no-untyped-def]
                                                       error: type[Exception]) -> None:
    """A photo that is not there is a 404 (like an unknown merchant); one that is not an image a 400."""
    directory, manifest, _, vocab = version
    (tmp_path / "not-an-image.png").write_text("plain text, not a PNG")
    embedder = OnnxItemEmbedder.load(directory, manifest, vocab, image_root=tmp_path)
    draft = ItemDraft(item_id="x", merchant_id="m", title="Soup", category="soups", image_uri=uri)
    with pytest.raises(error) as raised:
        embedder.embed([draft], merchant_rows=np.asarray([0]), category_rows=np.asarray([0]), domains=np.asarray([0]))
    assert raised.value.field == "image_uri"


def test_an_absolute_image_path_is_used(version, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(photo)
    common = {"item_id": "x", "merchant_id": "m", "title": "Soup", "category": "soups"}
    with_photo, without = ItemDraft(**common, image_uri=str(photo)), ItemDraft(**common)
    vectors, _ = embedder.embed([with_photo, without], merchant_rows=np.asarray([0, 0]),
                                category_rows=np.asarray([0, 0]), domains=np.asarray([0, 0]))
    assert not np.allclose(vectors[0], vectors[1])  # the photo is used, not the missing-image vector


def test_content_versions_index_the_text_vector(version) -> None:  # type: ignore[no-untyped-def]
    directory, manifest, _, _ = version
    section = manifest.retrieval["item_embedding"]
    content = replace(manifest, retrieval={"kind": "content", "item_embedding": {
        "index_space": "content", "text_encoder": section["text_encoder"]}})
    embedder = OnnxItemEmbedder.load(directory, content, None)
    draft = ItemDraft(item_id="x", merchant_id="m", title="Oat milk", category="dairy alternatives")
    index, text = embedder.embed([draft], merchant_rows=np.asarray([-1]), category_rows=np.asarray([-1]),
                                 domains=np.asarray([1]))
    np.testing.assert_array_equal(index, text)


def test_versions_without_item_embedding_are_refused(version) -> None:  # type: ignore[no-untyped-def]
    directory, manifest, _, vocab = version
    old = replace(manifest, retrieval={k: v for k, v in manifest.retrieval.items() if k != "item_embedding"})
    with pytest.raises(ArtifactMismatchError, match="cannot embed new items"):
        OnnxItemEmbedder.load(directory, old, vocab)


def test_text_encoder_export_matches_sentence_transformers(tiny_artifacts: Path) -> None:
    """Tiny inputs, batch and one by one, including a text longer than max_seq_length (truncation)."""
    from tastebud_training.item_embedding.text_encoder import export_text_encoder, load_text_encoder
    from tastebud_training.text_embedding import sentence_transformer

    texts = ["Margherita. pizza. tomato, mozzarella", "item", "Crème brûlée. desserts", "word " * 300]
    encoder = load_text_encoder(export_text_encoder(tiny_artifacts / "cache"))  # training's export
    expected = sentence_transformer().encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert np.abs(encoder.encode(texts) - expected).max() <= TOLERANCE
    one_by_one = np.concatenate([encoder.encode([t]) for t in texts])
    assert np.abs(one_by_one - expected).max() <= TOLERANCE


def test_an_export_that_disagrees_with_training_is_not_published(tmp_path: Path) -> None:
    """Text vectors that are not what the ONNX encoder computes -> ParityError, nothing to publish."""
    from tastebud_training.item_embedding import ParityError, export_item_embedding
    from tastebud_training.retrieval import fit_content

    texts = ["Margherita. pizza", "Oat milk. dairy alternatives"]
    wrong = np.eye(2, 384, dtype=np.float32)
    retrieval = fit_content(wrong, np.zeros((0, 384), np.float32))
    with pytest.raises(ParityError, match="text encoder"):
        export_item_embedding(tmp_path, retrieval, texts, wrong, None, tmp_path / "cache")
