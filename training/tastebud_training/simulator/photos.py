"""Simulated item photos: small PNGs whose colours, shapes and textures carry the item's category and domain.

A restaurant dish is a plate seen from above (a light disc with a darker rim holding an oval of food); a grocery
product is a box or a bottle with a light label band. The category sets the background hue, the colour of the
food or packaging and the angle and frequency of a stripe pattern on it; position, size, lighting and a coarse
texture vary per item. A vision model can therefore tell categories and domains apart, but not from one pixel.

About one item in ten has no photo (an empty ``image_uri``), as in real catalogs. Images use their own random
streams derived from the seed, so switching them on or off leaves every other table of a seed unchanged.
All images are drawn with numpy in chunks and encoded as PNG here (one vectorised row filter, zlib at a fixed
level, no timestamp or other metadata), so the same seed gives byte-identical files. 12,000 photos take a few
seconds, most of it creating the files.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

IMAGE_DIR = "images"  # under the data directory; image_uri values are relative to the data directory
IMAGE_SIZE = 64
MISSING_SHARE = 0.10
COMPRESS_LEVEL = 1  # zlib level, fixed for byte-identical output; 6 saves ~10% of bytes at twice the time
_STREAM = 0x1A6E  # random streams [seed, _STREAM, k]: 0 = which items have a photo, 1 = drawing them
_CHUNK = 64  # images per numpy batch: small enough for the working set to stay in cache
_TEXTURE_CELLS = 8  # the per-item texture is an 8x8 grid of cells, blown up to the image size
_GOLDEN = 0.6180339887498949
# Grocery categories that mostly come in bottles; all other groceries mostly in boxes.
_BOTTLED = frozenset({"beverages", "dairy"})


def image_uri(item_id: str) -> str:
    """The ``image_uri`` of an item's photo, relative to the data directory."""
    return f"{IMAGE_DIR}/{item_id}.png"


def choose_photographed(n_items: int, seed: int) -> np.ndarray:
    """Which items have a photo (bool per item row): all but about MISSING_SHARE, at least one of each kind."""
    rng = np.random.default_rng([seed, _STREAM, 0])
    has = rng.random(n_items) >= MISSING_SHARE
    if n_items >= 2 and has.all():
        has[rng.integers(n_items)] = False  # even a tiny catalog shows models a missing photo
    if n_items >= 1 and not has.any():
        has[rng.integers(n_items)] = True
    return has


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """HSV in [0, 1] (arrays of one shape) -> RGB in [0, 255], with a trailing axis of 3."""
    h6 = (h % 1.0) * 6.0
    sector = np.floor(h6).astype(np.int64) % 6
    f = h6 - np.floor(h6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    # (r, g, b) for sectors 0..5 of the hue circle
    table = np.stack([np.stack(c, axis=-1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))])
    return 255.0 * np.take_along_axis(table, sector[None, ..., None], axis=0)[0]


def _slot_styles(n_slots: int) -> dict[str, np.ndarray]:
    """Per category slot: background colour, foreground hue, stripe angle and frequency (fixed, not random)."""
    slot = np.arange(n_slots)
    return {
        "bg_hue": (slot * _GOLDEN) % 1.0,
        "bg_saturation": 0.22 + 0.16 * (slot % 3),  # neighbours on the hue circle differ in saturation too
        "bg_value": 0.68 + 0.1 * ((slot // 3) % 3),
        "fg_hue": (slot * 0.381966 + 0.13 + 0.5 * (slot % 2)) % 1.0,
        "angle": ((slot * 5) % 12) * np.pi / 12,
        "freq": 3.0 + 2.0 * (slot % 4),  # stripe cycles across the image
    }


_N_FEATURES = 7  # five region indicators, stripes, texture


def _features(p: dict[str, np.ndarray], cells: np.ndarray, features: np.ndarray, *, grocery: bool) -> None:
    """Fill ``features`` (m, _N_FEATURES, size, size) float32 for m images of one domain (see ``render``)."""
    m, size = len(cells), features.shape[-1]
    col = {k: v.astype(np.float32)[:, None, None] for k, v in p.items()}
    axis = (np.arange(size, dtype=np.float32) + 0.5) / size
    dx, dy = axis[None, None, :] - col["cx"], axis[None, :, None] - col["cy"]  # (m, 1, size), (m, size, 1)
    if grocery:  # a box, or a bottle (body and neck), with a label band across the body
        body = (np.abs(dx) < col["hw"]) & (np.abs(dy) < col["hh"])
        neck = (col["bottle"] > 0) & (np.abs(dx) < 0.4 * col["hw"]) & (dy < -col["hh"]) & (dy > -col["hh"] - 0.14)
        band = body & (dy > -0.15 * col["hh"]) & (dy < 0.3 * col["hh"])
        region = 3 * (body | neck).astype(np.uint8) + band
    else:  # a plate with a darker rim, holding an oval of food
        r2 = col["r"] ** 2
        dist2 = dx * dx + dy * dy
        region = (dist2 < r2).astype(np.uint8)
        region += region & (dist2 > 0.77 * r2)
        food = (dx * col["aspect"]) ** 2 + (dy / col["aspect"]) ** 2 < (col["food"] * col["r"]) ** 2
        np.putmask(region, food, 3)
    for code in range(5):
        np.equal(region, code, out=features[:, code], casting="unsafe")  # 10x faster than assigning a bool
    # Stripes sin(a*dx + b*dy + phase), split into x and y parts so no full-size sine is needed.
    wave = 2 * np.pi * col["freq"]
    x_part = wave * np.cos(col["angle"]) * dx + col["phase"]
    y_part = wave * np.sin(col["angle"]) * dy
    stripes = features[:, 5]
    np.multiply(np.sin(x_part), np.cos(y_part), out=stripes)
    stripes += np.cos(x_part) * np.sin(y_part)
    stripes *= features[:, 3]  # on the food or packaging only
    rep = size // _TEXTURE_CELLS
    features[:, 6].reshape(m, _TEXTURE_CELLS, rep, _TEXTURE_CELLS, rep)[...] = cells[:, :, None, :, None]


def _colour_weights(styles: dict[str, np.ndarray], slots: np.ndarray, u: np.ndarray, light: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Per image, the colour each feature plane adds (n, _N_FEATURES, 3) float32: regions (background, plate,
    plate rim, food or packaging, label band), then the category stripes and a grey texture. A pixel is its
    feature vector times this. ``u`` is the images' uniform draws of ``render``; hues jitter by ``rng``."""
    n = len(slots)
    bg = _hsv_to_rgb(styles["bg_hue"][slots] + 0.01 * rng.standard_normal(n),
                     styles["bg_saturation"][slots] + 0.06 * u[:, 8],
                     (styles["bg_value"][slots] + 0.06 * u[:, 9]) * light)
    fg = _hsv_to_rgb(styles["fg_hue"][slots] + 0.015 * rng.standard_normal(n), 0.6 + 0.3 * u[:, 10],
                     (0.5 + 0.35 * u[:, 11]) * light)
    plate = np.array([236.0, 234.0, 228.0]) * light[:, None]
    return np.concatenate(
        [np.stack([bg, plate, 0.85 * plate, fg, np.array([245.0, 243.0, 235.0]) * light[:, None]], axis=1),
         np.full((n, 2, 3), [[22.0], [1.0]])], axis=1).astype(np.float32)


def render(slots: np.ndarray, domains: np.ndarray, bottled: np.ndarray, seed: int,
           size: int = IMAGE_SIZE) -> np.ndarray:
    """Draw photos: uint8 array (n, size, size, 3).

    Args:
        slots: category index per image (styles are looked up by it, so any stable numbering works).
        domains: 0 = restaurant dish (plate), 1 = grocery product (box or bottle).
        bottled: per image, whether a grocery product's category usually comes in a bottle.
        seed: random seed for the per-image variation.
        size: width and height in pixels.
    """
    if size % _TEXTURE_CELLS:
        raise ValueError(f"image size must be a multiple of {_TEXTURE_CELLS}, got {size}")
    n = len(slots)
    rng = np.random.default_rng([seed, _STREAM, 1])
    styles = _slot_styles(int(slots.max()) + 1 if n else 1)
    u = rng.random((n, 12))
    grocery = np.asarray(domains) == 1
    bottle = grocery & (u[:, 0] < np.where(bottled, 0.85, 0.15))
    params = {
        "cx": 0.5 + 0.2 * (u[:, 1] - 0.5),
        "cy": 0.5 + 0.2 * (u[:, 2] - 0.5),
        # plates: radius; boxes and bottles: half width and half height
        "r": 0.30 + 0.12 * u[:, 3],
        "food": 0.55 + 0.2 * u[:, 4],
        "aspect": 0.8 + 0.45 * u[:, 5],
        "hw": np.where(bottle, 0.09 + 0.04 * u[:, 3], 0.17 + 0.10 * u[:, 3]),
        "hh": np.where(bottle, 0.27 + 0.08 * u[:, 4], 0.20 + 0.10 * u[:, 4]),
        "phase": 2 * np.pi * u[:, 6],
        "light": 0.9 + 0.1 * u[:, 7],
    }
    weights = _colour_weights(styles, slots, u, params["light"], rng)
    cells = rng.normal(0.0, 9.0, (n, _TEXTURE_CELLS, _TEXTURE_CELLS)).astype(np.float32)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    # Buffers reused by every chunk: fresh ones would cost a page fault per 4 kB, which here is most of the time.
    features = np.empty((_CHUNK, _N_FEATURES, size, size), dtype=np.float32)
    pixels = np.empty((_CHUNK, size * size, 3), dtype=np.float32)
    for is_grocery in (False, True):
        rows = np.flatnonzero(grocery == is_grocery)
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start:start + _CHUNK]
            p = {k: v[chunk] for k, v in params.items()}
            p |= {"bottle": bottle[chunk], "angle": styles["angle"][slots[chunk]], "freq": styles["freq"][slots[chunk]]}
            m = len(chunk)
            _features(p, cells[chunk], features[:m], grocery=is_grocery)
            np.matmul(features[:m].reshape(m, _N_FEATURES, -1).transpose(0, 2, 1), weights[chunk], out=pixels[:m])
            np.clip(pixels[:m], 0.0, 255.0, out=pixels[:m])
            pixels[:m] += 0.5  # round half up when truncating to uint8
            out[chunk] = pixels[:m].reshape(m, size, size, 3)
    return out


def encode_png(pixels: np.ndarray, level: int = COMPRESS_LEVEL) -> list[bytes]:
    """PNG files (8-bit RGB, no metadata) for a batch of images (n, h, w, 3) uint8.

    Written here rather than with PIL because PIL tries all five row filters on every row, which makes it
    the slowest step of the simulator; one vectorised "Up" filter compresses these images about as well.
    """
    n, height, width, _ = pixels.shape
    rows = np.empty((n, height, 1 + 3 * width), dtype=np.uint8)
    rows[:, :, 0] = 2  # filter type "Up": each byte minus the byte above it
    rows[:, :, 1:] = pixels.reshape(n, height, 3 * width)
    rows[:, 1:, 1:] -= pixels[:, :-1].reshape(n, height - 1, 3 * width)  # wraps modulo 256, as PNG wants
    header = _PNG_SIGNATURE + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    end = _png_chunk(b"IEND", b"")
    return [header + _png_chunk(b"IDAT", zlib.compress(image.tobytes(), level)) + end for image in rows]


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _write_new(path: Path, data: bytes) -> None:
    # os-level calls: 3-4x faster than Path.write_bytes for thousands of small files
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def write_images(directory: Path, item_ids: Sequence[str], categories: Sequence[str], slots: np.ndarray,
                 domains: np.ndarray, seed: int, size: int = IMAGE_SIZE) -> int:
    """Draw and write ``<directory>/<item_id>.png`` for the given items; returns how many were written.

    Args:
        directory: created if missing (the simulator passes its staging directory, so nothing is half-written).
        item_ids: items to draw, in a fixed order (the order feeds the random stream).
        categories: category name per item (decides bottles vs boxes for groceries).
        slots: category index per item (decides colours and stripes).
        domains: 0 = restaurant, 1 = grocery, per item.
        seed: random seed.
        size: width and height in pixels.
    """
    directory.mkdir(parents=True, exist_ok=True)
    bottled = np.array([c in _BOTTLED for c in categories], dtype=bool)
    pixels = render(np.asarray(slots, dtype=np.int64), np.asarray(domains), bottled, seed, size)
    for start in range(0, len(pixels), _CHUNK):
        batch = encode_png(pixels[start:start + _CHUNK])
        for item_id, data in zip(item_ids[start:start + _CHUNK], batch, strict=True):
            _write_new(directory / f"{item_id}.png", data)
    return len(pixels)
