"""The students' copy of the course data set: the training images only.

The graders measure held-out bits per pixel, the held-out negative ELBO and copies of held-out
images on the course data set's test split. A student who had those images could return
them as "samples" or build a model that looks them up, so they never reach a student: the
release ships ``public_copy(ds)`` (the training images, whose own test split is carved from
them for the notebooks' held-out figures), and the grading sandbox sees the same copy at the
kit's ``data/`` path (``sandbox_data_dir``). The held-out images travel to the student's code
only as inputs of a grading call, in a worker that cannot keep them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .. import paths
from .dataset import PaletteDataset


def shareable_source(source: str) -> str:
    """A data set's provenance as students may see it: no path of the staff's machine. A local path (or ``file://``
    URL) becomes its path inside the kit (``data/downloads/pokemon``) or, outside it, its last folder's name; web
    URLs and descriptions stay as they are."""
    from urllib.parse import unquote, urlparse

    if not source:
        return source
    local = unquote(urlparse(source).path) if source.startswith("file:") else source
    path = Path(local).expanduser()
    if not path.is_absolute():
        return source
    try:
        return path.resolve().relative_to(paths.kit_root()).as_posix()
    except ValueError:
        return f"a copy of the files in a folder named {path.name!r}" if path.name else "a local copy of the files"


def public_copy(ds: PaletteDataset) -> PaletteDataset:
    """The training images of ``ds`` (labels kept), marked with the fingerprint of the data they came from."""
    from .course import dataset_fingerprint

    if ds.heldout_of:
        return ds  # already the students' copy
    pos = ds.split_indices("train")
    return PaletteDataset(name=ds.name, indices=ds.indices[pos], palette=ds.palette,
                          labels=None if ds.labels is None else ds.labels[pos], label_names=ds.label_names,
                          split_seed=ds.split_seed, test_fraction=ds.test_fraction, source=shareable_source(ds.source),
                          heldout_of=dataset_fingerprint(ds))


def write_public_data(dest: str | os.PathLike, ds: PaletteDataset | None = None) -> Path:
    """Write ``dest/<name>.npz`` (the public copy), ``dest/course.json`` naming it and ``dest/evaluators/``
    (the evaluator weights, which hold no thresholds); returns ``dest``."""
    from ..metrics.evaluator import reference_evaluator_path
    from .course import course_dataset
    from .files import save_npz

    dest = Path(dest)
    ds = ds or course_dataset()
    dest.mkdir(parents=True, exist_ok=True)
    save_npz(public_copy(ds), dest / f"{ds.name}.npz", force=True)
    from .registry import EMBEDDED_NPZ

    spec = ds.name if ds.name in EMBEDDED_NPZ else f"{ds.name}.npz"
    (dest / "course.json").write_text(json.dumps({"dataset": spec}, indent=1) + "\n")
    evaluator = reference_evaluator_path(ds.name)
    if evaluator.is_file():
        (dest / "evaluators").mkdir(exist_ok=True)
        shutil.copy2(evaluator, dest / "evaluators" / evaluator.name)
    return dest


def sandbox_data_dir(ds: PaletteDataset | None = None) -> Path:
    """A folder to bind read-only at the kit's ``data/`` inside the grading sandbox, made once per data set
    (and evaluator) and shared by every worker; world-readable, since workers run as another user."""
    import hashlib

    from ..metrics.evaluator import reference_evaluator_path
    from .course import course_dataset, dataset_fingerprint

    ds = ds or course_dataset()
    h = hashlib.sha256(dataset_fingerprint(ds).encode())
    evaluator = reference_evaluator_path(ds.name)
    if evaluator.is_file():
        h.update(evaluator.read_bytes())
    folder = Path(tempfile.gettempdir()) / f"coursekit-public-data-{h.hexdigest()[:16]}"
    if not (folder / "course.json").is_file():
        staging = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
        write_public_data(staging, ds)
        for p in [staging, *staging.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        try:
            os.replace(staging, folder)  # atomic: parallel graders never see half a folder
        except OSError:  # another grader made it first
            shutil.rmtree(staging, ignore_errors=True)
    return folder
