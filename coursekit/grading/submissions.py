"""Finding the submissions to grade: folders, zips and nbgrader's ``submitted/`` layout.

Accepted, for each path given:

- nbgrader's course folder ``submitted/`` (or any folder of student folders):
  ``submitted/{student}/{assignment}/{assignment}.ipynb``;
- one student's folder: ``alice/pixelrnn.ipynb`` or ``alice/pixelrnn/pixelrnn.ipynb``;
- one student's zip of either (``alice.zip``), unpacked safely into a folder of its own;
- a single notebook, ``alice.ipynb`` (the student is the file's stem).

Everything here is named by students, so nothing is trusted: a zip that cannot be opened or
unpacked safely (corrupt, a zip bomb, symbolic links, too many entries, names pointing
outside it) gives that student a problem to read, never a crash of the batch; and a
student's name becomes a folder name under the output folder only through
``safe_folder_name`` (the original name stays in the report, for people).
"""

from __future__ import annotations

import hashlib
import shutil
import stat
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

MAX_UNZIPPED_MB = 200  # all entries of one zip together
MAX_ENTRIES = 2000  # files and folders in one zip
MAX_RATIO = 100  # unpacked / packed size of an entry over 1 MB: more is a zip bomb
MAX_NAME = 60  # characters of a student's folder name (before the hash that makes it unique)
RESERVED = {"gradebook.csv", "gradebook.tmp", "gradebook"}  # names of the grading output's own files


@dataclass
class Submission:
    student: str  # the name as given (for people; may hold anything)
    assignment: str
    notebook: Path | None  # None when no notebook could be found
    source: Path  # what the instructor gave (folder, zip or file)
    problem: str = ""  # why it cannot be graded, for the student's feedback
    folder: str = ""  # the student's folder under the output folder: safe and unique in the batch

    def __post_init__(self):
        self.student = display_text(self.student)
        self.problem = display_text(self.problem)
        if not self.folder:
            self.folder = safe_folder_name(self.student)


class ZipRefused(ValueError):
    """A student's zip that is not unpacked, with the reason in words."""


def display_text(text: str) -> str:
    """``text`` as valid Unicode: file names that are not UTF-8 (kept by Python as surrogates) get U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def safe_folder_name(name: str, salt: str = "") -> str:
    """A folder name for ``name`` that is safe anywhere: ASCII letters, digits, ``-_.``, no leading dot or dash,
    at most ``MAX_NAME`` characters, not one of the output's own names. A name changed to get there (or given a
    ``salt``, to tell apart names that collide) ends with a short hash of the original, so different names
    never share a folder and the same name always gets the same folder."""
    plain = unicodedata.normalize("NFC", display_text(name))
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in plain)
    safe = safe[:MAX_NAME]
    if safe[:1] in (".", "-"):
        safe = "_" + safe[1:]
    safe = safe or "student"
    if safe != name or safe.lower() in RESERVED or salt:
        safe = f"{safe.rstrip('.')}-{_short_hash(name + salt)}"
    return safe


def _entry_parts(name: str) -> list[str] | None:
    """The path components of a zip entry, made safe for a file name; None when it points outside the zip."""
    name = name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    parts = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            return None
        part = "".join("_" if unicodedata.category(c)[0] == "C" else c for c in part)
        parts.append(part[:120] if len(part.encode("utf-8", "surrogateescape")) <= 200 else part[:50] + "_" + _short_hash(part))
    return parts


def safe_unzip(path: Path, into: Path | None = None) -> Path:
    """Unpack a zip into a folder of its own under ``into`` (default: a new temporary folder), refusing
    (``ZipRefused``) entries pointing outside it, symbolic links and other special files, more than
    ``MAX_ENTRIES`` entries, more than ``MAX_UNZIPPED_MB`` in all and zip bombs (an entry over 1 MB
    unpacking to more than ``MAX_RATIO`` times its packed size, or to more than it announced). Zips
    inside the zip stay packed."""
    if into is None:
        dest = Path(tempfile.mkdtemp(prefix="coursekit-zip-"))
    else:
        dest = into / f"{safe_folder_name(path.stem)}-{_short_hash(str(path.resolve()))}"
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
    shown = display_text(path.name)
    try:
        _unpack(path, dest, shown)
    except Exception:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    # a zip of one folder: look inside it
    entries = [p for p in dest.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() and not list(dest.glob("*.ipynb")) else dest


def _unpack(path: Path, dest: Path, shown: str) -> None:
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise ZipRefused(f"{shown} is not a zip file that can be opened ({e})") from None
    except UnicodeDecodeError:
        raise ZipRefused(f"{shown} holds file names that are not valid UTF-8 although it says they are") from None
    with z:
        infos = z.infolist()
        if len(infos) > MAX_ENTRIES:
            raise ZipRefused(f"{shown} holds {len(infos)} files and folders, more than the {MAX_ENTRIES} accepted")
        total = sum(i.file_size for i in infos)
        if total > MAX_UNZIPPED_MB * 1024 * 1024:
            raise ZipRefused(f"{shown} unzips to {total / 1e6:.0f} MB, more than the {MAX_UNZIPPED_MB} MB allowed")
        for info in infos:
            shown_entry = display_text(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ZipRefused(f"{shown} holds a symbolic link ({shown_entry!r}), which is not accepted: zip the files themselves")
            if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise ZipRefused(f"{shown} holds a special file ({shown_entry!r}), which is not accepted")
            if info.file_size > 1024 * 1024 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise ZipRefused(f"{shown} looks like a zip bomb: {shown_entry!r} unpacks to {info.file_size / 1e6:.0f} MB "
                                 f"from {info.compress_size / 1e3:.0f} kB")
            parts = _entry_parts(info.filename)
            if parts is None:
                raise ZipRefused(f"{shown} holds the entry {shown_entry!r}, which points outside the zip")
            if not parts:
                continue
            target = dest.joinpath(*parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with z.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > info.file_size:
                        raise ZipRefused(f"{shown} looks like a zip bomb: {shown_entry!r} unpacks to more than it announces")
                    out.write(chunk)


def _notebooks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and not p.is_symlink())


def find_notebook(folder: Path, assignment: str) -> tuple[Path | None, str]:
    """The student's notebook for ``assignment`` in ``folder``, or None and what was expected."""
    for cand in (folder / assignment / f"{assignment}.ipynb", folder / f"{assignment}.ipynb"):
        if cand.is_file() and not cand.is_symlink():
            return cand, ""
    sub = folder / assignment
    if sub.is_dir() and len(_notebooks(sub)) == 1:
        return _notebooks(sub)[0], ""
    found = [p.relative_to(folder).as_posix() for p in _notebooks(folder)]
    if len(found) == 1 and len(list(folder.iterdir())) == 1:
        return folder / found[0], ""  # the only file there: take it, whatever its name
    seen = f" (found: {', '.join(found[:5])})" if found else " (found no notebook)"
    if not found and any(folder.rglob("*.zip")):
        seen += "; zips inside a zip are not unpacked: zip the notebook itself"
    return None, f"expected a notebook {assignment}.ipynb or {assignment}/{assignment}.ipynb in {folder.name}/{seen}"


def _is_student_folder(folder: Path, assignments: list[str]) -> bool:
    """A student's folder holds notebooks itself or folders named after assignments (not student folders)."""
    return any(folder.glob("*.ipynb")) or any((folder / a).is_dir() for a in assignments)


def _unzipped(student: str, path: Path, unzip_into: Path | None, assignments: list[str]) -> tuple[list, list[Submission]]:
    """(folders, problems): the student's unpacked folder, or a 0-point submission per assignment saying why not."""
    try:
        return [(student, safe_unzip(path, unzip_into), path)], []
    except Exception as e:  # noqa: BLE001 - a student's file: whatever is wrong with it costs only that student
        why = str(e) if isinstance(e, ZipRefused) else f"{display_text(path.name)} could not be unpacked ({type(e).__name__}: {e})"
        return [], [Submission(student, a, None, path, f"the zip could not be opened: {why}") for a in assignments]


def find_submissions(inputs: list[str | Path], assignments: list[str], unzip_into: Path | None = None) -> list[Submission]:
    """One ``Submission`` per student and assignment, in a stable order; zips are unpacked into ``unzip_into``.
    Each student gets a folder name of their own (``Submission.folder``), unique in the batch even where
    names differ only in case or collide once made safe."""
    subs: list[Submission] = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        if path.is_file() and path.suffix == ".ipynb":
            for a in assignments:
                subs.append(Submission(path.stem, a, path, path))
            continue
        folders: list[tuple[str, Path, Path]] = []
        if path.is_file() and path.suffix == ".zip":
            folders, bad = _unzipped(path.stem, path, unzip_into, assignments)
            subs += bad
        elif path.is_dir() and _is_student_folder(path, assignments):
            folders = [(path.name, path, path)]
        elif path.is_dir():
            folders = [(p.name, p, p) for p in sorted(path.iterdir())
                       if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]
            for p in sorted(path.glob("*.zip")):
                if p.is_file() and not p.is_symlink():
                    found, bad = _unzipped(p.stem, p, unzip_into, assignments)
                    folders += found
                    subs += bad
        else:
            raise ValueError(f"{path}: give folders, zips or notebooks")
        for student, folder, source in folders:
            for a in assignments:
                nb, problem = find_notebook(folder, a)
                subs.append(Submission(student, a, nb, source, problem))
    _unique_folders(subs)
    return subs


def _unique_folders(subs: list[Submission]) -> None:
    """Give every (student, source) its own folder name: names that share one (ignoring case) get a hash."""
    owners: dict[str, set[tuple[str, str]]] = {}
    for s in subs:
        owners.setdefault(s.folder.lower(), set()).add((s.student, str(s.source)))
    for s in subs:
        who = owners[s.folder.lower()]
        if len(who) > 1:
            same_name = sum(1 for name, _ in who if name == s.student) > 1
            s.folder = safe_folder_name(s.student, salt="\0" + (str(s.source) if same_name else "case"))
    taken: dict[str, tuple[str, str]] = {}  # a last guard, for names that collide even with their hash
    for s in subs:
        me, base, n = (s.student, str(s.source)), s.folder, 1
        while taken.setdefault(s.folder.lower(), me) != me:
            n += 1
            s.folder = f"{base}-{n}"
