"""``load_dataset(name)``: the kit's data sets by name, and files by path.

- ``sprites``: the embedded default, 20x20 emoji icons (``data/sprites.npz``).
- ``digits``: scikit-learn's bundled 8x8 digits, 17 grey levels, labels 0-9 (tiny, for tests).
- ``pokemon``: the course's own files, after ``coursekit data fetch pokemon`` (or in ``root``).
- a path: a ``.npz`` written by the kit, or a folder holding the course's two text files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .. import paths
from .dataset import PaletteDataset
from .errors import DataError
from .files import load_npz, read_course_files

COURSE_FILES = ("pixel_color.txt", "colormap.txt")
EMBEDDED_NPZ = ("sprites",)  # names whose loader reads data/<name>.npz


def sprites(**split) -> PaletteDataset:
    path = paths.data_dir() / "sprites.npz"
    if not path.is_file():
        raise DataError(f"{path}: the embedded sprites file is missing; {missing_data_advice()}")
    return load_npz(path, name="sprites", **split)


def missing_data_advice() -> str:
    """What to do about a missing data file, for the person who meets it: a student with a release, or the staff."""
    if paths.is_student_release():
        return ("this copy of coursekit is incomplete: reinstall it from the course's release folder or zip "
                "(`pip install <release folder>`), or ask the course staff for a new copy")
    if (paths.kit_root() / "data" / "build_sprites.py").is_file():
        return "rebuild it with data/build_sprites.py (see data/README.md), or restore it with `git checkout data/sprites.npz`"
    return ("coursekit was installed without its data: install the course's student release (`pip install <release folder>`) "
            "or work in the course kit's checkout (`pip install -e .`)")


def digits(**split) -> PaletteDataset:
    """scikit-learn's 1,797 digits: 8x8 images whose values 0..16 are grey levels (16 = black ink)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    indices = d.images.astype(np.uint8)  # (N, 8, 8) in 0..16
    grey = np.rint(255 * (1 - np.arange(17) / 16)).astype(np.uint8)  # 0 -> white, 16 -> black
    palette = np.stack([grey] * 3, axis=1)  # (17, 3)
    return PaletteDataset(
        name="digits",
        indices=indices,
        palette=palette,
        labels=d.target.astype(np.int64),
        label_names=tuple(str(i) for i in range(10)),
        source="scikit-learn load_digits (UCI ML hand-written digits)",
        **split,
    )


def pokemon(root: str | os.PathLike | None = None, name: str = "pokemon", **split) -> PaletteDataset:
    """The course's Pokémon sprites from ``root`` (default: where ``coursekit data fetch`` stores them)."""
    folder = Path(root) if root is not None else paths.user_data_dir() / "pokemon"
    missing = [f for f in COURSE_FILES if not (folder / f).is_file()]
    if missing:
        where = ("load_dataset('pokemon', root=FOLDER) in Python, `--root FOLDER` for `coursekit data info/show/export`, "
                 "or the folder itself as the data set: `coursekit reference --dataset FOLDER`")
        raise DataError(
            f"{folder}: missing {', '.join(missing)}; run `coursekit data fetch pokemon` (offline: "
            f"`--url file:///FOLDER/` checks and stores a copy you have), copy {' and '.join(COURSE_FILES)} into "
            f"{paths.user_data_dir() / 'pokemon'}/, or give the folder holding them ({where})"
        )
    return read_course_files(folder / COURSE_FILES[0], folder / COURSE_FILES[1], name=name, source=_fetched_from(folder), **split)


def _fetched_from(folder: Path) -> str | None:
    """The URL ``coursekit data fetch`` recorded in ``folder/SOURCE.json`` when the files are still the ones it
    stored (None: no record, or the files were changed or put there by hand since)."""
    import hashlib

    try:
        record = json.loads((folder / "SOURCE.json").read_text())
        url, sums = record["url"], record["sha256"]
        same = all(hashlib.sha256((folder / f).read_bytes()).hexdigest() == sums[f] for f in COURSE_FILES)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return url if same and isinstance(url, str) and url else None


DATASETS = {"sprites": sprites, "digits": digits, "pokemon": pokemon}


def load_dataset(name: str | os.PathLike = "sprites", root: str | os.PathLike | None = None, **split) -> PaletteDataset:
    """A data set by name (``sprites``, ``digits``, ``pokemon``) or by path (.npz file or course folder).

    ``split`` may give ``split_seed`` and ``test_fraction``; ``root`` is where ``pokemon``'s files are.
    """
    if isinstance(name, str) and name in DATASETS:
        if root is not None:
            if name != "pokemon":
                raise ValueError(f"root= only applies to 'pokemon', not {name!r}")
            return pokemon(root, **split)
        return DATASETS[name](**split)
    path = Path(name)
    if path.is_dir():
        return pokemon(path, name=path.name, **split)
    if path.suffix == ".npz" or path.is_file():
        return load_npz(path, **split)
    raise DataError(f"{name}: not a data set name ({', '.join(DATASETS)}) nor an existing .npz file or folder")
