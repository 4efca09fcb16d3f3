"""Turning ordinary images into a palette data set: composite on white, downsample, quantise.

This is how the embedded ``sprites`` set was made (``data/build_sprites.py``) and what
``coursekit data build IMAGES_DIR`` does for a TA's own folder of images. The palette is
found by k-means over the pixels of all images (seeded, so the same images give the same
palette), as the course did for its 167 Pokémon colours.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .dataset import PaletteDataset
from .errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class BuildConfig:
    size: int = 20  # output images are size x size pixels
    colors: int = 167  # palette size K (the course used 167)
    seed: int = 0  # seeds k-means, so the same images give the same palette
    background: tuple[int, int, int] = (255, 255, 255)  # transparent pixels become this colour
    max_fit_pixels: int = 200_000  # k-means is fitted on at most this many sampled pixels


def to_rgb_on_background(img, background=(255, 255, 255)):
    """A PIL image of any mode -> RGB, transparent parts composited onto ``background``."""
    from PIL import Image

    img = img.convert("RGBA")
    bg = Image.new("RGBA", img.size, tuple(background) + (255,))
    return Image.alpha_composite(bg, img).convert("RGB")


def square_and_resize(img, size: int, background=(255, 255, 255)):
    """Pad an RGB image to a square (centred, on ``background``) and downsample to size x size."""
    from PIL import Image

    w, h = img.size
    side = max(w, h)
    if w != h:
        canvas = Image.new("RGB", (side, side), tuple(background))
        canvas.paste(img, ((side - w) // 2, (side - h) // 2))
        img = canvas
    # Box filtering averages every source pixel, which keeps thin strokes visible at 20x20.
    return img.resize((size, size), Image.Resampling.BOX)


def fit_palette(pixels: np.ndarray, colors: int, seed: int = 0, max_fit_pixels: int = 200_000) -> np.ndarray:
    """k-means colours of ``pixels`` (M, 3) uint8 -> palette (K, 3) uint8, sorted by brightness.

    With fewer distinct colours than ``colors`` the palette is just those colours.
    """
    from sklearn.cluster import KMeans

    distinct = np.unique(pixels.reshape(-1, 3), axis=0)
    if len(distinct) <= colors:
        palette = distinct
    else:
        rng = np.random.default_rng(seed)
        sample = pixels.reshape(-1, 3)
        if len(sample) > max_fit_pixels:
            sample = sample[rng.choice(len(sample), max_fit_pixels, replace=False)]
        km = KMeans(n_clusters=colors, n_init=1, random_state=seed, max_iter=100).fit(sample.astype(np.float32))
        palette = np.clip(np.rint(km.cluster_centers_), 0, 255).astype(np.uint8)
        palette = np.unique(palette, axis=0)  # two centres may round to one colour
    order = np.lexsort((palette[:, 2], palette[:, 1], palette[:, 0], palette.astype(np.int32).sum(1)))
    return palette[order]


def quantize(images: np.ndarray, palette: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """RGB images (N, H, W, 3) uint8 -> indices (N, H, W) uint8 of the nearest palette colour."""
    flat = images.reshape(-1, 3).astype(np.int32)
    pal = palette.astype(np.int32)
    out = np.empty(len(flat), dtype=np.uint8)
    for s in range(0, len(flat), chunk):
        d = ((flat[s : s + chunk, None, :] - pal[None, :, :]) ** 2).sum(-1)  # (chunk, K)
        out[s : s + chunk] = d.argmin(1)
    return out.reshape(images.shape[:-1])


def images_to_dataset(
    images: np.ndarray,
    name: str,
    config: BuildConfig,
    labels: np.ndarray | None = None,
    label_names: Sequence[str] | None = None,
    source: str = "",
) -> PaletteDataset:
    """RGB images (N, size, size, 3) uint8 -> a palette data set with a k-means palette."""
    palette = fit_palette(images, config.colors, config.seed, config.max_fit_pixels)
    indices = quantize(images, palette)
    return PaletteDataset(
        name=name,
        indices=indices,
        palette=palette,
        labels=labels,
        label_names=None if label_names is None else tuple(label_names),
        source=source,
    )


def find_images(folder: Path) -> tuple[list[Path], list[str] | None]:
    """Image files under ``folder``, and their class names when they sit in subfolders.

    Like torchvision's ImageFolder: ``folder/cats/1.png`` has class ``cats``. Images loose in
    ``folder`` itself mean no labels (mixing both is an error).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: holds no images (looked for {', '.join(IMAGE_SUFFIXES)})")
    depth = {len(p.relative_to(folder).parts) for p in files}
    if depth == {1}:
        return files, None
    if depth == {2}:
        return files, [p.parent.name for p in files]
    raise DataError(f"{folder}: put images either all directly in the folder (no labels) or all one level down in class folders")


def build_from_folder(
    folder: str | os.PathLike,
    config: BuildConfig = BuildConfig(),
    name: str | None = None,
    progress: Callable[[Iterable], Iterable] = lambda it: it,
) -> PaletteDataset:
    """Every image in ``folder`` -> one palette data set (labels from class subfolders)."""
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    files, classes = find_images(folder)
    rgb = []
    for p in progress(files):
        try:
            with Image.open(p) as im:
                im.load()
                img = to_rgb_on_background(im, config.background)
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"{p}: cannot be read as an image ({e})") from None
        rgb.append(np.asarray(square_and_resize(img, config.size, config.background), dtype=np.uint8))
    labels = names = None
    if classes is not None:
        names = sorted(set(classes))
        labels = np.array([names.index(c) for c in classes], dtype=np.int64)
    return images_to_dataset(np.stack(rgb), name or folder.name, config, labels, names, source=str(folder))
