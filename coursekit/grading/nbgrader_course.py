"""The round trip with an nbgrader course: grade its ``submitted/`` with the kit, put the points into nbgrader's gradebook.

``coursekit grade --nbgrader-course DIR`` grades ``DIR/submitted/{student}/{assignment}/`` (the layout ``nbgrader
collect`` writes) like any other batch, then ``export_to_nbgrader`` writes, through nbgrader's own API
(``nbgrader.api.Gradebook``, on the course's database, ``CourseDirectory.db_url`` of ``DIR/nbgrader_config.py``):

- one nbgrader grade cell per rubric test (``coursekit:<test id>``, ``max_score`` its points) in the assignment's
  notebook, created where the course's database does not hold it yet (``nbgrader generate_assignment`` makes the
  assignment and the notebook's own cells; the kit's cells are added beside them);
- the student, their submission (with the ``timestamp.txt`` nbgrader collected, so late penalties work) and one
  autograded score per rubric test (``auto_score``). Manually graded cells of the notebook are left as they are, so
  formgrader and ``nbgrader export`` show the kit's points beside them;
- the kit's feedback page as ``DIR/feedback/{student}/{assignment}/{notebook}.html`` with the ``timestamp.txt`` and
  ``submission_secret.txt`` of the submission: what ``nbgrader release_feedback`` sends and ``nbgrader fetch_feedback``
  gives the student. A page there that the kit did not write (``nbgrader generate_feedback``'s) is replaced only with
  ``force``.

Known limit: once submissions exist, ``nbgrader generate_assignment`` refuses to change a notebook whose grade cells
differ from its source's ("Cannot add or remove cells"), and the kit's cells are such cells: generate the assignment
before collecting, as nbgrader asks anyway.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import layout
from .rubric import load_rubric

CELL_PREFIX = "coursekit:"  # the names of the kit's grade cells in nbgrader's database
MARK = '<meta name="generator" content="coursekit grade">'  # in the feedback pages the kit puts into nbgrader's tree


class NbgraderCourseError(ValueError):
    """A folder that is not an nbgrader course the kit can write into."""


@dataclass
class NbgraderCourse:
    root: Path  # the course folder (holding nbgrader_config.py, submitted/, gradebook.db)
    course_id: str  # CourseDirectory.course_id of its config ("" where it names none)
    db_url: str  # CourseDirectory.db_url: sqlite:///<root>/gradebook.db unless the config says otherwise
    submitted: Path  # where nbgrader collect puts the submissions
    coursedir: object = None  # nbgrader's CourseDirectory, for its paths

    def feedback_dir(self, student: str, assignment: str) -> Path:
        return Path(self.coursedir.format_path(self.coursedir.feedback_directory, student, assignment))


@dataclass
class ExportSummary:
    students: int = 0  # submissions whose points were written into the gradebook
    cells_created: int = 0  # grade cells of the kit added to the database
    feedback: list = field(default_factory=list)  # feedback pages written into nbgrader's tree
    skipped: list = field(default_factory=list)  # what was not written, and why

    def lines(self, course: NbgraderCourse) -> list[str]:
        out = [f"nbgrader: wrote the points of {self.students} submission(s) into {course.db_url} "
               f"({self.cells_created} grade cell(s) of the kit created); formgrader and `nbgrader export` show them",
               f"nbgrader: {len(self.feedback)} feedback page(s) in {course.root / 'feedback'}/ for `nbgrader release_feedback`"]
        return out + [f"nbgrader: {s}" for s in self.skipped]


def open_course(folder: str | Path) -> NbgraderCourse:
    """The nbgrader course in ``folder``, configured by its ``nbgrader_config.py`` (read with nbgrader's own classes)."""
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import Config, PyFileConfigLoader

    root = Path(folder).resolve()
    if not root.is_dir():
        raise NbgraderCourseError(f"{folder}: no such folder (give the nbgrader course folder, the one holding submitted/)")
    cfg = Config()
    if (root / "nbgrader_config.py").is_file():
        try:
            cfg = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        except Exception as e:  # noqa: BLE001 - the instructor's Python file: say which and why
            raise NbgraderCourseError(f"{root / 'nbgrader_config.py'} could not be read: {type(e).__name__}: {e}") from None
    cd = CourseDirectory(config=cfg)
    cd.root = str(root)
    submitted = Path(cd.format_path(cd.submitted_directory, "x", "x")).parent.parent
    if not submitted.is_dir():
        raise NbgraderCourseError(f"{root} is not an nbgrader course with submissions: {submitted} does not exist "
                                  "(run `nbgrader collect ASSIGNMENT` there first)")
    return NbgraderCourse(root, cd.course_id, cd.db_url, submitted, cd)


def _notebook_name(gb, assignment: str, submitted_nb: Path | None) -> str:
    """The notebook of ``assignment`` in the database that the submitted notebook is: the one of its name, else the
    assignment's only notebook, else a notebook named after the submitted file (or the assignment)."""
    from nbgrader.api import MissingEntry

    stem = submitted_nb.stem if submitted_nb is not None else assignment
    try:
        names = [n.name for n in gb.find_assignment(assignment).notebooks]
    except MissingEntry:
        names = []
    if stem in names:
        return stem
    return names[0] if len(names) == 1 else stem


def _ensure_cells(gb, assignment: str, notebook: str, summary: ExportSummary) -> dict[str, str]:
    """The kit's grade cells of the notebook, one per rubric test (created where missing): {test id: cell name}."""
    from nbgrader.api import MissingEntry

    gb.update_or_create_assignment(assignment)
    try:
        gb.find_notebook(notebook, assignment)
    except MissingEntry:
        gb.add_notebook(notebook, assignment)
    cells = {}
    for test_id, item in load_rubric(assignment).items.items():
        name = (CELL_PREFIX + test_id)[:128]
        try:
            cell = gb.find_grade_cell(name, notebook, assignment)
            if cell.max_score != float(item.points):
                cell.max_score = float(item.points)
                gb.db.commit()
        except MissingEntry:
            gb.add_grade_cell(name, notebook, assignment, max_score=float(item.points), cell_type="code")
            summary.cells_created += 1
        cells[test_id] = name
    return cells


def _grade_row(gb, cell_name: str, notebook: str, assignment: str, student: str):
    """The student's grade of a cell; created where the submission was made before the cell existed."""
    from nbgrader.api import Grade, MissingEntry

    try:
        return gb.find_grade(cell_name, notebook, assignment, student)
    except MissingEntry:
        sub_nb = gb.find_submission_notebook(notebook, assignment, student)
        cell = gb.find_grade_cell(cell_name, notebook, assignment)
        grade = Grade(cell_id=cell.id, notebook=sub_nb)
        gb.db.add(grade)
        gb.db.commit()
        return grade


def _settle_zero_point_tests(submitted_notebook) -> None:
    """The notebook's own test cells worth 0 points (the public check cells, which make ``nbgrader validate`` run the
    checks) carry no points: scored 0, as ``nbgrader autograde`` would, so formgrader does not list them as waiting for
    a manual grade. Cells worth points and anything a grader scored by hand are left alone."""
    for grade in submitted_notebook.grades:
        cell = grade.cell
        if (getattr(cell, "max_score", None) == 0 and cell.cell_type == "code" and grade.auto_score is None
                and grade.manual_score is None):
            grade.auto_score = 0.0
            grade.needs_manual_grade = False


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() if path.is_file() and not path.is_symlink() else None
    except (OSError, UnicodeDecodeError):
        return None


def _write_feedback(course: NbgraderCourse, out: Path, report: dict, notebook: str, submission: Path,
                    summary: ExportSummary, force: bool) -> None:
    """The kit's feedback page into nbgrader's feedback tree, with what ``nbgrader release_feedback`` needs beside it."""
    student, assignment = report["student"], report["assignment"]
    page = layout.feedback_dir(out, report["folder"], assignment) / "feedback.html"
    if not page.is_file():
        summary.skipped.append(f"{student}/{assignment}: no feedback page in {page.parent}")
        return
    dest_dir = course.feedback_dir(student, assignment)
    feedback_root = Path(course.coursedir.format_path(course.coursedir.feedback_directory, ".", ".")).resolve().parent
    if feedback_root not in dest_dir.resolve().parents:
        summary.skipped.append(f"{student}/{assignment}: the feedback folder {dest_dir} lies outside {feedback_root}")
        return
    dest = dest_dir / f"{notebook}.html"
    if dest.exists() and not force and MARK not in (dest.read_text(encoding="utf-8", errors="replace")):
        summary.skipped.append(f"{student}/{assignment}: {dest} was not written by the kit (nbgrader generate_feedback's?) "
                               "and was kept; pass --force to replace it with the kit's page")
        return
    dest_dir.mkdir(parents=True, exist_ok=True)
    text = page.read_text(encoding="utf-8")
    text = text.replace("<head>", "<head>" + MARK, 1) if MARK not in text else text
    tmp = dest_dir / f".{notebook}.html.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(dest)
    for name in ("timestamp.txt", "submission_secret.txt"):
        if (submission / name).is_file():
            shutil.copyfile(submission / name, dest_dir / name)
    if not (submission / "submission_secret.txt").is_file():
        summary.skipped.append(f"{student}/{assignment}: no submission_secret.txt in {submission} (not collected by "
                               "`nbgrader collect`?): nbgrader release_feedback needs it")
    summary.feedback.append(dest)


@contextlib.contextmanager
def _alembic_on_path():
    """nbgrader runs the ``alembic`` script to stamp a new database; where the kit runs from a virtual environment that
    is not on PATH (``.venv/bin/coursekit``), put the environment's scripts on it for that time."""
    here = Path(sys.executable).parent
    if shutil.which("alembic") is None and (here / "alembic").is_file():
        old = os.environ.get("PATH", "")
        os.environ["PATH"] = str(here) + os.pathsep + old
        try:
            yield
        finally:
            os.environ["PATH"] = old
    else:
        yield


def export_to_nbgrader(course: NbgraderCourse, out: str | Path, reports: list[dict], force: bool = False) -> ExportSummary:
    """Write the points of ``reports`` (graded into ``out`` from ``course.submitted``) into the course's gradebook
    database and the kit's feedback pages into its feedback tree (see the module's docstring)."""
    from nbgrader.api import Gradebook

    out = Path(out)
    summary = ExportSummary()
    with _alembic_on_path(), Gradebook(course.db_url, course_id=course.course_id or "default_course") as gb:
        for rep in reports:
            student, assignment = rep["student"], rep["assignment"]
            submission = course.submitted / student / assignment
            try:
                inside = submission.resolve().parent.parent == course.submitted.resolve()
            except OSError:
                inside = False
            if not inside or not submission.is_dir():
                summary.skipped.append(f"{student}/{assignment}: not a submission of {course.submitted} (given "
                                       "beside the course's submissions?); its points were not written")
                continue
            nb_path = Path(rep["notebook"]) if rep.get("notebook") else None
            notebook = _notebook_name(gb, assignment, nb_path)
            cells = _ensure_cells(gb, assignment, notebook, summary)
            gb.update_or_create_student(student)
            timestamp = _read(submission / "timestamp.txt")
            gb.update_or_create_submission(assignment, student, **({"timestamp": timestamp} if timestamp else {}))
            try:
                gb.find_submission_notebook(notebook, assignment, student)
            except Exception:  # noqa: BLE001 - MissingEntry: the submission was made before this notebook existed
                from nbgrader.api import SubmittedNotebook

                gb.db.add(SubmittedNotebook(notebook=gb.find_notebook(notebook, assignment),
                                            assignment=gb.find_submission(assignment, student)))
                gb.db.commit()
            for test in rep["tests"]:
                name = cells.get(test.get("id"))
                if name is None:
                    continue
                grade = _grade_row(gb, name, notebook, assignment, student)
                grade.auto_score = float(test["points"])
                grade.needs_manual_grade = False
            _settle_zero_point_tests(gb.find_submission_notebook(notebook, assignment, student))
            gb.db.commit()
            summary.students += 1
            _write_feedback(course, out, rep, notebook, submission, summary, force)
    return summary


DEFAULT_OUT = "coursekit-grades"  # the kit's own grading output, inside the course folder unless -o says otherwise


def grade_nbgrader_course(folder: str | Path, out: str | Path | None = None, assignments: list[str] | None = None,
                          jobs: int = 1, options=None, log=None, progress: bool = True):
    """Grade the course's ``submitted/`` with the kit (``engine.grade_batch``, into ``out``, default
    ``DIR/coursekit-grades``) and write the results into the course (``export_to_nbgrader``); returns
    (course, reports, ExportSummary). A batch stopped by a signal raises ``GradingInterrupted`` before anything is
    written into nbgrader's database, so the database only ever holds complete batches' points."""
    from .engine import GradeOptions, grade_batch

    course = open_course(folder)
    out = Path(out) if out else course.root / DEFAULT_OUT
    options = options or GradeOptions()
    reports = grade_batch([course.submitted], out, assignments, jobs=jobs, options=options, progress=progress, log=log)
    summary = export_to_nbgrader(course, out, reports, force=options.force)
    return course, reports, summary
