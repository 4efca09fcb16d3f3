"""Finding the submissions to grade: who handed in what, in the layouts instructors use.

Accepted, for each path given (``discover``):

- nbgrader's course folder ``submitted/`` (or any folder of student folders):
  ``submitted/{student}/{assignment}/{assignment}.ipynb``;
- a folder of students' zips (``alice.zip``, each unpacked safely into a folder of its own; a corrupt one
  costs only its author) or of loose notebooks (``alice.ipynb``, ``alice_vae.ipynb``: the student is the
  file's name, less the assignment's);
- a zip of a whole class holding any of those;
- one student's folder or zip: ``alice/pixelrnn.ipynb`` or ``alice/pixelrnn/pixelrnn.ipynb``;
- Gradescope's export of an assignment's submissions (its zip, or the folder unpacked): ``submission_<id>/`` folders
  and ``submission_metadata.yml``, which names each one's student and student ID;
- a single notebook, ``alice.ipynb``.

A folder is one student's when it holds a notebook or a folder named after an assignment; any other
folder is a class. A notebook's assignment comes from nbgrader's folder or its file name, and otherwise
from its metadata (``metadata.coursekit.assignment``, in every student notebook); each student is
graded for the assignments they handed in. Inputs with no student at all raise ``NothingToGrade``.

Everything here is named by students, so nothing is trusted: a zip that cannot be opened or
unpacked safely (corrupt, a zip bomb, symbolic links, too many entries, names pointing
outside it) gives that student a problem to read, never a crash of the batch; and a
student's name becomes a folder name under the output folder only through
``safe_folder_name`` (the original name stays in the report, for people).
"""

from __future__ import annotations

import hashlib
import json
import re
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
    student_id: str = ""  # the student ID where the layout names one (Gradescope's export); see gradebook.student_id_of

    def __post_init__(self):
        self.student = display_text(self.student)
        self.problem = display_text(self.problem)
        self.student_id = display_text(self.student_id)
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
    return sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and "__MACOSX" not in p.parts
                  and not p.name.startswith("._") and not p.is_symlink())


MAX_NOTEBOOK_MB = 100  # a notebook larger than this is not opened to read which assignment it names


def claimed_assignment(notebook: Path) -> str | None:
    """The assignment a notebook names in its metadata (``metadata.coursekit.assignment``, written into every
    student notebook by the release), or None where it names none or cannot be read."""
    try:
        if notebook.stat().st_size > MAX_NOTEBOOK_MB * 1024 * 1024:
            return None
        meta = json.loads(notebook.read_text(encoding="utf-8", errors="replace")).get("metadata", {})
        claimed = meta.get("coursekit", {}).get("assignment")
    except (OSError, ValueError, AttributeError):
        return None
    return claimed if isinstance(claimed, str) and claimed else None


def _tokens(stem: str) -> list[str]:
    return [t for t in re.split(r"[^0-9a-z]+", stem.lower()) if t]


def name_clue(stem: str, known: list[str]) -> str | None:
    """The assignment a file name points to: ``pixelrnn``, ``alice_pixelrnn``, ``pixelrnn (1)``; None if none or several."""
    hits = {a for a in known if a.lower() in _tokens(stem)}
    return hits.pop() if len(hits) == 1 else None


def _student_of_loose_notebook(stem: str, known: list[str]) -> str:
    """The student a loose notebook belongs to: its name without the assignment's (``alice_pixelrnn`` -> ``alice``)."""
    clue = name_clue(stem, known)
    if clue is None:
        return stem
    rest = re.sub(rf"(?i)(^|[^0-9a-z]){re.escape(clue)}($|[^0-9a-z])", r"\1\2", stem).strip(" _-.()")
    return rest or stem


@dataclass
class _Candidate:
    notebook: Path
    assignment: str | None  # what it is taken for
    rank: int  # 0: nbgrader's slot A/A.ipynb, 1: A.ipynb, 2: another notebook in A/, 3: its metadata, 4: a name like alice_A
    depth: int = 0  # folders between the student's folder and it: of two equal clues, the shallower wins


def _candidate(nb: Path, folder: Path, known: list[str]) -> _Candidate:
    c = _clue(nb, folder, known)
    c.depth = len(nb.relative_to(folder).parts)
    return c


def _clue(nb: Path, folder: Path, known: list[str]) -> _Candidate:
    rel = nb.relative_to(folder).parts
    slot = next((a for a in known if len(rel) >= 2 and rel[-2].lower() == a.lower()), None)
    if slot is not None:
        return _Candidate(nb, slot, 0 if nb.stem.lower() == slot.lower() else 2)
    exact = next((a for a in known if nb.stem.lower() == a.lower()), None)
    if exact is not None:
        return _Candidate(nb, exact, 1)
    claimed = claimed_assignment(nb)
    if claimed in known:
        return _Candidate(nb, claimed, 3)
    clue = name_clue(nb.stem, known)
    return _Candidate(nb, clue, 4) if clue else _Candidate(nb, None, 9)


def _expected(assignment: str, where: str, found: list[str], zips: bool) -> str:
    seen = f" (found: {', '.join(found[:5])})" if found else " (found no notebook)"
    if not found and zips:
        seen += "; zips inside a zip are not unpacked: zip the notebook itself"
    return f"expected a notebook {assignment}.ipynb or {assignment}/{assignment}.ipynb in {where}/{seen}"


def _student_entries(student: str, notebooks: list[Path], base: Path, source: Path, scope: list[str], known: list[str],
                     where: str, own_folder: bool) -> list[Submission]:
    """The record of one student (assignment "") and one submission per assignment of ``scope`` they handed in.
    An assignment is taken from nbgrader's slot folder, the file name or the notebook's metadata (in that order);
    where none of that names an assignment, a lone notebook is taken for the only assignment graded. ``base``: the
    student's own folder (``own_folder``) or the folder of loose notebooks they are in."""
    cands = [_candidate(nb, base, known) for nb in notebooks]
    shown = [c.notebook.relative_to(base).as_posix() for c in cands]
    zips = own_folder and any(base.rglob("*.zip"))
    entries = [Submission(student, "", None, source)]
    handed_in = {c.assignment for c in cands if c.assignment}
    slots = [a for a in scope if own_folder and (base / a).is_dir() and not (base / a).is_symlink()]
    for a in scope:
        mine = sorted((c for c in cands if c.assignment == a), key=lambda c: (c.rank, c.depth, str(c.notebook)))
        if mine and (len(mine) == 1 or (mine[0].rank, mine[0].depth) < (mine[1].rank, mine[1].depth)):
            entries.append(Submission(student, a, mine[0].notebook, source))
        elif mine:
            names = ", ".join(c.notebook.relative_to(base).as_posix() for c in mine[:5])
            entries.append(Submission(student, a, None, source, f"found several notebooks for {a} in {where}/ ({names}): "
                                                                  f"hand in one, named {a}.ipynb"))
        elif a in slots:  # nbgrader's folder for it is there, without its notebook
            entries.append(Submission(student, a, None, source, _expected(a, where, shown, zips)))
    if handed_in:
        return entries
    # nothing names a graded assignment
    unknown = [c.notebook for c in cands]
    lone = len(unknown) == 1 and (not own_folder or len(list(base.iterdir())) == 1)  # nothing else beside it
    if len(scope) == 1 and lone:
        entries.append(Submission(student, scope[0], unknown[0], source))  # the only notebook: take it, whatever its name
    elif len(scope) == 1 and not slots:
        entries.append(Submission(student, scope[0], None, source, _expected(scope[0], where, shown, zips)))
    elif not slots:
        names = " or ".join(f"{a}.ipynb" for a in known)
        what = f"found {', '.join(shown[:5])}, which name no assignment" if shown else "found no notebook"
        if not shown and zips:
            what += " (zips inside a zip are not unpacked: zip the notebook itself)"
        entries[0].problem = display_text(f"{what} in {where}/: name each notebook after its assignment ({names})")
    return entries


def _student_folder_entries(student: str, folder: Path, source: Path, scope, known) -> list[Submission]:
    return _student_entries(student, _notebooks(folder), folder, source, scope, known, display_text(folder.name), True)


def is_student_folder(folder: Path, known: list[str]) -> bool:
    """A student's folder holds a notebook named after an assignment (``pixelrnn.ipynb``) or nbgrader's folder
    of one (``pixelrnn/``); any other folder is a class: student folders, students' zips, loose notebooks."""
    try:
        names = {p.name.lower() for p in folder.iterdir()}
    except OSError:
        return False
    return any(f"{a.lower()}.ipynb" in names or (a.lower() in names and (folder / a).is_dir()) for a in known)


def _zip_problem(student: str, path: Path, e: Exception, scope: list[str]) -> list[Submission]:
    why = str(e) if isinstance(e, ZipRefused) else f"{display_text(path.name)} could not be unpacked ({type(e).__name__}: {e})"
    problem = f"the zip could not be opened: {why}"
    if len(scope) == 1:  # the one assignment graded: the student's grade for it says why
        return [Submission(student, "", None, path), Submission(student, scope[0], None, path, problem)]
    return [Submission(student, "", None, path, problem)]


def _student_zip_entries(student: str, path: Path, unzip_into, scope, known) -> list[Submission]:
    try:
        folder = safe_unzip(path, unzip_into)
    except Exception as e:  # noqa: BLE001 - a student's file: whatever is wrong with it costs only that student
        return _zip_problem(student, path, e, scope)
    return _student_folder_entries(student, folder, path, scope, known)


def _class_entries(folder: Path, scope, known, unzip_into) -> list[Submission]:
    """A folder of students: student folders, students' zips and loose notebooks (``alice.ipynb``, ``alice_vae.ipynb``)."""
    entries: list[Submission] = []
    loose: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if p.is_symlink() or p.name.startswith(("._", "__MACOSX")):  # macOS's resource forks
            continue
        if p.is_dir() and not p.name.startswith("."):
            entries += _student_folder_entries(p.name, p, p, scope, known)
        elif p.suffix.lower() == ".zip" and p.is_file():  # even '...zip': its student is named '..', in a safe folder
            entries += _student_zip_entries(p.stem, p, unzip_into, scope, known)
        elif p.suffix.lower() == ".ipynb" and p.is_file() and not p.name.startswith("."):
            loose.setdefault(_student_of_loose_notebook(p.stem, known), []).append(p)
    for student, notebooks in loose.items():
        entries += _student_entries(student, notebooks, folder, notebooks[0], scope, known, display_text(folder.name), False)
    return entries


GRADESCOPE_METADATA = "submission_metadata.yml"  # at the top of Gradescope's export of an assignment's submissions


def _gradescope_submitters(folder: Path) -> dict[str, list[dict]] | None:
    """{submission folder name: [{"name", "sid", "email"}...]} from Gradescope's ``submission_metadata.yml`` (keys
    written as Ruby symbols, ``:submitters:``, ``:name:``); None where it cannot be read."""
    try:
        import yaml

        raw = yaml.safe_load((folder / GRADESCOPE_METADATA).read_text(encoding="utf-8", errors="replace"))
    except Exception:  # noqa: BLE001 - no PyYAML, or a file that is not YAML: the folders are taken as students
        return None
    if not isinstance(raw, dict):
        return None

    def plain_keys(d):
        return {str(k).lstrip(":"): v for k, v in d.items()} if isinstance(d, dict) else {}

    found = {}
    for key, entry in raw.items():
        people = plain_keys(entry).get("submitters") or []
        found[str(key)] = [{k: display_text(str(v)) for k, v in plain_keys(p).items() if v is not None}
                           for p in (people if isinstance(people, list) else [])]
    return found


def _gradescope_export_entries(folder: Path, scope, known) -> list[Submission]:
    """Gradescope's export of submissions: a folder per submission (``submission_<id>/``, the student's files in it)
    and ``submission_metadata.yml`` naming who handed each in. Each submission is graded as the student who handed
    it in (a group's as its first member, named with the others), with their student ID (``sid``) for the LMS."""
    submitters = _gradescope_submitters(folder)
    if submitters is None:
        return _class_entries(folder, scope, known, None)
    entries: list[Submission] = []
    for p in sorted(folder.iterdir()):
        if not p.is_dir() or p.is_symlink() or p.name.startswith((".", "__MACOSX")):
            continue
        people = submitters.get(p.name) or []
        names = [x.get("name") or x.get("email") or x.get("sid") or "" for x in people]
        student = " & ".join(n for n in names if n) or p.name
        sid = next((x.get("sid", "") for x in people if x.get("sid")), "")
        for e in _student_folder_entries(student, p, p, scope, known):
            e.student_id = sid
            entries.append(e)
    return entries


class NothingToGrade(ValueError):
    """The inputs hold no submission at all."""


@dataclass
class Found:
    """What the inputs hold: the submissions of the assignments graded, and every student found, with the problem
    of those whose files could not be matched to an assignment."""

    submissions: list[Submission]
    students: list[Submission]  # one record per student (assignment ""), ``problem`` set where nothing could be graded
    scope: list[str]

    def summary(self) -> str:
        """A few lines for the instructor, printed before grading."""
        from .reports import plain  # students' names and files: no control characters on the terminal

        per = {a: sum(1 for s in self.submissions if s.assignment == a) for a in self.scope}
        lines = [f"found {len(self.students)} student(s); submissions: "
                 + ", ".join(f"{a} {n}" for a, n in per.items())]
        lines += [f"  {plain(s.student, 60)}: {plain(s.problem, 300)}" for s in self.students if s.problem]
        bad = [s for s in self.submissions if s.problem]
        lines += [f"  {plain(s.student, 60)} ({s.assignment}): {plain(s.problem, 300)}" for s in bad[:20]]
        if len(bad) > 20:
            lines.append(f"  ... and {len(bad) - 20} more problems")
        return "\n".join(lines)


def discover(inputs: list[str | Path], assignments: list[str], unzip_into: Path | None = None,
             known: list[str] | None = None) -> Found:
    """Every student in ``inputs`` and their submissions of ``assignments`` (``known``: every assignment the kit
    grades, to recognise notebooks of assignments not graded this time). Accepted: nbgrader's ``submitted/``, a
    folder of student folders, students' zips (one of them corrupt costs only its author) or loose notebooks
    (``alice.ipynb``: the student is the file's name); a zip of a whole class of those; one student's folder or
    zip; one notebook. Raises ``NothingToGrade`` where the inputs hold no student at all."""
    scope = list(assignments)
    known = sorted(set(known or ()) | set(scope))
    entries: list[Submission] = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        if path.is_file() and path.suffix.lower() == ".ipynb":
            entries += _student_entries(_student_of_loose_notebook(path.stem, known), [path], path.parent, path, scope, known,
                                        display_text(path.parent.name), False)
        elif path.is_file() and path.suffix.lower() == ".zip":
            try:
                folder = safe_unzip(path, unzip_into)
            except Exception as e:  # noqa: BLE001
                entries += _zip_problem(path.stem, path, e, scope)
                continue
            if (folder / GRADESCOPE_METADATA).is_file():
                entries += _gradescope_export_entries(folder, scope, known)
            elif is_student_folder(folder, known) or len(_notebooks(folder)) <= 1:
                entries += _student_folder_entries(path.stem, folder, path, scope, known)
            else:  # a zip of a whole class
                entries += _class_entries(folder, scope, known, unzip_into)
        elif path.is_dir() and (path / GRADESCOPE_METADATA).is_file():
            entries += _gradescope_export_entries(path, scope, known)
        elif path.is_dir() and is_student_folder(path, known):
            entries += _student_folder_entries(path.name, path, path, scope, known)
        elif path.is_dir():
            entries += _class_entries(path, scope, known, unzip_into)
        else:
            raise ValueError(f"{path}: give folders, zips or notebooks")
    _unique_folders(entries)
    students = [e for e in entries if not e.assignment]
    if not students:
        shown = ", ".join(display_text(str(p)) for p in inputs) or "(no inputs)"
        raise NothingToGrade(f"found nothing to grade in {shown}: no student folder, zip or notebook (.ipynb); give nbgrader's "
                             "submitted/ folder, a folder of student folders, zips or notebooks, or a zip of those")
    return Found([e for e in entries if e.assignment], students, scope)


def find_submissions(inputs: list[str | Path], assignments: list[str], unzip_into: Path | None = None,
                     known: list[str] | None = None) -> list[Submission]:
    """One ``Submission`` per student and assignment handed in, in a stable order (see ``discover``). Each student gets
    a folder name of their own (``Submission.folder``), unique in the batch even where names differ only in case or
    collide once made safe."""
    return discover(inputs, assignments, unzip_into, known).submissions


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
