"""The course's data set: the one the notebooks use and the graders train and judge on.

It is named once, in ``data/course.json`` (``{"dataset": "sprites"}``); the value is a data set
name (``sprites``, ``digits``, ``pokemon``) or a path, relative to ``data/`` unless absolute,
to a ``.npz`` written by the kit or a folder holding the course's two text files. The
environment variable ``COURSEKIT_DATASET`` overrides it (one run, one test), and
``COURSEKIT_COURSE_FILE`` names another course file to read instead of ``data/course.json`` (the
kit's tests use it to run as a course that switched data sets, without touching the real file).

A TA switches data sets with ``coursekit reference --dataset NAME``: it rebuilds the evaluator
and every threshold on the new data and, only when that succeeded, writes ``course.json``.
Every ``expected.json`` records the ``fingerprint`` of the data it was measured on, so graders
refuse to compare against thresholds of another data set (``check_measured_on``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .. import paths
from .dataset import PaletteDataset
from .errors import DataError
from .registry import DATASETS, load_dataset

DEFAULT = "sprites"


def course_file() -> Path:
    """``data/course.json``, or the file ``COURSEKIT_COURSE_FILE`` names."""
    env = os.environ.get("COURSEKIT_COURSE_FILE")
    return Path(env).expanduser().resolve() if env else paths.data_dir() / "course.json"


def course_dataset_origin() -> str:
    """Who named today's course data set, for messages: the environment variable, or the course file."""
    env = os.environ.get("COURSEKIT_DATASET")
    return f"set by the environment variable COURSEKIT_DATASET={env}" if env else f"named in {course_file()}"


def course_dataset_spec() -> str:
    """The course data set as written in ``data/course.json`` (or ``COURSEKIT_DATASET``)."""
    env = os.environ.get("COURSEKIT_DATASET")
    if env:
        return env
    path = course_file()
    if not path.is_file():
        return DEFAULT
    try:
        spec = json.loads(path.read_text())["dataset"]
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f'{path}: should hold {{"dataset": "<name or path>"}} ({e})') from None
    if not isinstance(spec, str) or not spec:
        raise DataError(f'{path}: "dataset" should be a data set name or a path, got {spec!r}')
    return spec


def resolve_spec(spec: str) -> str:
    """A name stays a name; a relative path is taken relative to ``data/`` (never the working directory)."""
    if spec in DATASETS:
        return spec
    p = Path(spec).expanduser()
    return str(p if p.is_absolute() else paths.data_dir() / p)


@functools.lru_cache(maxsize=4)
def _load(resolved: str, data_dir: str) -> PaletteDataset:  # data_dir: a name means another file in another kit
    return load_dataset(resolved)


def course_dataset(spec: str | None = None) -> PaletteDataset:
    """The course data set (cached per process); ``spec`` overrides ``data/course.json``."""
    return _load(resolve_spec(spec or course_dataset_spec()), str(paths.data_dir()))


def set_course_dataset(spec: str) -> Path:
    """Write ``data/course.json``; the data set must load first."""
    course_dataset(spec)
    path = course_file()
    path.write_text(json.dumps({"dataset": spec}, indent=1) + "\n")
    return path


def dataset_fingerprint(ds: PaletteDataset) -> str:
    """A short hash of the images, palette and train/test split: equal fingerprints, equal data."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(ds.indices).tobytes())
    h.update(np.ascontiguousarray(ds.palette).tobytes())
    h.update(f"{ds.indices.shape}|{ds.split_seed}|{ds.test_fraction}".encode())
    return h.hexdigest()[:16]


def describe_for_expected(ds: PaletteDataset, spec: str) -> dict:
    """What an ``expected.json`` records about the data it was measured on."""
    return {"spec": spec, "name": ds.name, "fingerprint": dataset_fingerprint(ds), "images": len(ds),
            "image_shape": list(ds.image_shape), "colours": ds.num_colors}


class DatasetMismatch(DataError):
    """Reference outputs measured on other data than the course data set: a TA's problem, not a student's."""


def check_measured_on(expected: dict, where: str | Path, ds: PaletteDataset | None = None) -> None:
    """Raise ``DatasetMismatch`` unless ``expected`` (an expected.json's content) was measured on the course data."""
    ds = ds or course_dataset()
    rec = expected.get("dataset")
    if rec is None:
        raise DatasetMismatch(f"{where}: records no data set; rebuild it with `coursekit reference`")
    if rec.get("fingerprint") != dataset_fingerprint(ds):
        spec = course_dataset_spec()
        if os.environ.get("COURSEKIT_DATASET"):
            todo = (f"Unset COURSEKIT_DATASET to use the data set {course_file()} names, or rebuild the thresholds on "
                    f"{spec!r} with `coursekit reference --dataset {spec}`")
        else:
            todo = f"Rebuild them with `coursekit reference --dataset {spec}`"
        raise DatasetMismatch(
            f"{where} was measured on {rec.get('name')!r} ({rec.get('images')} images), but the course data set is now "
            f"{ds.name!r} ({len(ds)} images, {course_dataset_origin()}): its thresholds do not apply. {todo}")
