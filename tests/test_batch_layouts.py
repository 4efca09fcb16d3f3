"""What a batch holds and what grading writes where, on the toy kit plus a second, quick assignment.

The layouts instructors use (nbgrader's submitted/, loose notebooks, a zip of the whole class, a folder of zips with
a corrupt one, an empty folder) are found right or refused with a clear message; each student is graded only for
what they handed in ("not submitted" otherwise, with no report or feedback page); what goes back to students is a tree
of its own that holds no hidden material; the gradebook has one row per student, flags students of earlier runs,
and comes with an LMS export and per-test pass rates.
"""

import csv
import json
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from coursekit import __version__, cli
from coursekit.grading import layout
from coursekit.grading.engine import GradeOptions, grade_batch, strong_isolation_available
from coursekit.grading.gradebook import NOT_SUBMITTED, STALE
from coursekit.grading.reports import SMOKE_NOTE, SMOKE_RUN_NOTE, reference_caption, write_feedback, write_gradescope
from coursekit.grading.submissions import NothingToGrade, discover
from toy_batch import TOYKIT, toy_kit_with

HEAD = "import torch\nimport torch.nn.functional as F\n"
HONEST = "def one_hot_pixels(x, k):\n    return F.one_hot(x, k).float()\n"
KNOWN = ["second", "toy"]
# a second assignment whose graders need no student code; its rubric lists test_b.py before test_a.py (pytest runs a first)
SECOND_RUBRIC = {"assignment": "second", "tests": {
    "test_b.py::test_first_in_the_notebook": {"points": 1, "name": "First in the notebook"},
    "test_a.py::test_second_in_the_notebook": {"points": 2, "name": "Second in the notebook"}}}


def _nb(path: Path, assignment: str | None = "toy", code: str = HONEST) -> Path:
    nb = new_notebook(metadata={"coursekit": {"assignment": assignment}} if assignment else {})
    nb.cells = [new_code_cell(HEAD), new_code_cell(code)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _found(found) -> dict[str, list[str]]:
    """student -> the assignments found for them (sorted)."""
    got = {s.student: [] for s in found.students}
    for s in found.submissions:
        got[s.student].append(s.assignment)
    return {k: sorted(v) for k, v in got.items()}


# --- finding what a batch holds (no grading) -----------------------------------------------------------------------
def test_loose_notebooks_are_one_student_each(tmp_path):
    _nb(tmp_path / "class" / "alice.ipynb", "toy")
    _nb(tmp_path / "class" / "bob.ipynb", "second")
    _nb(tmp_path / "class" / "carol_toy.ipynb", None)  # no metadata: the name says which assignment, and whose
    _nb(tmp_path / "class" / "carol_second.ipynb", None)
    found = discover([tmp_path / "class"], KNOWN, known=KNOWN)
    assert _found(found) == {"alice": ["toy"], "bob": ["second"], "carol": ["second", "toy"]}
    assert "found 3 student(s); submissions: second 2, toy 2" in found.summary()
    # one notebook given on its own is one student, too
    assert _found(discover([tmp_path / "class" / "bob.ipynb"], KNOWN, known=KNOWN)) == {"bob": ["second"]}


def test_nbgrader_layout_grades_what_each_student_handed_in(tmp_path):
    sub = tmp_path / "submitted"
    _nb(sub / "alice" / "toy" / "toy.ipynb")
    _nb(sub / "bob" / "second" / "second.ipynb", "second")
    (sub / "carol" / "toy").mkdir(parents=True)  # nbgrader's folder for toy, without its notebook
    found = discover([sub], KNOWN, known=KNOWN)
    assert _found(found) == {"alice": ["toy"], "bob": ["second"], "carol": ["toy"]}
    [carol] = [s for s in found.submissions if s.student == "carol"]
    assert carol.notebook is None and "expected a notebook toy.ipynb or toy/toy.ipynb in carol/ (found no notebook)" in carol.problem
    # -a toy: bob handed in no toy, so he has nothing to grade (not a 0)
    assert _found(discover([sub], ["toy"], known=KNOWN)) == {"alice": ["toy"], "bob": [], "carol": ["toy"]}
    # a student's folder given on its own
    assert _found(discover([sub / "alice"], KNOWN, known=KNOWN)) == {"alice": ["toy"]}


def test_a_zip_of_the_whole_class(tmp_path):
    with zipfile.ZipFile(tmp_path / "class.zip", "w") as z:
        z.write(_nb(tmp_path / "src" / "a.ipynb", "toy"), "course/alice/toy.ipynb")
        z.write(_nb(tmp_path / "src" / "b.ipynb", "second"), "course/bob/second/second.ipynb")
        z.write(_nb(tmp_path / "src" / "d.ipynb", "toy"), "course/dan.ipynb")
        inner = tmp_path / "src" / "erin.zip"
        with zipfile.ZipFile(inner, "w") as zi:
            zi.write(tmp_path / "src" / "a.ipynb", "toy.ipynb")
        z.write(inner, "course/erin.zip")  # a student's zip inside the class's zip
    found = discover([tmp_path / "class.zip"], KNOWN, unzip_into=tmp_path / "out" / ".unzipped", known=KNOWN)
    assert _found(found) == {"alice": ["toy"], "bob": ["second"], "dan": ["toy"], "erin": ["toy"]}
    # a zip of loose notebooks
    with zipfile.ZipFile(tmp_path / "loose.zip", "w") as z:
        z.write(tmp_path / "src" / "a.ipynb", "alice.ipynb")
        z.write(tmp_path / "src" / "b.ipynb", "bob.ipynb")
    found = discover([tmp_path / "loose.zip"], KNOWN, unzip_into=tmp_path / "out" / ".unzipped", known=KNOWN)
    assert _found(found) == {"alice": ["toy"], "bob": ["second"]}
    # one student's zip stays one student, named after the zip
    with zipfile.ZipFile(tmp_path / "zoe.zip", "w") as z:
        z.write(tmp_path / "src" / "a.ipynb", "toy.ipynb")
        z.write(tmp_path / "src" / "b.ipynb", "second.ipynb")
    assert _found(discover([tmp_path / "zoe.zip"], KNOWN, unzip_into=tmp_path / "out" / ".unzipped", known=KNOWN)) == {
        "zoe": ["second", "toy"]}


def test_a_corrupt_zip_costs_only_its_author_and_is_said(tmp_path):
    folder = tmp_path / "zips"
    folder.mkdir()
    for name in ("alice", "bob"):
        with zipfile.ZipFile(folder / f"{name}.zip", "w") as z:
            z.write(_nb(tmp_path / "src" / f"{name}.ipynb", "toy"), "toy.ipynb")
    (folder / "carol.zip").write_bytes(b"PK\x03\x04 truncated")
    found = discover([folder], KNOWN, unzip_into=tmp_path / "out" / ".unzipped", known=KNOWN)
    assert _found(found) == {"alice": ["toy"], "bob": ["toy"], "carol": []}
    [carol] = [s for s in found.students if s.student == "carol"]
    assert carol.problem.startswith("the zip could not be opened: carol.zip is not a zip file that can be opened")
    assert "carol: the zip could not be opened" in found.summary()
    # with one assignment graded, the problem is that assignment's grade (0, with the message)
    [one] = [s for s in discover([folder], ["toy"], unzip_into=tmp_path / "out" / ".unzipped", known=KNOWN).submissions
             if s.student == "carol"]
    assert one.assignment == "toy" and one.problem.startswith("the zip could not be opened")


def test_notebooks_that_name_no_assignment_or_too_many_are_said(tmp_path):
    _nb(tmp_path / "s" / "ann" / "Untitled.ipynb", None)
    _nb(tmp_path / "s" / "ann" / "notes.ipynb", None)
    _nb(tmp_path / "s" / "ben" / "toy.ipynb")
    _nb(tmp_path / "s" / "ben" / "toy" / "toy.ipynb")  # nbgrader's slot wins over the loose copy
    _nb(tmp_path / "s" / "dee" / "toy.ipynb")
    _nb(tmp_path / "s" / "dee" / "old" / "toy.ipynb")  # an older copy deeper down: the top one is taken
    _nb(tmp_path / "s" / "cat" / "toy (1).ipynb")
    _nb(tmp_path / "s" / "cat" / "toy_final.ipynb")
    found = discover([tmp_path / "s"], KNOWN, known=KNOWN)
    by = {s.student: s for s in found.students}
    assert by["ann"].problem == ("found Untitled.ipynb, notes.ipynb, which name no assignment in ann/: "
                                "name each notebook after its assignment (second.ipynb or toy.ipynb)")
    [ben] = [s for s in found.submissions if s.student == "ben"]
    assert ben.notebook.relative_to(tmp_path).as_posix() == "s/ben/toy/toy.ipynb"
    [dee] = [s for s in found.submissions if s.student == "dee"]
    assert dee.notebook.relative_to(tmp_path).as_posix() == "s/dee/toy.ipynb" and not dee.problem
    [cat] = [s for s in found.submissions if s.student == "cat"]
    assert cat.notebook is None and cat.problem.startswith("found several notebooks for toy in cat/")


def test_an_empty_folder_is_an_error_that_says_so(tmp_path, capsys, monkeypatch):
    (tmp_path / "empty").mkdir()
    (tmp_path / "only_text").mkdir()
    (tmp_path / "only_text" / "readme.txt").write_text("hi")
    for folder in ("empty", "only_text"):
        with pytest.raises(NothingToGrade, match="found nothing to grade in .*: no student folder, zip or notebook"):
            discover([tmp_path / folder], KNOWN, known=KNOWN)
    monkeypatch.setenv("COURSEKIT_ROOT", str(TOYKIT))
    assert cli.main(["grade", str(tmp_path / "empty"), "-o", str(tmp_path / "out"), "--insecure"]) == 2
    err = capsys.readouterr().err
    assert "coursekit grade: error: found nothing to grade in" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "gradebook.csv").exists()


def test_reference_captions_are_plain_words():
    assert reference_caption("samples_of_the_reference") == "the reference model's samples"
    assert reference_caption("completions_of_the_reference_50pct_covered").startswith(
        "the reference model's completions, bottom half covered")
    assert reference_caption("something_else") == "something else"


# --- a graded batch -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    root = tmp_path_factory.mktemp("kit")
    toy_kit_with(root, "second", SECOND_RUBRIC, {"test_a.py": "def test_second_in_the_notebook():\n    assert False, 'the second part is wrong'\n",
                                                 "test_b.py": "def test_first_in_the_notebook():\n    pass\n"})
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSEKIT_ROOT", str(root))
    yield root
    mp.undo()


def _grade(inputs, out, log=None, assignments=None):
    return grade_batch(inputs, out, assignments, jobs=2, options=GradeOptions(profile="smoke", call_timeout=20,
                                                                              insecure=not strong_isolation_available()),
                       progress=False, log=log)


def _rows(out: Path) -> dict[str, dict]:
    return {r["student"]: r for r in csv.DictReader(open(out / "gradebook.csv", encoding="utf-8"))}


@pytest.fixture(scope="module")
def graded(kit, tmp_path_factory):
    subs = tmp_path_factory.mktemp("class")
    _nb(subs / "alice" / "toy.ipynb")
    _nb(subs / "alice" / "second.ipynb", "second")
    _nb(subs / "bob.ipynb", "second")  # a loose notebook beside student folders
    (subs / "carol.zip").write_bytes(b"not a zip")
    out = tmp_path_factory.mktemp("out")
    said = []
    reports = _grade([subs], out, said.append)
    return subs, out, reports, said


def test_only_what_was_handed_in_is_graded(graded):
    subs, out, reports, said = graded
    assert sorted((r["student"], r["assignment"]) for r in reports) == [("alice", "second"), ("alice", "toy"), ("bob", "second")]
    assert "found 3 student(s); submissions: second 2, toy 1" in said[0]
    assert "carol: the zip could not be opened" in said[0]
    rows = _rows(out)
    assert set(rows) == {"alice", "bob", "carol"}  # one row per student
    assert rows["bob"]["toy"] == NOT_SUBMITTED and float(rows["bob"]["second"]) == 1
    assert rows["carol"]["toy"] == rows["carol"]["second"] == NOT_SUBMITTED
    assert rows["carol"]["problem"].startswith("the zip could not be opened: carol.zip")
    assert float(rows["alice"]["toy"]) == 4 and float(rows["alice"]["total"]) == 5 and float(rows["alice"]["max_points"]) == 7
    assert rows["alice"]["kit_version"] == __version__ and rows["alice"]["graded_at"].endswith("Z")
    assert not (out / "feedback" / "bob" / "toy").exists() and not (out / "staff" / "bob" / "toy").exists()
    index = (out / "feedback" / "bob" / "index.html").read_text()
    assert "not submitted" in index and 'href="second/feedback.html"' in index
    assert "the zip could not be opened" in (out / "feedback" / "carol" / "index.html").read_text()


def test_the_students_tree_holds_nothing_hidden(graded, kit):
    _, out, _, _ = graded
    student_files = [p for p in (out / "feedback").rglob("*") if p.is_file()]
    assert {p.name for p in student_files} == {"index.html", "feedback.html", "results.json"}
    hidden_source = [line.strip() for f in (kit / "autograder").rglob("*.py") for line in f.read_text().splitlines()
                     if len(line.strip()) > 25]
    expected = (kit / "autograder" / "toy" / "expected.json").read_text()
    for p in student_files:
        text = p.read_text(encoding="utf-8")
        for line in hidden_source:
            assert line not in text, (p, line)
        assert "secret_argmax" not in text and '"one_hot"' not in text and expected not in text and "[[1, 0, 0]" not in text
        assert "assert " not in text and "Traceback" not in text
    # the staff's tree has the reports and logs
    for a in ("toy", "second"):
        assert {p.name for p in (out / "staff" / "alice" / a).iterdir()} >= {"report.json", "grader.log", "artifacts"}
    assert "assert" in (out / "staff" / "alice" / "second" / "grader.log").read_text()


def test_feedback_follows_the_notebooks_order_and_says_the_run_was_short(graded):
    _, out, reports, _ = graded
    rep = next(r for r in reports if r["student"] == "alice" and r["assignment"] == "second")
    assert [t["name"] for t in rep["tests"]] == ["First in the notebook", "Second in the notebook"]  # the rubric's order
    page = (out / "feedback" / "alice" / "second" / "feedback.html").read_text()
    assert page.index("First in the notebook") < page.index("Second in the notebook")
    gs = json.loads((out / "feedback" / "alice" / "second" / "results.json").read_text())
    assert [t["name"] for t in gs["tests"]] == ["First in the notebook", "Second in the notebook"]
    toy_page = (out / "feedback" / "alice" / "toy" / "feedback.html").read_text()
    assert "smoke-profile run" in toy_page and "your one-hot rows" in toy_page
    header = next(csv.reader(open(out / "gradebook.csv", encoding="utf-8")))
    assert header.index("second: First in the notebook") < header.index("second: Second in the notebook")


def test_lms_export_and_pass_rates(graded):
    _, out, _, _ = graded
    lms = list(csv.reader(open(out / "lms_grades.csv", encoding="utf-8")))
    assert lms[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"] and set(lms[0][5:]) == {"toy", "second"}
    col = {name: i for i, name in enumerate(lms[0])}
    assert lms[1][0] == "Points Possible" and float(lms[1][col["toy"]]) == 4 and float(lms[1][col["second"]]) == 3
    by = {row[0]: row for row in lms[2:]}
    assert float(by["alice"][col["toy"]]) == 4 and by["bob"][col["toy"]] == "" and by["carol"][col["second"]] == ""
    rates = list(csv.DictReader(open(out / "test_pass_rates.csv", encoding="utf-8")))
    second = [r for r in rates if r["assignment"] == "second"]
    assert [r["name"] for r in second] == ["First in the notebook", "Second in the notebook"]
    assert second[0]["graded"] == "2" and float(second[0]["pass_rate"]) == 1 and float(second[1]["pass_rate"]) == 0
    summary = (out / "summary.html").read_text()
    assert "Second in the notebook" in summary and "0 / 2" in summary


def test_a_student_left_out_of_the_next_run_is_flagged_and_resuming_skips_the_done(graded, kit, tmp_path):
    subs, out, _, _ = graded
    out2 = tmp_path / "out"
    shutil.copytree(out, out2)
    fewer = tmp_path / "fewer"
    shutil.copytree(subs, fewer)
    (fewer / "bob.ipynb").unlink()
    (fewer / "alice" / "second.ipynb").unlink()
    said = []
    again = _grade([fewer], out2, said.append)
    assert all(r.get("skipped") for r in again)  # found where they now live: nothing graded again
    rows = _rows(out2)
    assert rows["bob"]["status"] == STALE and rows["alice"]["status"] == ""
    assert any("bob" in m and "not in these inputs" in m for m in said)
    assert "bob" not in {row[0] for row in csv.reader(open(out2 / "lms_grades.csv", encoding="utf-8"))}
    # alice no longer hands in 'second': its earlier grade is gone, not kept
    assert rows["alice"]["second"] == NOT_SUBMITTED and not (out2 / "feedback" / "alice" / "second").exists()
    assert any("alice: second is no longer among the inputs" in m for m in said)


def test_an_output_in_the_older_layout_is_graded_again_and_said(kit, tmp_path):
    _nb(tmp_path / "subs" / "dora" / "second.ipynb", "second")
    out = tmp_path / "out"
    (out / "dora" / "second").mkdir(parents=True)
    (out / "dora" / "second" / "report.json").write_text("{}")
    said = []
    [rep] = _grade([tmp_path / "subs"], out, said.append)
    assert not rep.get("skipped") and (out / "staff" / "dora" / "second" / "report.json").is_file()
    assert any("in the layout before feedback/ and staff/" in m and "graded again" in m for m in said)


def test_smoke_note_only_for_the_students_smoke_pictures(tmp_path):
    from matplotlib.figure import Figure

    Figure(figsize=(0.2, 0.2)).savefig(tmp_path / "pic.png")
    test = {"id": "t::a", "name": "A", "points": 0, "max_points": 1, "passed": False, "details": True, "message": "m",
            "attachments": [{"title": "your samples", "file": "pic.png"}]}
    report = {"student": "s", "assignment": "toy", "notebook": None, "profile": "smoke", "isolation": "bubblewrap", "device": "cpu",
              "versions": {"torch": "2"}, "points": 0, "max_points": 1, "problem": "", "total_seconds": 1.0, "tests": [test]}
    esc = SMOKE_NOTE.replace("'", "&#x27;")
    for profile, attachments, shown in (("smoke", test["attachments"], True), ("full", test["attachments"], False), ("smoke", [], False)):
        write_feedback({**report, "profile": profile, "tests": [{**test, "attachments": attachments}]}, tmp_path / "f.html", tmp_path)
        page = (tmp_path / "f.html").read_text()
        assert (esc in page) is shown, (profile, attachments)
        assert ("<figcaption>your samples</figcaption>" in page) is bool(attachments)
    for profile in ("smoke", "full"):  # Gradescope's output says how short a smoke run is, pictures or not
        write_gradescope({**report, "profile": profile, "total_seconds": 1.0}, tmp_path / "results.json")
        assert (SMOKE_RUN_NOTE in json.loads((tmp_path / "results.json").read_text())["output"]) is (profile == "smoke")


def test_the_grade_command_says_what_it_found_and_where_things_are(graded, kit, tmp_path, capsys):
    subs, _, _, _ = graded
    out = tmp_path / "out"
    args = ["grade", str(subs), "-o", str(out), "-a", "second", "-j", "2", "--profile", "smoke"]
    assert cli.main(args + ([] if strong_isolation_available() else ["--insecure"])) == 0
    printed = capsys.readouterr().out
    assert "found 3 student(s); submissions: second 3" in printed  # carol's corrupt zip is her grade for 'second'
    assert "carol (second): the zip could not be opened: carol.zip" in printed
    assert f"for the students (only this folder): {out / 'feedback'}/<folder>/" in printed and f"staff only: {out / 'staff'}" in printed
    rows = _rows(out)
    assert sorted(rows) == ["alice", "bob", "carol"] and "toy" not in rows["alice"]  # -a second: only its column
    assert float(rows["carol"]["second"]) == 0 and rows["carol"]["problem"].startswith("the zip could not be opened")


def test_what_was_found_is_printed_without_control_characters(tmp_path):
    (tmp_path / "class" / "\x1b[31mred").mkdir(parents=True)
    (tmp_path / "class" / "\x1b[31mred" / "x.txt").write_text("")
    _nb(tmp_path / "class" / "ok.ipynb")
    summary = discover([tmp_path / "class"], KNOWN, known=KNOWN).summary()
    assert "\x1b" not in summary and "?[31mred: found no notebook" in summary
