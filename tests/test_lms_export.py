"""The gradebook's LMS exports (Canvas's and Moodle's grade-import CSV) with the students' IDs, and Gradescope's export
of submissions read by ``coursekit grade`` (the hybrid pattern's final grading), on the toy kit.

A student's ID comes from Gradescope's ``submission_metadata.yml``, the notebook's ``STUDENT_ID`` cell or the zip name
``coursekit submit`` writes (``<ID>_<Name>.zip``); a student without one has an empty ID cell, never a made-up one.
"""

from __future__ import annotations

import csv
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from coursekit.grading.engine import GradeOptions, grade_batch, strong_isolation_available
from coursekit.grading.gradebook import MOODLE, id_from_name, notebook_student_id
from coursekit.grading.submissions import discover

TOYKIT = Path(__file__).parent / "fixtures" / "toykit"
HEAD = "import torch\nimport torch.nn.functional as F\n"
HONEST = "def one_hot_pixels(x, k):\n    return F.one_hot(x, k).float()\n"
WRONG = "def one_hot_pixels(x, k):\n    return F.one_hot((x + 1) % k, k).float()\n"
METADATA = """submission_101:
  :submitters:
  - :name: Grace Hopper
    :sid: 'g-0042'
    :email: grace@example.edu
  :created_at: 2026-12-01 10:00:00.000000000 +00:00
  :score: 4.0
submission_102:
  :submitters:
  - :name: Alan Turing
    :sid: '1912'
    :email: alan@example.edu
  - :name: Joan Clarke
    :sid: '1917'
    :email: joan@example.edu
"""


def _nb(path: Path, code: str = HONEST, student_id: str | None = None) -> Path:
    nb = new_notebook(metadata={"coursekit": {"assignment": "toy"}})
    cells = [new_code_cell(HEAD), new_code_cell(code)]
    if student_id is not None:
        cells.insert(0, new_code_cell(f'STUDENT_NAME = "Someone"\nSTUDENT_ID = "{student_id}"\n'))
    nb.cells = cells
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_ids_come_from_zip_names_and_name_cells_only_where_they_are(tmp_path):
    assert id_from_name("s1234567_Ada_Lovelace") == "s1234567" and id_from_name("2024-17_Bob") == "2024-17"
    for name in ("alice_smith", "alice", "1234", "s1234567_", "_Ada", "s12_34"):
        assert id_from_name(name) == "", name
    assert notebook_student_id(_nb(tmp_path / "a.ipynb", student_id="u777")) == "u777"
    assert notebook_student_id(_nb(tmp_path / "b.ipynb")) == ""  # no name cell
    bad = tmp_path / "c.ipynb"
    bad.write_text("not a notebook")
    assert notebook_student_id(bad) == "" and notebook_student_id(None) == ""


def _export(folder: Path) -> Path:
    """Gradescope's export of the toy assignment's submissions: two submissions (one of a group) and the metadata."""
    _nb(folder / "submission_101" / "toy.ipynb")
    _nb(folder / "submission_102" / "homework.ipynb", WRONG)
    (folder / "submission_metadata.yml").write_text(METADATA)
    return folder


def test_gradescopes_export_of_submissions_is_found_with_names_and_ids(tmp_path):
    found = discover([_export(tmp_path / "assignment_1_export")], ["toy"], known=["toy"])
    by = {s.student: s for s in found.submissions}
    assert set(by) == {"Grace Hopper", "Alan Turing & Joan Clarke"}
    assert by["Grace Hopper"].student_id == "g-0042" and by["Alan Turing & Joan Clarke"].student_id == "1912"
    assert by["Alan Turing & Joan Clarke"].notebook.name == "homework.ipynb"  # the only notebook, whatever its name
    # as Gradescope hands it out: a zip of the export folder
    shutil.make_archive(str(tmp_path / "export"), "zip", tmp_path, "assignment_1_export")
    found = discover([tmp_path / "export.zip"], ["toy"], unzip_into=tmp_path / "unz", known=["toy"])
    assert {s.student: s.student_id for s in found.submissions} == {"Grace Hopper": "g-0042", "Alan Turing & Joan Clarke": "1912"}
    # unreadable metadata: the folders are students, by their names (nothing is lost, nothing is made up)
    (tmp_path / "assignment_1_export" / "submission_metadata.yml").write_text(":\n  - [unclosed")
    found = discover([tmp_path / "assignment_1_export"], ["toy"], known=["toy"])
    assert {s.student: s.student_id for s in found.submissions} == {"submission_101": "", "submission_102": ""}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSEKIT_ROOT", str(TOYKIT))
    tmp = tmp_path_factory.mktemp("lms")
    subs = tmp / "class"
    subs.mkdir()
    with zipfile.ZipFile(subs / "s1815_Ada_Lovelace.zip", "w") as z:  # coursekit submit's zip: the ID in its name
        z.write(_nb(tmp / "src" / "ada.ipynb"), "toy/toy.ipynb")
    _nb(subs / "bea" / "toy.ipynb", WRONG, student_id="u777")  # the ID in the notebook's name cell
    _nb(subs / "=cal" / "toy.ipynb")  # no ID anywhere; a name a spreadsheet would run
    out = tmp / "out"
    opts = GradeOptions(profile="smoke", call_timeout=20, insecure=not strong_isolation_available())
    grade_batch([subs], out, ["toy"], jobs=2, options=opts, progress=False)
    export_out = tmp / "out-export"
    grade_batch([_export(tmp / "export")], export_out, ["toy"], jobs=2, options=opts, progress=False)
    yield out, export_out, subs
    mp.undo()


def _read(path: Path) -> list[list[str]]:
    return list(csv.reader(open(path, encoding="utf-8")))


def test_canvas_import_has_its_columns_the_ids_and_the_points_possible(graded):
    out, _, _ = graded
    rows = _read(out / "lms_grades.csv")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "toy"]
    assert rows[1][0] == "Points Possible" and float(rows[1][5]) == 4
    by = {r[0]: r for r in rows[2:]}
    assert set(by) == {"s1815_Ada_Lovelace", "bea", "'=cal"}
    assert (by["s1815_Ada_Lovelace"][2], float(by["s1815_Ada_Lovelace"][5])) == ("s1815", 4)
    assert (by["bea"][2], float(by["bea"][5])) == ("u777", 2)
    assert by["'=cal"][2] == "" and float(by["'=cal"][5]) == 4  # no ID: left empty for the instructor to match
    assert all(r[1] == r[3] == r[4] == "" for r in rows[2:])  # Canvas's own number, the login and section: not ours to fill


def test_moodle_import_has_the_id_number_and_a_column_per_assignment(graded):
    out, _, _ = graded
    rows = _read(out / MOODLE)
    assert rows[0] == ["ID number", "Full name", "toy"]
    by = {r[1]: r for r in rows[1:]}
    assert by["s1815_Ada_Lovelace"][0] == "s1815" and by["bea"][0] == "u777" and by["'=cal"][0] == ""
    assert float(by["bea"][2]) == 2 and len(rows) == 4  # no points row: Moodle takes the maximum from the grade item
    gradebook = {r["student"]: r for r in csv.DictReader(open(out / "gradebook.csv", encoding="utf-8"))}
    assert gradebook["bea"]["student_id"] == "u777" and gradebook["s1815_Ada_Lovelace"]["student_id"] == "s1815"


def test_gradescopes_export_graded_by_coursekit_grade_keeps_the_ids(graded):
    _, export_out, _ = graded
    rows = _read(export_out / MOODLE)
    assert sorted(rows[1:]) == [["1912", "Alan Turing & Joan Clarke", "2.0"], ["g-0042", "Grace Hopper", "4.0"]]
    canvas = {r[2]: r for r in _read(export_out / "lms_grades.csv")[2:]}
    assert float(canvas["g-0042"][5]) == 4 and float(canvas["1912"][5]) == 2
