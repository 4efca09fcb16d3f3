"""Finding the submissions to grade: folders, zips and nbgrader's ``submitted/`` layout.

Accepted, for each path given:

- nbgrader's course folder ``submitted/`` (or any folder of student folders):
  ``submitted/{student}/{assignment}/{assignment}.ipynb``;
- one student's folder: ``alice/pixelrnn.ipynb`` or ``alice/pixelrnn/pixelrnn.ipynb``;
- one student's zip of either (``alice.zip``), unpacked safely into a temporary folder;
- a single notebook, ``alice.ipynb`` (the student is the file's stem).
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

MAX_UNZIPPED_MB = 200


@dataclass
class Submission:
    student: str
    assignment: str
    notebook: Path | None  # None when no notebook could be found
    source: Path  # what the instructor gave (folder, zip or file)
    problem: str = ""  # why it cannot be graded, for the student's feedback


def safe_unzip(path: Path, into: Path | None = None) -> Path:
    """Unpack a zip into ``into/<zip name>`` (default: a new temporary folder), refusing absolute
    paths, '..' and zip bombs."""
    if into is None:
        dest = Path(tempfile.mkdtemp(prefix=f"coursekit-{path.stem}-"))
    else:
        dest = into / path.stem
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
    with zipfile.ZipFile(path) as z:
        total = sum(i.file_size for i in z.infolist())
        if total > MAX_UNZIPPED_MB * 1024 * 1024:
            raise ValueError(f"{path}: unzips to {total / 1e6:.0f} MB, more than the {MAX_UNZIPPED_MB} MB allowed")
        for info in z.infolist():
            target = (dest / info.filename).resolve()
            if not str(target).startswith(str(dest.resolve())) or info.filename.startswith("/"):
                raise ValueError(f"{path}: refuses the entry {info.filename!r}, which points outside the zip")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "wb") as out:
                out.write(src.read())
    # a zip of one folder: look inside it
    entries = [p for p in dest.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() and not list(dest.glob("*.ipynb")) else dest


def _notebooks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def find_notebook(folder: Path, assignment: str) -> tuple[Path | None, str]:
    """The student's notebook for ``assignment`` in ``folder``, or None and what was expected."""
    for cand in (folder / assignment / f"{assignment}.ipynb", folder / f"{assignment}.ipynb"):
        if cand.is_file():
            return cand, ""
    sub = folder / assignment
    if sub.is_dir() and len(_notebooks(sub)) == 1:
        return _notebooks(sub)[0], ""
    found = [p.relative_to(folder).as_posix() for p in _notebooks(folder)]
    if len(found) == 1 and len(list(folder.iterdir())) == 1:
        return folder / found[0], ""  # the only file there: take it, whatever its name
    seen = f" (found: {', '.join(found[:5])})" if found else " (found no notebook)"
    return None, f"expected a notebook {assignment}.ipynb or {assignment}/{assignment}.ipynb in {folder.name}/{seen}"


def _is_student_folder(folder: Path, assignments: list[str]) -> bool:
    """A student's folder holds notebooks itself or folders named after assignments (not student folders)."""
    return any(folder.glob("*.ipynb")) or any((folder / a).is_dir() for a in assignments)


def find_submissions(inputs: list[str | Path], assignments: list[str], unzip_into: Path | None = None) -> list[Submission]:
    """One ``Submission`` per student and assignment, in a stable order; zips are unpacked into ``unzip_into``."""
    subs: list[Submission] = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        if path.is_file() and path.suffix == ".ipynb":
            for a in assignments:
                subs.append(Submission(path.stem, a, path, path))
            continue
        if path.is_file() and path.suffix == ".zip":
            try:
                folders = [(path.stem, safe_unzip(path, unzip_into))]
            except (zipfile.BadZipFile, ValueError) as e:
                subs += [Submission(path.stem, a, None, path, f"the zip could not be opened: {e}") for a in assignments]
                continue
        elif path.is_dir() and _is_student_folder(path, assignments):
            folders = [(path.name, path)]
        elif path.is_dir():
            folders = [(p.name, p) for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith(".")]
            folders += [(p.stem, safe_unzip(p, unzip_into)) for p in sorted(path.glob("*.zip"))]
        else:
            raise ValueError(f"{path}: give folders, zips or notebooks")
        for student, folder in folders:
            for a in assignments:
                nb, problem = find_notebook(folder, a)
                subs.append(Submission(student, a, nb, path, problem))
    return subs
