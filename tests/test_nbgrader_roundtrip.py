"""The round trip with nbgrader, on a course folder made with nbgrader's own commands.

The instructor generates and releases the toy assignment (its source notebook is written the way the kit's are:
a solution cell, a public check cell that is an nbgrader test cell worth 0 points, and a written answer graded by
hand); two students fetch it, one solves it and one hands it in untouched; ``nbgrader validate`` fails the untouched
one; they submit and the instructor collects. Then ``coursekit grade --nbgrader-course`` grades ``submitted/`` with the
kit (the toy graders, COURSEKIT_ROOT) and nbgrader's database holds the kit's points beside the hand-graded cell:
``nbgrader export`` shows them, and ``nbgrader release_feedback`` / ``fetch_feedback`` bring the kit's feedback page to
the student.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit import cli
from coursekit.grading.engine import strong_isolation_available
from coursekit.grading.nbgrader_course import CELL_PREFIX, MARK, NbgraderCourseError, open_course

pytestmark = pytest.mark.slow  # about a dozen nbgrader commands, each a new Python process

TOYKIT = Path(__file__).parent / "fixtures" / "toykit"
NBGRADER = [sys.executable, "-m", "nbgrader"]
COURSE = "ck101"
SOLUTION = "def one_hot_pixels(x, k):\n    ### BEGIN SOLUTION\n    return F.one_hot(x, k).float()\n    ### END SOLUTION\n"
ANSWER = "def one_hot_pixels(x, k):\n    return F.one_hot(x, k).float()\n"


def _meta(grade_id, grade=False, solution=False, locked=False, points=None):
    md = {"grade": grade, "solution": solution, "locked": locked, "grade_id": grade_id, "schema_version": 3}
    return {"nbgrader": md if points is None else {**md, "points": points}}


def _source_notebook(path: Path) -> None:
    nb = new_notebook(metadata={"coursekit": {"assignment": "toy"},
                                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [
        new_code_cell("import torch\nimport torch.nn.functional as F\n"),
        new_code_cell(SOLUTION, metadata=_meta("one_hot_pixels", solution=True)),
        # a public check, made an nbgrader test cell worth 0 points: validate runs it and reports its failure
        new_code_cell("assert one_hot_pixels(torch.tensor([0, 2]), 3).shape == (2, 3), 'one row per pixel'",
                      metadata={"tags": ["check"], **_meta("check_one_hot", grade=True, locked=True, points=0)}),
        # a written answer the staff grade by hand in formgrader
        new_markdown_cell("Explain one-hot encoding.", metadata=_meta("explain_md", locked=True)),
        new_markdown_cell("YOUR ANSWER HERE", metadata=_meta("explain", grade=True, solution=True, points=2)),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def _config(folder: Path, exchange: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # each one's cache of their submissions (default: in $HOME, shared by every run and student) in their own folder
    (folder / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.course_id = {COURSE!r}\n"
                                               f"c.Exchange.root = {str(exchange)!r}\n"
                                               f"c.Exchange.cache = {str(folder / '.nbgrader_cache')!r}\n")


def _env() -> dict:
    """nbgrader runs `alembic` (a script of its environment's) to make a new database: the venv's bin/ on PATH."""
    env = {k: v for k, v in os.environ.items() if k != "COURSEKIT_ROOT"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def _nbgrader(cwd: Path, *args: str) -> str:
    res = subprocess.run([*NBGRADER, *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout + res.stderr


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """An nbgrader course with the toy assignment submitted by alice (solved) and bob (untouched), and the validate
    output of each notebook as the students saw it."""
    tmp = tmp_path_factory.mktemp("nbgrader")
    exchange, root = tmp / "exchange", tmp / "course"
    exchange.mkdir()
    _config(root, exchange)
    _source_notebook(root / "source" / "toy" / "toy.ipynb")
    _nbgrader(root, "generate_assignment", "toy")
    _nbgrader(root, "release_assignment", "toy")
    validated = {}
    for student in ("alice", "bob"):
        home = tmp / student
        _config(home, exchange)
        _nbgrader(home, "fetch_assignment", "toy", "--course", COURSE)
        path = home / "toy" / "toy.ipynb"
        if student == "alice":
            nb = nbformat.read(path, as_version=4)
            [answer] = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "one_hot_pixels"]
            answer.source = ANSWER
            [written] = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "explain"]
            written.source = "A colour index is a category, not a number."
            nbformat.write(nb, path)
        res = subprocess.run([*NBGRADER, "validate", str(path)], cwd=home, env=_env(), capture_output=True, text=True,
                             timeout=300)
        validated[student] = res.stdout + res.stderr
        _nbgrader(home, "submit", "toy", "--course", COURSE, "--student", student)
    _nbgrader(root, "collect", "toy")
    return {"root": root, "exchange": exchange, "tmp": tmp, "validated": validated}


@pytest.fixture(scope="module")
def graded(course):
    root = course["root"]
    # a feedback page of bob's that nbgrader made (generate_feedback): the kit must keep it
    theirs = root / "feedback" / "bob" / "toy"
    theirs.mkdir(parents=True)
    (theirs / "toy.html").write_text("<html>nbgrader's own feedback</html>")
    for name in ("timestamp.txt", "submission_secret.txt"):
        shutil.copyfile(root / "submitted" / "bob" / "toy" / name, theirs / name)
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSEKIT_ROOT", str(TOYKIT))
    args = ["grade", "--nbgrader-course", str(root), "--profile", "smoke", "--call-timeout", "20"]
    args += [] if strong_isolation_available() else ["--insecure"]
    try:
        assert cli.main(args) == 0
        yield course
    finally:
        mp.undo()


def test_validate_fails_an_untouched_notebook_and_passes_a_solved_one(course):
    untouched, solved = course["validated"]["bob"], course["validated"]["alice"]
    assert "Success! Your notebook passes all the tests." not in untouched
    # the public check failed (and the unanswered written question)
    assert "VALIDATION FAILED ON 2 CELL(S)" in untouched and "NotImplementedError" in untouched
    assert "assert one_hot_pixels(torch.tensor([0, 2]), 3).shape" in untouched
    assert "Success! Your notebook passes all the tests." in solved, solved


def test_the_gradebook_holds_the_kits_points_beside_the_hand_graded_cell(graded, capsys):
    from nbgrader.api import Gradebook

    root = graded["root"]
    rubric = json.loads((TOYKIT / "autograder" / "toy" / "rubric.json").read_text())["tests"]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", COURSE) as gb:
        cells = {c.name: c.max_score for c in gb.find_notebook("toy", "toy").grade_cells}
        # nbgrader's own cells (from generate_assignment) and one cell per rubric test
        assert cells == {"check_one_hot": 0.0, "explain": 2.0, **{CELL_PREFIX + t: float(v["points"]) for t, v in rubric.items()}}
        alice, bob = gb.find_submission("toy", "alice"), gb.find_submission("toy", "bob")
        assert alice.max_score == 2 + 4 and alice.code_score == 4 and bob.code_score == 0
        kit = {g.name: g.auto_score for g in gb.find_submission_notebook("toy", "toy", "alice").grades if g.name.startswith(CELL_PREFIX)}
        assert kit == {CELL_PREFIX + t: float(v["points"]) for t, v in rubric.items()}
        assert alice.timestamp is not None  # nbgrader's timestamp.txt, for late penalties
        # the 0-point check cell needs no grader; the written answer waits for one
        assert not gb.find_grade("check_one_hot", "toy", "toy", "alice").needs_manual_grade
        assert gb.find_grade("explain", "toy", "toy", "alice").needs_manual_grade
        # the staff grade the written answer in formgrader (here: through the same API formgrader uses)
        gb.find_grade("explain", "toy", "toy", "alice").manual_score = 1.5
        gb.db.commit()
    _nbgrader(root, "export", "--to", str(root / "grades.csv"))
    rows = {r["student_id"]: r for r in csv.DictReader(open(root / "grades.csv"))}
    assert float(rows["alice"]["raw_score"]) == 5.5 and float(rows["alice"]["max_score"]) == 6
    assert float(rows["bob"]["raw_score"]) == 0


def test_feedback_reaches_the_student_through_nbgraders_exchange(graded):
    root, tmp = graded["root"], graded["tmp"]
    page = root / "feedback" / "alice" / "toy" / "toy.html"
    assert MARK in page.read_text() and (page.parent / "timestamp.txt").is_file()
    assert (root / "feedback" / "bob" / "toy" / "toy.html").read_text() == "<html>nbgrader's own feedback</html>"
    _nbgrader(root, "release_feedback", "toy")
    _nbgrader(tmp / "alice", "fetch_feedback", "toy", "--course", COURSE, "--student", "alice")
    [fetched] = list((tmp / "alice" / "toy" / "feedback").glob("*/toy.html"))
    assert MARK in fetched.read_text() and "One-hot values" in fetched.read_text()


def test_a_second_run_adds_nothing_and_the_course_folder_is_checked(graded, tmp_path, capsys):
    from nbgrader.api import Gradebook

    from coursekit.grading.nbgrader_course import export_to_nbgrader
    from coursekit.grading.layout import report_paths

    root = graded["root"]
    course = open_course(root)
    out = root / "coursekit-grades"
    reports = [json.loads(p.read_text()) for p in report_paths(out)]
    assert sorted(r["student"] for r in reports) == ["alice", "bob"]
    os.environ["COURSEKIT_ROOT"] = str(TOYKIT)
    try:
        summary = export_to_nbgrader(course, out, reports)
    finally:
        del os.environ["COURSEKIT_ROOT"]
    assert summary.students == 2 and summary.cells_created == 0
    assert any("bob/toy" in s and "was not written by the kit" in s for s in summary.skipped)
    with Gradebook(course.db_url, COURSE) as gb:
        assert len(gb.find_notebook("toy", "toy").grade_cells) == 2 + 3
        assert gb.find_submission("toy", "alice").code_score == 4
    # not a course: clear errors, nothing written
    (tmp_path / "empty").mkdir()
    with pytest.raises(NbgraderCourseError, match="submitted"):
        open_course(tmp_path / "empty")
    assert cli.main(["grade", "--nbgrader-course", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert cli.main(["grade", "--nbgrader-course", str(root), str(tmp_path)]) == 2
    assert "give no other inputs" in capsys.readouterr().err
    assert not (tmp_path / "empty" / "gradebook.db").exists()
    shutil.rmtree(tmp_path / "empty")
