"""Where ``coursekit grade`` writes what, in ``OUT``: what may go back to students apart from staff material.

::

    OUT/feedback/<folder>/index.html                 the student's summary: points per assignment, or "not submitted"
    OUT/feedback/<folder>/<assignment>/feedback.html  the feedback page, pictures embedded
    OUT/feedback/<folder>/<assignment>/results.json   Gradescope's results
    OUT/staff/<folder>/<assignment>/report.json       the full report (every message, timings, versions, the key)
    OUT/staff/<folder>/<assignment>/grader.log        the graders' log: hidden test source, asserts, reference values
    OUT/staff/<folder>/<assignment>/artifacts/        the pictures the graders made
    OUT/staff/roster.json                             the students and submissions the latest run found
    OUT/gradebook.csv, OUT/lms_grades.csv (Canvas), OUT/moodle_grades.csv, OUT/test_pass_rates.csv, OUT/summary.html
                                                     for the instructor

``<folder>`` is the student's name made safe (``submissions.safe_folder_name``). Only ``OUT/feedback/`` may be
handed to students; everything else is the staff's.
"""

from __future__ import annotations

from pathlib import Path

FEEDBACK = "feedback"
STAFF = "staff"
GRADEBOOK = "gradebook.csv"
LMS = "lms_grades.csv"  # Canvas's gradebook import
MOODLE = "moodle_grades.csv"  # Moodle's grade import
PASS_RATES = "test_pass_rates.csv"
SUMMARY = "summary.html"
ROSTER = "roster.json"
STUDENT_FILES = ("feedback.html", "results.json")  # what a student's assignment folder under feedback/ holds


def feedback_dir(out: Path, folder: str, assignment: str = "") -> Path:
    return Path(out) / FEEDBACK / folder / assignment if assignment else Path(out) / FEEDBACK / folder


def staff_dir(out: Path, folder: str, assignment: str) -> Path:
    return Path(out) / STAFF / folder / assignment


def report_path(out: Path, folder: str, assignment: str) -> Path:
    return staff_dir(out, folder, assignment) / "report.json"


def report_paths(out: Path) -> list[Path]:
    """Every report under ``OUT/staff`` (but partial ones)."""
    return sorted(p for p in (Path(out) / STAFF).glob("*/*/report.json") if not any(x.startswith(".") for x in p.parts[-3:-1]))


def old_layout_reports(out: Path) -> list[Path]:
    """Reports of the layout before ``feedback/`` and ``staff/`` (``OUT/<folder>/<assignment>/report.json``): not used."""
    out = Path(out)
    return sorted(p for p in out.glob("*/*/report.json")
                  if p.relative_to(out).parts[0] not in (FEEDBACK, STAFF) and not p.relative_to(out).parts[0].startswith("."))


def describe_outputs(out: str | Path) -> str:
    """Where a batch's outputs are, for the instructor (printed after grading)."""
    out = Path(out)
    return (f"gradebook: {out / GRADEBOOK} (one row per student); LMS imports: {out / LMS} (Canvas), {out / MOODLE} (Moodle); per-test pass rates: "
            f"{out / PASS_RATES} and {out / SUMMARY}\n"
            f"for the students (only this folder): {out / FEEDBACK}/<folder>/ (index.html, <assignment>/feedback.html and "
            f"results.json); staff only: {out / STAFF}/<folder>/<assignment>/ (report.json, grader.log, artifacts); "
            "<folder>: the student's name made safe, the gradebook's folder column")
