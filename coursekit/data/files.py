"""Reading and writing palette data sets: the kit's ``.npz`` file and the course's text files.

The kit's file is a numpy ``.npz`` read with ``allow_pickle=False`` (nothing in it can run
code) holding ``indices`` (N, H, W) uint8, ``palette`` (K, 3) uint8, optionally ``labels``
(N,) int64 and ``label_names`` (C,) str, and ``meta``, a JSON string (name, source, licence).

The course's format (the Pokémon set) is two text files:
``pixel_color.txt``, one image a line, H*W whitespace-separated integers in 0..K-1,
row-major; and ``colormap.txt``, one colour a line, ``R G B`` integers in 0..255.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from .dataset import PaletteDataset
from .errors import DataError

NPZ_KEYS = ("indices", "palette", "labels", "label_names", "meta")


# --- the kit's .npz file ---------------------------------------------------------------
def save_npz(ds: PaletteDataset, path: str | os.PathLike, meta: dict | None = None, force: bool = False) -> Path:
    """Write ``ds`` to ``path`` (compressed). Refuses to overwrite an existing file unless ``force``."""
    path = Path(path)
    check_writable(path, force)
    arrays = {"indices": ds.indices, "palette": ds.palette}
    if ds.labels is not None:
        arrays["labels"] = ds.labels.astype(np.int64)
        arrays["label_names"] = np.array(ds.label_names, dtype=str)
    info = {"name": ds.name, "source": ds.source, **({"heldout_of": ds.heldout_of} if ds.heldout_of else {}), **(meta or {})}
    arrays["meta"] = np.array(json.dumps(info, sort_keys=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    return path


def load_npz(path: str | os.PathLike, name: str | None = None, **split) -> PaletteDataset:
    """Read a data set written by ``save_npz``; ``split`` may set split_seed / test_fraction."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as e:  # zip errors are OSError/ValueError subclasses
        raise DataError(f"{path}: not a readable .npz data set ({e})") from None
    for key in ("indices", "palette"):
        if key not in arrays:
            raise DataError(f"{path}: has no '{key}' array (found: {', '.join(sorted(arrays)) or 'nothing'})")
    unknown = set(arrays) - set(NPZ_KEYS)
    if unknown:
        raise DataError(f"{path}: unexpected arrays {sorted(unknown)}; a data set holds {list(NPZ_KEYS)}")
    meta = json.loads(str(arrays["meta"])) if "meta" in arrays else {}
    labels = arrays.get("labels")
    names = arrays.get("label_names")
    if (labels is None) != (names is None):
        raise DataError(f"{path}: 'labels' and 'label_names' must come together")
    try:
        return PaletteDataset(
            name=name or meta.get("name") or path.stem,
            indices=arrays["indices"],
            palette=arrays["palette"],
            labels=None if labels is None else labels.astype(np.int64),
            label_names=None if names is None else tuple(str(n) for n in names),
            source=meta.get("source") or str(path),
            heldout_of=str(meta.get("heldout_of", "")),
            **split,
        )
    except DataError as e:
        raise DataError(f"{path}: {e}") from None


# --- the course's text files -----------------------------------------------------------
def _ints(line: str, path: Path, lineno: int) -> list[int]:
    out = []
    for tok in line.replace(",", " ").split():
        try:
            out.append(int(tok))
        except ValueError:
            raise DataError(f"{path}, line {lineno}: {tok!r} is not an integer") from None
    return out


def read_colormap(path: str | os.PathLike) -> np.ndarray:
    """``colormap.txt`` -> palette (K, 3) uint8. Every line must be three integers 0..255."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    rows = []
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        vals = _ints(line, path, lineno)
        if len(vals) != 3:
            raise DataError(f"{path}, line {lineno}: a colour is 'R G B' (3 integers), found {len(vals)} values")
        bad = [v for v in vals if not 0 <= v <= 255]
        if bad:
            raise DataError(f"{path}, line {lineno}: colour values must lie in 0..255, found {bad[0]}")
        rows.append(vals)
    if not rows:
        raise DataError(f"{path}: holds no colours")
    if len(rows) > 256:
        raise DataError(f"{path}: {len(rows)} colours; the kit stores pixels as uint8, so at most 256")
    return np.array(rows, dtype=np.uint8)


def read_pixels(path: str | os.PathLike, num_colors: int, height: int | None = None, width: int | None = None) -> np.ndarray:
    """``pixel_color.txt`` -> indices (N, H, W) uint8.

    Every line must hold H*W integers in 0..num_colors-1. H and W default to the square
    root of the first line's length (20x20 for the course's 400 values a line).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    images, expected = [], None
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        vals = _ints(line, path, lineno)
        if expected is None:
            if height is None or width is None:
                side = math.isqrt(len(vals))
                if side * side != len(vals):
                    raise DataError(f"{path}, line {lineno}: {len(vals)} values is not a square image; give height and width")
                height = width = side
            expected = height * width
        if len(vals) != expected:
            what = "short" if len(vals) < expected else "long"
            raise DataError(f"{path}, line {lineno}: line too {what}: {len(vals)} values, expected {expected} ({height}x{width})")
        for col, v in enumerate(vals):
            if not 0 <= v < num_colors:
                raise DataError(
                    f"{path}, line {lineno}, value {col + 1}: colour index {v} is past the palette "
                    f"(valid: 0..{num_colors - 1})"
                )
        images.append(vals)
    if not images:
        raise DataError(f"{path}: holds no images")
    return np.array(images, dtype=np.uint8).reshape(len(images), height, width)


def read_course_files(pixel_path, colormap_path, name: str = "pokemon", source: str | None = None, **split) -> PaletteDataset:
    """The course's pair of text files -> a data set (no labels); ``source`` (default: their folder) is its provenance."""
    palette = read_colormap(colormap_path)
    indices = read_pixels(pixel_path, len(palette))
    return PaletteDataset(name=name, indices=indices, palette=palette, source=source or str(Path(pixel_path).parent), **split)


def write_course_files(ds: PaletteDataset, folder: str | os.PathLike, force: bool = False) -> tuple[Path, Path]:
    """Write ``ds`` as ``pixel_color.txt`` and ``colormap.txt`` in ``folder``."""
    folder = Path(folder)
    pix, cmap = folder / "pixel_color.txt", folder / "colormap.txt"
    for p in (pix, cmap):
        check_writable(p, force)
    folder.mkdir(parents=True, exist_ok=True)
    flat = ds.indices.reshape(len(ds), -1)
    with atomic_path(pix) as tmp:
        Path(tmp).write_text("".join(" ".join(map(str, row)) + "\n" for row in flat.tolist()))
    with atomic_path(cmap) as tmp:
        Path(tmp).write_text("".join(f"{r} {g} {b}\n" for r, g, b in ds.palette.tolist()))
    return pix, cmap


# --- small helpers shared by the writers -----------------------------------------------
def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a text file ({e.reason} at byte {e.start})") from None


def check_writable(path: Path, force: bool) -> None:
    """Refuse to overwrite a file the user has, unless asked to (``--force``)."""
    if path.exists() and not force:
        raise FileExistsError(f"{path} already exists; pass --force to overwrite it")


class atomic_path:
    """Context manager yielding a temporary path beside ``path``, moved onto it on success."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def __enter__(self) -> str:
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            # mkstemp makes the file private (0600); give it the mode a plain open() would
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)
            os.replace(self.tmp, self.path)
        elif os.path.exists(self.tmp):
            os.unlink(self.tmp)
