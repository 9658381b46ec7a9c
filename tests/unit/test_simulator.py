"""Marketplace simulator: deterministic, valid by the contract, realistic in the ways models rely on."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tastebud_training.data import EVENT_TYPES, Dataset, load_dataset
from tastebud_training.simulator import SimulationSummary, generate, photos
from tastebud_training.simulator.marketplace import WINDOW_START

TINY = {"users": 60, "items": 300, "seed": 1, "progress": False}
FILES = ("merchants.parquet", "items.parquet", "users.parquet", "interactions.parquet", "stock.parquet")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimulationSummary]:
    out = tmp_path_factory.mktemp("sim") / "tiny"
    began = time.perf_counter()
    summary = generate(out, **TINY)
    assert time.perf_counter() - began < 2.0
    return out, summary


@pytest.fixture(scope="module")
def tiny_dir(tiny_run: tuple[Path, SimulationSummary]) -> Path:
    return tiny_run[0]


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> Dataset:
    return load_dataset(tiny_dir)


def test_tiny_output_is_a_valid_data_directory(tiny_dir: Path, tiny: Dataset) -> None:
    assert sorted(p.name for p in tiny_dir.iterdir()) == sorted((*FILES, "ground_truth.json", "images"))
    assert len(tiny.items) == 300 and len(tiny.users) == 60
    assert 8 <= len(tiny.merchants) <= 16
    assert tiny.warnings == ()


def test_same_seed_gives_identical_files(tmp_path: Path, tiny_dir: Path) -> None:
    generate(tmp_path / "again", **TINY)
    for name in (*FILES, "ground_truth.json"):
        assert (tmp_path / "again" / name).read_bytes() == (tiny_dir / name).read_bytes(), name
    images = sorted(p.name for p in (tiny_dir / "images").iterdir())
    assert images == sorted(p.name for p in (tmp_path / "again" / "images").iterdir())
    for name in images:
        assert (tmp_path / "again" / "images" / name).read_bytes() == (tiny_dir / "images" / name).read_bytes(), name


def test_all_event_types_with_positions_and_shared_request_ids(tiny: Dataset) -> None:
    events = tiny.interactions
    assert set(events["event_type"]) == set(EVENT_TYPES)
    shown = events[events["event_type"] == "impression"]
    assert (shown["request_id"] != "").all() and (shown["session_id"] != "").all()
    # Each request shows a list of about 10-16 items at positions 1..n.
    per_request = shown.groupby("request_id")["position"].agg(["min", "max", "count"])
    assert (per_request["min"] == 1).all()
    assert (per_request["max"] == per_request["count"]).all()
    assert per_request["count"].between(1, 16).all() and per_request["count"].median() >= 10
    assert (events["session_id"] != "").all()
    purchases = events[events["event_type"] == "purchase"]
    assert (purchases["quantity"] >= 1).all()


def test_events_of_a_session_follow_the_funnel(tiny: Dataset) -> None:
    events = tiny.interactions
    rank = events["event_type"].map({e: i for i, e in enumerate(EVENT_TYPES)})
    browsed = events[events["request_id"] != ""]
    first = browsed.assign(rank=rank).groupby(["request_id", "item_id", "rank"])["ts"].min().unstack()
    clicked = first[2].notna()
    assert first.loc[clicked, 1].notna().all(), "every click follows a view"
    assert (first.loc[clicked, 2] > first.loc[clicked, 1]).all()
    carted = first[3].notna()
    assert first.loc[carted, 2].notna().all() and (first.loc[carted, 3] > first.loc[carted, 2]).all()


def test_people_reorder(tiny: Dataset) -> None:
    purchases = tiny.interactions[tiny.interactions["event_type"] == "purchase"]
    repeats = purchases.duplicated(["user_id", "item_id"]).mean()
    assert 0.1 < repeats < 0.7
    direct = purchases[purchases["request_id"] == ""]
    assert len(direct) > 0 and direct["position"].isna().all()


def test_new_merchants_and_items_appear_only_once_they_exist(tiny: Dataset) -> None:
    assert (tiny.merchants["created_at"] >= WINDOW_START).sum() >= 1
    created = tiny.items.set_index("item_id")["created_at"]
    assert (created >= WINDOW_START).sum() >= 1
    events = tiny.interactions
    assert (events["ts"].to_numpy() >= created.loc[events["item_id"]].to_numpy()).all()
    users_created = tiny.users.set_index("user_id")["created_at"]
    assert (events["ts"].to_numpy() >= users_created.loc[events["user_id"]].to_numpy()).all()


def test_stock_has_out_of_stock_items(tiny: Dataset) -> None:
    assert tiny.stock is not None
    assert len(tiny.stock) == len(tiny.items)
    assert 1 <= (~tiny.stock["in_stock"]).sum() <= 30
    assert (tiny.stock.loc[~tiny.stock["in_stock"], "quantity"] == 0).all()


def test_catalog_looks_real(tiny: Dataset) -> None:
    items = tiny.items.merge(tiny.merchants[["merchant_id", "domain"]], on="merchant_id")
    assert set(tiny.merchants["domain"]) == {"restaurant", "grocery"}
    assert (tiny.merchants["domain"] == "restaurant").mean() == pytest.approx(0.65, abs=0.15)
    dishes, groceries = items[items["domain"] == "restaurant"], items[items["domain"] == "grocery"]
    assert dishes["price"].median() == pytest.approx(11, abs=4)
    assert groceries["price"].median() == pytest.approx(3, abs=2)
    assert (items["title"] != "").all() and (items["description"] != "").all()
    assert tiny.merchants["lat"].between(52.3, 52.7).all() and tiny.merchants["lon"].between(13.1, 13.7).all()
    assert tiny.users["preferences"].ne("").mean() == pytest.approx(0.6, abs=0.2)


def test_stated_vegetarians_never_buy_meat(tiny: Dataset) -> None:
    plant = tiny.users.loc[
        tiny.users["preferences"].str.split(";").map(lambda p: bool({"vegan", "vegetarian"} & set(p))), "user_id"
    ]
    events = tiny.interactions
    bought = events.loc[(events["event_type"] == "purchase") & events["user_id"].isin(plant), "item_id"]
    descriptions = tiny.items.set_index("item_id").loc[bought, "description"]
    assert descriptions.str.contains("egetarian|Vegan").all()


def test_restaurant_orders_follow_meal_times(tiny: Dataset) -> None:
    restaurant_items = tiny.items.loc[
        tiny.items["merchant_id"].isin(tiny.merchants.loc[tiny.merchants["domain"] == "restaurant", "merchant_id"]),
        "item_id",
    ]
    shown = tiny.interactions[
        (tiny.interactions["event_type"] == "impression") & tiny.interactions["item_id"].isin(restaurant_items)
    ]
    hour = pd.to_datetime(shown["ts"], unit="s").dt.hour
    assert hour.isin([11, 12, 13, 14, 17, 18, 19, 20, 21]).mean() > 0.7


def test_ground_truth_and_summary(tiny_run: tuple[Path, SimulationSummary]) -> None:
    out, summary = tiny_run
    truth = json.loads((out / "ground_truth.json").read_text())
    assert truth["generator"] == "tastebud-simulator"
    assert truth["seed"] == 1 and truth["params"] == {"users": 60, "items": 300, "days": 60}
    assert summary.interactions == truth["summary"]["interactions"] > 0
    assert summary.positives == sum(summary.event_counts[e] for e in ("click", "add_to_cart", "purchase"))
    labels = [label for label, _ in summary.rows()]
    assert "interactions" in labels and "repeat purchases" in labels
    assert json.dumps(summary.as_dict())


def test_refuses_to_overwrite_an_unrelated_directory(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        generate(mine, **TINY)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_replaces_its_own_earlier_output_and_seeds_matter(tmp_path: Path, tiny_dir: Path, tiny: Dataset) -> None:
    out = tmp_path / "data"
    shutil.copytree(tiny_dir, out)
    generate(out, **{**TINY, "seed": 3})
    assert json.loads((out / "ground_truth.json").read_text())["seed"] == 3
    assert not load_dataset(out).items["title"].equals(tiny.items["title"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = pd.DataFrame.to_parquet

    def failing(self: pd.DataFrame, path: Path, *args: object, **kwargs: object) -> None:
        if Path(path).name == "interactions.parquet":
            raise OSError("disk full")
        real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", failing)
    with pytest.raises(OSError, match="disk full"):
        generate(tmp_path / "data", **TINY)
    assert list(tmp_path.iterdir()) == []


def test_positions_show_position_bias(tiny: Dataset) -> None:
    events = tiny.interactions
    shown = events[events["event_type"] == "impression"]["position"].value_counts()
    clicked = events[events["event_type"] == "click"]["position"].value_counts()
    rate = (clicked / shown).fillna(0.0)
    assert rate.loc[1.0] > np.mean(rate.loc[[8.0, 9.0, 10.0]])


def _item_domains(ds: Dataset) -> pd.Series:
    return ds.items["merchant_id"].map(ds.merchants.set_index("merchant_id")["domain"])


def test_items_have_photos_except_about_one_in_ten(tiny_dir: Path, tiny: Dataset) -> None:
    uris = tiny.items["image_uri"]
    with_photo = uris[uris != ""]
    assert (with_photo == "images/" + tiny.items.loc[with_photo.index, "item_id"] + ".png").all()
    assert (uris == "").mean() == pytest.approx(0.10, abs=0.06)
    assert sorted(p.name for p in (tiny_dir / "images").iterdir()) == sorted(u.split("/")[1] for u in with_photo)
    for uri in with_photo.iloc[:20]:
        with Image.open(tiny_dir / uri) as image:
            assert image.format == "PNG" and image.mode == "RGB" and image.size == (64, 64)


def test_photos_show_category_and_domain(tiny_dir: Path, tiny: Dataset) -> None:
    items = tiny.items[tiny.items["image_uri"] != ""].assign(domain=_item_domains(tiny))
    pixels = np.stack([np.asarray(Image.open(tiny_dir / u), dtype=np.float32) for u in items["image_uri"]])
    # The border is background, whose hue belongs to the category: nearest category centroid (leave-one-out).
    border = np.concatenate([pixels[:, :4].reshape(len(pixels), -1, 3), pixels[:, -4:].reshape(len(pixels), -1, 3)],
                            axis=1).mean(axis=1)
    label = (items["domain"] + "/" + items["category"]).to_numpy()
    correct = 0
    for i in range(len(items)):
        same = label == label[i]
        if same.sum() < 2:
            continue
        others = np.ones(len(items), bool)
        others[i] = False
        centroids = {c: border[others & (label == c)].mean(axis=0) for c in set(label[others])}
        correct += min(centroids, key=lambda c: float(np.sum((centroids[c] - border[i]) ** 2))) == label[i]
    assert correct / len(items) > 0.8  # chance: about 1 in 20
    # Plates are large, pale and grey; packs are coloured with only a small pale label.
    pale = ((pixels.min(axis=3) > 170) & (np.ptp(pixels, axis=3) < 40)).mean(axis=(1, 2))
    restaurant = items["domain"].to_numpy() == "restaurant"
    assert np.median(pale[restaurant]) > 2 * np.median(pale[~restaurant])


def test_without_images_the_other_tables_are_unchanged(tmp_path: Path, tiny_dir: Path, tiny: Dataset) -> None:
    generate(tmp_path / "plain", **TINY, images=False)
    assert not (tmp_path / "plain" / "images").exists()
    for name in ("merchants.parquet", "users.parquet", "interactions.parquet", "stock.parquet"):
        assert (tmp_path / "plain" / name).read_bytes() == (tiny_dir / name).read_bytes(), name
    plain = load_dataset(tmp_path / "plain")
    assert (plain.items["image_uri"] == "").all()
    pd.testing.assert_frame_equal(plain.items.drop(columns="image_uri"), tiny.items.drop(columns="image_uri"))
    truth = json.loads((tmp_path / "plain" / "ground_truth.json").read_text())
    assert truth["images"] is None and truth["summary"]["images"] == 0


def test_image_counts_in_summary_and_ground_truth(tiny_run: tuple[Path, SimulationSummary], tiny: Dataset) -> None:
    out, summary = tiny_run
    truth = json.loads((out / "ground_truth.json").read_text())
    assert summary.images == truth["summary"]["images"] == (tiny.items["image_uri"] != "").sum()
    assert summary.items_without_image == truth["summary"]["items_without_image"] == 300 - summary.images
    assert truth["images"]["directory"] == "images"
    assert ("images", f"{summary.images:,} ({summary.items_without_image:,} items without)") in summary.rows()


def test_a_failed_image_write_keeps_the_earlier_output(
    tmp_path: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "data"
    shutil.copytree(tiny_dir, out)
    before = sorted(p.name for p in (out / "images").iterdir())

    def failing(directory: Path, *args: object, **kwargs: object) -> int:
        directory.mkdir()
        (directory / "i000001.png").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(photos, "write_images", failing)
    with pytest.raises(OSError, match="disk full"):
        generate(out, **{**TINY, "seed": 3})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert json.loads((out / "ground_truth.json").read_text())["seed"] == 1
    assert sorted(p.name for p in (out / "images").iterdir()) == before


def test_refuses_to_overwrite_a_data_set_whose_images_folder_holds_other_files(tmp_path: Path, tiny_dir: Path) -> None:
    out = tmp_path / "data"
    shutil.copytree(tiny_dir, out)
    (out / "images" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        generate(out, **TINY)
    assert (out / "images" / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("shape", [(3, 64, 64, 3), (1, 1, 1, 3), (2, 5, 7, 3)])
def test_png_encoder_round_trips_through_pil(shape: tuple[int, int, int, int]) -> None:
    import io

    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    for data, expected in zip(photos.encode_png(pixels), pixels, strict=True):
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG" and image.mode == "RGB" and image.info == {}
            np.testing.assert_array_equal(np.asarray(image), expected)
