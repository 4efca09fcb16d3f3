"""The student release: generated from the solution notebooks, proven free of solutions.

Each assignment is written once, as ``solutions/<name>/<name>.ipynb`` with its solutions
marked in nbgrader's format. From it:

- ``student_notebook`` makes the student version with nbgrader's own preprocessors
  (solutions replaced by ``raise NotImplementedError()``, hidden tests and outputs cleared,
  checksums computed);
- ``update_assignments`` writes those into ``assignments/`` (the committed student
  versions; ``find_drift`` tells when they no longer match their source);
- ``build_release`` makes the folder students receive: the student notebooks, the students'
  README and the ``coursekit`` package with the data it needs inside it (so that a plain
  ``pip install`` works), never ``solutions/``, ``autograder/`` or ``tests/``; it replaces only
  the files an earlier release wrote (``MANIFEST``);
- ``audit_release`` proves it: no solution marker, no line of any solution region, no
  hidden test and no hidden folder anywhere in it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import paths
from .data.errors import DataError
from .notebook import read_notebook

# Spelt from parts so that this file, which ships in the release, passes its own audit.
BEGIN_MARKERS = tuple("### BEGIN " + what for what in ("SOLUTION", "HIDDEN TESTS"))
END_MARKERS = tuple("### END " + what for what in ("SOLUTION", "HIDDEN TESTS"))
SOLUTION_MARKERS = (*BEGIN_MARKERS, *END_MARKERS, "=== BEGIN " + "MARK SCHEME ===")
# The release is the students' kit, not the instructor's: the package (with its data inside, BUNDLED_DATA), the files
# pip needs to install it, the students' own README (STUDENT_README) and the notebooks; no Makefile, no tools.
PUBLIC_PATHS = ("coursekit", "pyproject.toml", "environment.yml")
STUDENT_README = "student/README.md"  # the kit's copy of the release's README.md
BUNDLED_DATA = "coursekit/data/bundled"  # paths.bundled_data_dir() in the release
MANIFEST = ".coursekit-release.json"  # the files a release wrote, with their hashes: the only ones it replaces
HIDDEN_DIRS = ("solutions", "autograder", "tests")
# build_sprites.py renders every sprite, the held-out ones too: it is the TA's, not the students'
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "downloads", ".ipynb_checkpoints", "*.egg-info", "build_sprites.py", "bundled")


def list_assignments(source: Path | None = None) -> list[str]:
    """Names of the assignments: folders of ``solutions/`` holding ``<name>.ipynb``."""
    source = source or paths.solutions_dir()
    if not source.is_dir():
        return []
    return sorted(p.name for p in source.iterdir() if (p / f"{p.name}.ipynb").is_file())


def _resolve(names: list[str] | None) -> list[str]:
    known = list_assignments()
    if not names:
        return known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown assignment(s) {unknown}; the kit has {known or 'none'} under {paths.solutions_dir()}")
    return list(names)


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student version of a solution notebook (a new object; ``nb`` is left alone)."""
    from nbgrader.preprocessors import (
        ClearHiddenTests,
        ClearMarkScheme,
        ClearOutput,
        ClearSolutions,
        ComputeChecksums,
        LockCells,
    )

    nb = nbformat.reads(nbformat.writes(nb), as_version=4)  # a deep copy
    resources: dict = {}
    for pre in (ClearSolutions(), ClearHiddenTests(), ClearMarkScheme(), ClearOutput(), LockCells(), ComputeChecksums()):
        nb, resources = pre.preprocess(nb, resources)
    nb.metadata.pop("widgets", None)  # the reference run's widget state (progress bars): no output, so no widget either
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # and no timestamps of the reference run
    return nb


def solution_lines(nb: nbformat.NotebookNode, min_len: int = 20) -> set[str]:
    """The lines inside the notebook's solution and hidden-test regions that are long enough to be telling."""
    found: set[str] = set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            s = line.strip()
            if s.startswith(BEGIN_MARKERS):
                inside = True
            elif s.startswith(END_MARKERS):
                inside = False
            elif inside and len(s) >= min_len and not s.startswith("#"):
                found.add(s)
    return found


def _leaks(text: str, secrets: set[str], long_line: int = 60) -> list[str]:
    """The secret lines in ``text`` that give something away: any long one, or two or more shorter ones
    (one short generic line, such as ``optimizer.zero_grad()``, may appear anywhere)."""
    hits = [s for s in secrets if s in text]
    return hits if any(len(h) >= long_line for h in hits) or len(hits) >= 2 else []


def _generated(name: str) -> str:
    src = paths.solutions_dir() / name / f"{name}.ipynb"
    return nbformat.writes(student_notebook(read_notebook(src))) + "\n"


def find_drift(names: list[str] | None = None) -> list[str]:
    """Assignments whose committed student notebook differs from the one generated now."""
    drift = []
    for name in _resolve(names):
        dest = paths.assignments_dir() / name / f"{name}.ipynb"
        if not dest.is_file() or dest.read_text(encoding="utf-8") != _generated(name):
            drift.append(name)
    return drift


def update_assignments(names: list[str] | None = None, force: bool = False, log=print) -> list[Path]:
    """(Re)generate ``assignments/<name>/<name>.ipynb``; a differing file is replaced only with ``force``."""
    written = []
    for name in _resolve(names):
        dest = paths.assignments_dir() / name / f"{name}.ipynb"
        text = _generated(name)
        if dest.is_file() and dest.read_text(encoding="utf-8") == text:
            log(f"{dest}: up to date")
            continue
        if dest.is_file() and not force:
            raise FileExistsError(f"{dest} differs from the notebook generated from solutions/{name}; pass --force to replace it")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
        log(f"{dest}: written")
        written.append(dest)
    return written


@dataclass
class AuditProblem:
    path: Path
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


def audit_release(folder: str | Path, names: list[str] | None = None) -> list[AuditProblem]:
    """Everything in ``folder`` that would give away a solution or a hidden test."""
    folder = Path(folder)
    secrets: set[str] = set()
    public: set[str] = set()  # lines the student version shows anyway, outside any solution region
    for name in _resolve(names):
        source = read_notebook(paths.solutions_dir() / name / f"{name}.ipynb")
        secrets |= solution_lines(source)
        public |= {line.strip() for cell in student_notebook(source).cells for line in cell.source.splitlines()}
    secrets -= public
    problems = []
    for hidden in HIDDEN_DIRS:
        if (folder / hidden).exists():
            problems.append(AuditProblem(folder / hidden, "hidden folder in the release"))
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files (data, images) carry no code
        if p.suffix == ".ipynb":  # search the cells as a person reads them, not their JSON escaping
            try:
                text = "\n".join(c.source for c in nbformat.reads(text, as_version=4).cells)
            except Exception:  # noqa: BLE001 - not a notebook after all: keep its raw text
                pass
        for marker in SOLUTION_MARKERS:
            if marker in text:
                problems.append(AuditProblem(p, f"contains the marker {marker!r}"))
        leaks = _leaks(text, secrets)
        if leaks:
            problems.append(AuditProblem(p, f"contains {len(leaks)} solution line(s), e.g. {leaks[0][:60]!r}"))
    return problems


def _release_evaluators_and_data(out: Path, log) -> None:
    """The data the students' notebooks and public checks need, inside the package (``coursekit/data/bundled/``,
    ``paths.bundled_data_dir``), so that it is found however the release is installed (editable, or into
    site-packages as on Colab): the evaluator weights (no thresholds in them) in ``evaluators/``, the course data set
    as ``<name>.npz``, the students' copy: its training images only (``coursekit.data.public``), so that the graders'
    held-out images can be neither returned as samples nor looked up by a model; ``course.json`` naming it; and the
    data's provenance and licence (``README.md``)."""
    import json

    from .data.course import course_dataset, course_dataset_spec
    from .data.public import write_public_data

    bundled = out / BUNDLED_DATA
    bundled.mkdir(parents=True, exist_ok=True)
    evaluators = sorted((paths.autograder_dir() / "reference").glob("evaluator_*.pt"))
    for src in evaluators:
        (bundled / "evaluators").mkdir(exist_ok=True)
        shutil.copy2(src, bundled / "evaluators" / src.name)
    log(f"released {len(evaluators)} evaluator network(s) in {BUNDLED_DATA}/evaluators")
    if (paths.kit_root() / "data" / "README.md").is_file():
        shutil.copy2(paths.kit_root() / "data" / "README.md", bundled / "README.md")
    spec = course_dataset_spec()
    if spec == "digits":
        (bundled / "course.json").write_text(json.dumps({"dataset": "digits"}, indent=1) + "\n")
        log("the course data set is scikit-learn's digits, which students can load with its held-out split anyway")
        return
    try:
        ds = course_dataset()
    except DataError as e:  # a kit without data (the tests' toy kit): nothing to release
        log(f"no course data set released: {e}")
        return
    write_public_data(bundled, ds)
    log(f"released the course data set {ds.name!r} as {BUNDLED_DATA}/{ds.name}.npz: {len(ds.split_indices('train'))} "
        f"training images, without the {len(ds.split_indices('test'))} held-out images the graders use")


def heldout_images_in(folder: Path) -> list[AuditProblem]:
    """Data files in ``folder`` holding any of the course data set's held-out images (that is not also a training image)."""
    import numpy as np

    from .data.course import course_dataset
    from .data.files import load_npz

    try:
        ds = course_dataset()
    except DataError:
        return []  # no course data set: no held-out images to leak
    train = {img.tobytes() for img in ds.indices[ds.split_indices("train")]}
    heldout = {img.tobytes() for img in ds.indices[ds.split_indices("test")]} - train
    problems = []
    for p in sorted(folder.rglob("*.npz")):
        try:
            images = load_npz(p).indices
        except Exception:  # noqa: BLE001 - not a data set: look at its raw arrays
            with np.load(p, allow_pickle=False) as z:
                images = np.concatenate([z[k].reshape(-1, *ds.image_shape) for k in z.files
                                         if z[k].dtype == np.uint8 and z[k].size % (ds.image_shape[0] * ds.image_shape[1]) == 0] or [np.zeros((0, *ds.image_shape), np.uint8)])
        if images.shape[1:] == ds.image_shape:
            found = sum(img.tobytes() in heldout for img in images)
            if found:
                problems.append(AuditProblem(p, f"holds {found} of the graders' held-out images"))
    return problems


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(folder: str | Path) -> dict[str, str] | None:
    """The files an earlier ``build_release`` wrote in ``folder`` ({relative path: sha256}), or None when it wrote none."""
    import json

    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError) as e:
        raise FileExistsError(f"{path}: the manifest of an earlier release is unreadable ({e}); move the folder away "
                              "or choose another --out folder") from None
    return {str(k): str(v) for k, v in files.items()}


def _write_release(dest: Path, names: list[str], log) -> None:
    """Every file of the release, written into the empty folder ``dest``."""
    root = paths.kit_root()
    for rel in PUBLIC_PATHS:
        src = root / rel
        if src.is_dir():
            shutil.copytree(src, dest / rel, ignore=_IGNORE)
        elif src.is_file():
            shutil.copy2(src, dest / rel)
    if (root / STUDENT_README).is_file():
        shutil.copy2(root / STUDENT_README, dest / "README.md")
    env = dest / "environment.yml"
    if env.is_file():  # its set-up line is the checkout's; the students install the release itself
        text = env.read_text(encoding="utf-8").replace("`pip install -e .` in the checkout", "`pip install .` in this folder")
        text = text.replace("\n# (tests/test_packaging.py fails when they disagree).", "")  # the kit's tests are not released
        env.write_text(text, encoding="utf-8")
    _release_evaluators_and_data(dest, log)
    for name in names:
        nb_path = dest / "assignments" / name / f"{name}.ipynb"
        nb_path.parent.mkdir(parents=True, exist_ok=True)
        nb_path.write_text(_generated(name), encoding="utf-8")
        log(f"released assignments/{name}/{name}.ipynb")


def _listing(paths_: list[str], limit: int = 5) -> str:
    shown = ", ".join(paths_[:limit])
    return shown + (f" and {len(paths_) - limit} more" if len(paths_) > limit else "")


def build_release(out: str | Path, names: list[str] | None = None, force: bool = False, log=print) -> Path:
    """Write the folder students receive to ``out`` and audit it; returns ``out``.

    The release owns only the files it wrote, listed with their hashes in ``out/.coursekit-release.json``. An
    existing ``out`` that holds anything is written to only with ``force``; then the files of the earlier release
    are replaced and everything else (a ``.git`` folder, the instructor's own files) is left alone. Nothing a user
    wrote is lost: a file of the earlier release changed since, or a file of the user's where the release writes one,
    stops the build before anything in ``out`` is touched, with the list of those files."""
    out = Path(out)
    names = _resolve(names)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a folder; choose another --out folder")
    owned = read_manifest(out) if out.is_dir() else None
    if out.is_dir() and any(out.iterdir()) and not force:
        what = "an earlier release" if owned is not None else "files that are not a release of this kit"
        raise FileExistsError(f"{out} already exists and holds {what}; pass --force to write the release there (only the "
                              "files an earlier release wrote are replaced; nothing else in the folder is touched)")
    owned = owned or {}
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".coursekit-release-", dir=out.parent))
    try:
        _write_release(staging, names, log)
        problems = audit_release(staging, names) + heldout_images_in(staging)
        if problems:
            raise RuntimeError("the release gives away hidden material:\n" + "\n".join(map(str, problems)))
        new = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        theirs = [f for f in new if (out / f).exists() and f not in owned]
        changed = [f for f, digest in owned.items() if (out / f).is_file() and _sha256(out / f) != digest]
        if theirs or changed:
            lines = []
            if theirs:
                lines.append(f"{len(theirs)} file(s) that no release of this kit wrote stand where the release writes: {_listing(theirs)}")
            if changed:
                lines.append(f"{len(changed)} file(s) of the earlier release were changed since it was written: {_listing(changed)}")
            raise FileExistsError(f"{out}: not written, to keep your files: " + "; ".join(lines) +
                                  ". Move them away (or choose another --out folder) and run the command again.")
        for f in owned:  # the earlier release's files, unchanged: replaced by the new ones, or gone if no longer released
            target = out / f
            if target.is_file() or target.is_symlink():
                target.unlink()
            for parent in target.parents:
                if parent == out or not parent.is_dir() or any(parent.iterdir()):
                    break
                parent.rmdir()
        digests = {}
        for f in new:
            (out / f).parent.mkdir(parents=True, exist_ok=True)
            digests[f] = _sha256(staging / f)
            os.replace(staging / f, out / f)
        (out / MANIFEST).write_text(json.dumps({"written_by": "coursekit release", "files": digests}, indent=1) + "\n",
                                    encoding="utf-8")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    problems = audit_release(out, names) + heldout_images_in(out)
    if problems:  # files of the user's, beside the release, that would give something away
        raise RuntimeError(f"the release in {out} is clean, but the folder holds hidden material beside it:\n"
                           + "\n".join(map(str, problems)))
    log(f"release audited: no solution, no hidden test in {out}")
    return out
