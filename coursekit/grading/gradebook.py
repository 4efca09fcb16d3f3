"""The gradebook and the instructor's summaries, built from the complete reports under ``OUT/staff`` and the roster
of the latest run (``OUT/staff/roster.json``: the students and submissions it found).

- ``OUT/gradebook.csv``: one row per student: points per assignment (or ``not submitted``, or ``not graded yet``
  where a batch was stopped), total and maximum, points per test, problems, isolation, when it was graded and by
  which kit version. A student with reports from an earlier run who is not in the latest run's inputs is kept,
  flagged in the ``status`` column (never silently): delete their folders under ``OUT/staff`` and ``OUT/feedback``
  to drop them, or grade into a fresh ``OUT``.
- ``OUT/lms_grades.csv``: Canvas's gradebook import: ``Student``, ``ID`` (Canvas's own number, left empty),
  ``SIS User ID`` (the student ID), ``SIS Login ID``, ``Section``, then points per assignment, with a ``Points Possible``
  row; only the latest run's students; an empty cell where nothing was graded.
- ``OUT/moodle_grades.csv``: Moodle's grade import (CSV): ``ID number`` (the student ID: map it to the user field
  "ID number" when importing), ``Full name``, then points per assignment; the same students and cells.
- ``OUT/test_pass_rates.csv`` and ``OUT/summary.html``: per test, in the notebook's order, how many of the class
  passed it and the mean points: which part of an assignment the class failed.
- ``OUT/feedback/<folder>/index.html``: each student's summary, with "not submitted" where they handed nothing in.

The student ID (``student_id``) is, first found: the one Gradescope's export names (``submission_metadata.yml``),
``STUDENT_ID`` in the notebook's name cell (read, never run), or the ``<ID>`` of a zip named ``<ID>_<Name>.zip`` as
``coursekit submit`` writes it (an ID holds a digit). A student without one has an empty ID cell: match them by hand.

Every student-controlled string is escaped where it lands (``reports.csv_cell``, ``html.escape``).
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import layout
from .reports import cap, collect_reports, csv_cell, isolation_label

MOODLE = layout.MOODLE
NOT_SUBMITTED = "not submitted"
NOT_GRADED = "not graded yet"
STALE = "not in the latest run's inputs"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # of this process: shards sharing OUT each write the roster
    tmp.write_text(text, encoding="utf-8", errors="replace")
    os.replace(tmp, path)


_ID_IN_NAME = re.compile(r"([A-Za-z0-9-]*[0-9][A-Za-z0-9-]*)_[^\W\d_]")  # coursekit submit's <ID>_<Name>


def id_from_name(name: str) -> str:
    """The ``<ID>`` of a name like ``s1234567_Ada_Lovelace`` (``coursekit submit``'s zip names); "" where the name is
    not of that form (an ID holds a digit, the name starts with a letter: ``alice_smith`` has no ID)."""
    m = _ID_IN_NAME.match(str(name))
    return m.group(1) if m else ""


def notebook_student_id(notebook) -> str:
    """``STUDENT_ID`` as written in a notebook's name cell (parsed, never run); "" where there is none."""
    from ..notebook import NotebookError, read_notebook
    from ..submit import SubmissionError, student_fields

    if notebook is None:
        return ""
    try:
        return cap(student_fields(read_notebook(notebook)).get("STUDENT_ID", ""), 100)
    except (NotebookError, SubmissionError, OSError, ValueError, AttributeError, TypeError):
        return ""


def student_id_of(sub) -> str:
    """A submission's student ID: the one its source names (Gradescope's export), its notebook's ``STUDENT_ID``, or
    the ``<ID>`` of its ``<ID>_<Name>`` zip or folder; "" where none is found."""
    return (getattr(sub, "student_id", "") or notebook_student_id(sub.notebook) or id_from_name(sub.student)
            or id_from_name(Path(str(sub.source)).stem))


def write_roster(out: str | Path, found, inputs=()) -> Path:
    """Record what the run found (``submissions.Found``): its students, their submissions and problems."""
    from .. import __version__

    subs: dict[str, dict] = {}
    for s in found.submissions:
        subs.setdefault(s.folder, {})[s.assignment] = s.problem
    roster = {
        "written_at": _now(),
        "kit_version": __version__,
        "inputs": [str(p) for p in inputs],
        "assignments": list(found.scope),
        "students": [{"student": s.student, "folder": s.folder, "problem": s.problem, "submitted": sorted(subs.get(s.folder, {})),
                      "student_id": getattr(s, "student_id", "") or id_from_name(s.student)} for s in found.students],
    }
    path = Path(out) / layout.STAFF / layout.ROSTER
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, json.dumps(roster, indent=1))
    return path


def read_roster(out: str | Path) -> dict | None:
    try:
        roster = json.loads((Path(out) / layout.STAFF / layout.ROSTER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return roster if isinstance(roster, dict) and isinstance(roster.get("students"), list) else None


@dataclass
class Row:
    student: str
    folder: str
    reports: dict[str, dict] = field(default_factory=dict)  # assignment -> complete report
    waiting: set[str] = field(default_factory=set)  # handed in, not graded (a stopped batch)
    problem: str = ""  # why nothing of the student's could be graded (e.g. a corrupt zip)
    stale: bool = False  # not in the latest run's inputs
    listed_id: str = ""  # the student ID the roster gives (Gradescope's export, a zip's name)

    @property
    def student_id(self) -> str:
        """The ID the reports found (Gradescope's export, the notebook's STUDENT_ID, the zip's name), else the roster's."""
        return next((str(r["student_id"]) for r in self.reports.values() if r.get("student_id")), "") or self.listed_id

    def cell(self, assignment: str):
        if assignment in self.reports:
            return self.reports[assignment]["points"]
        return NOT_GRADED if assignment in self.waiting else NOT_SUBMITTED


@dataclass
class Gradebook:
    assignments: list[str]
    max_points: dict[str, float]
    rows: list[Row]
    written_at: str
    kit_version: str

    @property
    def stale(self) -> list[Row]:
        return [r for r in self.rows if r.stale]

    def current(self) -> list[Row]:
        return [r for r in self.rows if not r.stale]


def _max_points(assignment: str, reports: list[dict]) -> float:
    from .rubric import load_rubric

    try:
        return load_rubric(assignment).total
    except (OSError, ValueError):
        return max((r["max_points"] for r in reports), default=0.0)


def build_gradebook(out: str | Path, exclude=()) -> Gradebook:
    """The gradebook of ``out``: every student of the latest run's roster and every student with a complete report
    (``exclude``: ``(folder, assignment)`` pairs whose report is out of date)."""
    from .. import __version__

    out = Path(out)
    reports = collect_reports(out, exclude)
    roster = read_roster(out)
    rows: dict[str, Row] = {}
    order: list[str] = []
    if roster:
        for s in roster["students"]:
            if not isinstance(s, dict) or not isinstance(s.get("folder"), str):
                continue
            row = rows.setdefault(s["folder"], Row(str(s.get("student", s["folder"])), s["folder"]))
            row.problem = str(s.get("problem") or "")
            row.listed_id = str(s.get("student_id") or "")
            row.waiting |= {a for a in s.get("submitted", []) if isinstance(a, str)}
        order = list(roster.get("assignments") or [])
    for r in reports:
        folder = r.get("folder") or ""
        row = rows.get(folder)
        if row is None:
            row = rows[folder] = Row(r["student"], folder, stale=roster is not None)
        row.reports[r["assignment"]] = r
    for row in rows.values():
        row.waiting -= set(row.reports)
    for a in sorted({a for row in rows.values() for a in row.reports}):
        if a not in order:
            order.append(a)
    maxes = {a: _max_points(a, [r for r in reports if r["assignment"] == a]) for a in order}
    ranked = sorted(rows.values(), key=lambda r: (r.stale, r.student.lower(), r.folder))
    return Gradebook(order, maxes, ranked, roster.get("written_at", _now()) if roster else _now(),
                     roster.get("kit_version", __version__) if roster else __version__)


def _test_columns(book: Gradebook) -> list[tuple[str, str, str]]:
    """(column, assignment, test id) for every test, in each assignment's rubric order."""
    cols: list[tuple[str, str, str]] = []
    for a in book.assignments:
        seen: dict[str, str] = {}
        for row in book.rows:
            for t in row.reports.get(a, {}).get("tests", []):
                seen.setdefault(t["id"], t["name"])
        cols += [(f"{a}: {name}", a, tid) for tid, name in seen.items()]
    return cols


def _row_problem(row: Row, several: bool) -> str:
    parts = [row.problem] if row.problem else []
    for a, r in row.reports.items():
        if r.get("problem"):
            parts.append(f"{a}: {r['problem']}" if several else r["problem"])
    return "; ".join(parts)


def _write_csv(path: Path, rows: list[list]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8", errors="replace") as f:
        w = csv.writer(f)
        for row in rows:
            w.writerow([csv_cell(c) for c in row])
    os.replace(tmp, path)


def write_gradebook_csv(book: Gradebook, path: Path) -> Path:
    tests = _test_columns(book)
    header = ["student", "folder", "student_id", *book.assignments, "total", "max_points", *[c for c, _, _ in tests], "problem", "isolation",
              "graded_at", "kit_version", "status"]
    lines = [header]
    total_max = round(sum(book.max_points.values()), 4)
    for row in book.rows:
        pts = {(a, t["id"]): t["points"] for a, r in row.reports.items() for t in r["tests"]}
        isolation = sorted({isolation_label(r) for r in row.reports.values()} - {""})
        when = max((str(r.get("graded_at", "")) for r in row.reports.values()), default="")
        versions = sorted({str(r.get("versions", {}).get("coursekit", "")) for r in row.reports.values()} - {""})
        lines.append([row.student, row.folder, row.student_id, *[row.cell(a) for a in book.assignments],
                      round(sum(r["points"] for r in row.reports.values()), 4), total_max,
                      *[pts.get((a, tid), "") for _, a, tid in tests], _row_problem(row, len(book.assignments) > 1),
                      ", ".join(isolation), when, ", ".join(versions), STALE if row.stale else ""])
    _write_csv(path, lines)
    return path


CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")  # Canvas's export; the student ID is the SIS User ID


def _points(row: Row, book: Gradebook) -> list:
    return [row.reports[a]["points"] if a in row.reports else "" for a in book.assignments]


def write_lms_csv(book: Gradebook, path: Path) -> Path:
    """Canvas's gradebook import: its identity columns (the student ID in ``SIS User ID``; Canvas's own ``ID``, the
    login and the section left empty), a column per assignment and a ``Points Possible`` row; the latest run's students
    only; a blank cell where nothing was graded (Canvas leaves that grade as it is)."""
    lines = [[*CANVAS_COLUMNS, *book.assignments], ["Points Possible", "", "", "", "", *[book.max_points[a] for a in book.assignments]]]
    for row in book.current():
        lines.append([row.student, "", row.student_id, "", "", *_points(row, book)])
    _write_csv(path, lines)
    return path


def write_moodle_csv(book: Gradebook, path: Path) -> Path:
    """Moodle's grade import (CSV): ``ID number`` (the student ID, mapped to the user field "ID number" on import),
    ``Full name``, a column per assignment (each mapped to its grade item); the latest run's students only; a blank
    cell where nothing was graded. No points row: Moodle takes the maximum from the grade item."""
    lines = [["ID number", "Full name", *book.assignments]]
    for row in book.current():
        lines.append([row.student_id, row.student, *_points(row, book)])
    _write_csv(path, lines)
    return path


@dataclass
class PassRate:
    assignment: str
    test_id: str
    name: str
    max_points: float
    graded: int  # submissions whose code ran (no problem before grading)
    passed: int
    mean_points: float

    @property
    def pass_rate(self) -> float:
        return self.passed / self.graded if self.graded else 0.0


def pass_rates(book: Gradebook) -> list[PassRate]:
    """Per test, in rubric order, over the latest run's students whose notebook could be graded."""
    rates = []
    for col, a, tid in _test_columns(book):
        results = [next(t for t in row.reports[a]["tests"] if t["id"] == tid) for row in book.current()
                   if a in row.reports and not row.reports[a].get("problem") and any(t["id"] == tid for t in row.reports[a]["tests"])]
        mx = results[0]["max_points"] if results else 0.0
        rates.append(PassRate(a, tid, col.split(": ", 1)[1], mx, len(results), sum(1 for t in results if t["passed"]),
                              round(sum(t["points"] for t in results) / len(results), 4) if results else 0.0))
    return rates


def write_pass_rates_csv(book: Gradebook, path: Path) -> Path:
    lines = [["assignment", "test", "name", "max_points", "graded", "passed", "pass_rate", "mean_points"]]
    for r in pass_rates(book):
        lines.append([r.assignment, r.test_id, r.name, r.max_points, r.graded, r.passed, round(r.pass_rate, 4), r.mean_points])
    _write_csv(path, lines)
    return path


_STYLE = """body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1.5rem; } td, th { border-bottom: 1px solid #ddd; padding: .4rem;
text-align: left; vertical-align: top; } .bar { background: #e3e3e3; width: 10rem; height: .8rem; display: inline-block; }
.bar span { background: #2b6cb0; height: 100%; display: block; } .meta { color: #666; font-size: .85rem; }
.problem { background: #fde7e9; padding: .6rem; } .missing { color: #666; font-style: italic; }"""


def write_summary_html(book: Gradebook, path: Path) -> Path:
    """The instructor's page: submissions per assignment, and per test how many passed (the class's weak parts)."""
    esc = html.escape
    current = book.current()
    parts = [f"<h1>Grading summary</h1><p class=\"meta\">latest run {esc(book.written_at)}, coursekit {esc(book.kit_version)}; "
             f"{len(current)} student(s)" + (f", and {len(book.stale)} from earlier runs not in its inputs (flagged in "
                                              f"{layout.GRADEBOOK})" if book.stale else "") + "</p>"]
    parts.append("<table><tr><th>assignment</th><th>graded</th><th>not submitted</th><th>not graded yet</th><th>mean points</th></tr>")
    for a in book.assignments:
        graded = [r.reports[a]["points"] for r in current if a in r.reports]
        mean = f"{sum(graded) / len(graded):.2f} / {book.max_points[a]:g}" if graded else "-"
        parts.append(f"<tr><td>{esc(a)}</td><td>{len(graded)}</td><td>{sum(1 for r in current if r.cell(a) == NOT_SUBMITTED)}</td>"
                     f"<td>{sum(1 for r in current if r.cell(a) == NOT_GRADED)}</td><td>{mean}</td></tr>")
    parts.append("</table>")
    rates = pass_rates(book)
    for a in book.assignments:
        parts.append(f"<h2>{esc(a)}: tests in the notebook's order</h2><table><tr><th>test</th><th>passed</th><th></th>"
                     "<th>mean points</th></tr>")
        for r in (x for x in rates if x.assignment == a):
            pct = 100 * r.pass_rate
            parts.append(f"<tr><td>{esc(cap(r.name, 200))}</td><td>{r.passed} / {r.graded}</td><td><span class=\"bar\">"
                         f"<span style=\"width: {pct:.0f}%\"></span></span> {pct:.0f}%</td><td>{r.mean_points:g} / {r.max_points:g}</td></tr>")
        parts.append("</table>")
    problems = [(r, _row_problem(r, True)) for r in current]
    problems = [(r, p) for r, p in problems if p]
    if problems:
        parts.append("<h2>Problems</h2><ul>" + "".join(f"<li>{esc(cap(r.student, 200))}: {esc(cap(p, 1000))}</li>" for r, p in problems)
                     + "</ul>")
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Grading summary</title><style>{_STYLE}</style>"
            f"</head><body>\n{''.join(parts)}\n</body></html>\n")
    _atomic_write(path, page)
    return path


def write_student_summary(book: Gradebook, row: Row, path: Path) -> Path:
    """A student's page: points per assignment with a link to its feedback, or "not submitted"."""
    esc = html.escape
    lines = []
    for a in book.assignments:
        if a in row.reports:
            r = row.reports[a]
            lines.append(f"<tr><td><a href=\"{esc(a)}/feedback.html\">{esc(a)}</a></td><td>{r['points']:g} / {r['max_points']:g}</td></tr>")
        else:
            lines.append(f"<tr><td>{esc(a)}</td><td class=\"missing\">{esc(row.cell(a))}</td></tr>")
    problem = f"<p class=\"problem\">{esc(cap(row.problem, 1000))}</p>" if row.problem else ""
    total = sum(r["points"] for r in row.reports.values())
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Grades of {esc(cap(row.student, 200))}</title>"
            f"<style>{_STYLE}</style></head><body>\n<h1>Grades of {esc(cap(row.student, 200))}</h1>\n{problem}"
            f"<table><tr><th>assignment</th><th>points</th></tr>{''.join(lines)}</table>\n"
            f"<p>total: {total:g} / {sum(book.max_points.values()):g} points (an assignment not submitted gives none)</p>\n"
            f"<p class=\"meta\">graded {esc(book.written_at)} with coursekit {esc(book.kit_version)}</p>\n</body></html>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, page)
    return path


def write_gradebook(out: str | Path, exclude=()) -> Path:
    """Write ``OUT/gradebook.csv``, the LMS export, the pass rates, the summary page and each current student's
    summary page under ``OUT/feedback``; returns the gradebook's path."""
    out = Path(out)
    book = build_gradebook(out, exclude)
    write_lms_csv(book, out / layout.LMS)
    write_moodle_csv(book, out / MOODLE)
    write_pass_rates_csv(book, out / layout.PASS_RATES)
    write_summary_html(book, out / layout.SUMMARY)
    for row in book.current():
        if row.folder:
            write_student_summary(book, row, layout.feedback_dir(out, row.folder) / "index.html")
    return write_gradebook_csv(book, out / layout.GRADEBOOK)
