"""What every assignment's notebook must do, checked once for all of them.

Public checks pass on the solution and say "not implemented yet" on the student version;
the checks hold no solution line; the notebook follows the kit's conventions (metadata,
unique grade ids, answer cells with a docstring and a solution region, training, plotting
and check cells tagged so the graders skip them); the solution is saved with its pictures
and no error; the committed student version is the generated one, with no output.
Each assignment's own file (tests/test_<name>_notebook.py) checks what only it shows.
"""

from __future__ import annotations

import importlib
import re

import nbformat
import pytest

from coursekit import paths
from coursekit.checks.runner import check_notebook
from coursekit.notebook import SKIP_TAGS, cell_tags, is_answer_cell, read_notebook
from coursekit.release import _generated, list_assignments, solution_lines, student_notebook

ASSIGNMENTS = list_assignments()
MIN_PICTURES = 6


def _solution(name):
    return paths.solutions_dir() / name / f"{name}.ipynb"


def test_the_kit_has_its_three_assignments():
    assert {"pixelrnn", "vae", "gan"} <= set(ASSIGNMENTS)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_public_checks_pass_on_the_solution(name):
    checks = importlib.import_module(f"coursekit.checks.{name}")
    results = check_notebook(_solution(name))
    assert [r.name for r in results] == [fn.__name__.removeprefix("check_").replace("_", " ") for fn in checks.CHECKS]
    assert all(r.passed for r in results), [r.line() for r in results if not r.passed]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_public_checks_say_not_implemented_on_the_student_version(name, tmp_path):
    checks = importlib.import_module(f"coursekit.checks.{name}")
    student = tmp_path / f"{name}.ipynb"
    nbformat.write(student_notebook(read_notebook(_solution(name))), student)
    results = check_notebook(student)
    assert len(results) == len(checks.CHECKS)
    for r in results:
        assert not r.passed and "not implemented yet" in r.message, r.line()


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_public_checks_hold_no_solution_line(name):
    text = (paths.kit_root() / "coursekit" / "checks" / f"{name}.py").read_text(encoding="utf-8")
    leaked = [line for line in solution_lines(read_notebook(_solution(name))) if line in text]
    assert not leaked, leaked


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_notebook_follows_the_conventions(name):
    nb = read_notebook(_solution(name))
    assert nb.metadata["coursekit"]["assignment"] == name
    assert nb.metadata["kernelspec"]["name"] == "python3"
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), "grade ids must be unique"
    answers = [c for c in nb.cells if is_answer_cell(c)]
    assert len(answers) >= 6
    for c in answers:
        assert "### BEGIN SOLUTION" in c.source and '"""' in c.source, "answer cells hold a docstring and a solution region"
    for c in nb.cells:
        if c.cell_type != "code" or is_answer_cell(c):
            continue
        calls_plot = re.search(r"\b(show_grid|show_rows|plt\.\w+)\(", c.source)
        calls_check = re.search(r"\b(check_\w+|run_all)\(", c.source) and "def " not in c.source
        calls_train = re.search(r"^\S.*\b(train|train_gan)\(", c.source, re.M) and "def train" not in c.source
        if calls_plot or calls_check or calls_train:
            assert cell_tags(c) & set(SKIP_TAGS), f"cell should be tagged train/demo/check: {c.source[:80]!r}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solution_is_saved_with_its_pictures_and_no_error(name):
    nb = read_notebook(_solution(name))
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= MIN_PICTURES, "save the solution notebook with its outputs"
    assert not [o for o in outputs if o.get("output_type") == "error"]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_check_cells_print_a_line_per_check_and_end_with_no_value(name):
    """A check cell is an nbgrader test cell worth 0 points: nbgrader reads the value it ends with as partial credit and
    warns about any value that is not a number. The saved solution shows what a student sees: one [PASS] line per check."""
    nb = read_notebook(_solution(name))
    cells = [c for c in nb.cells if c.cell_type == "code" and "check" in cell_tags(c) and "run_all(" not in c.source]
    assert cells
    for c in cells:
        calls = [line for line in c.source.splitlines() if re.match(r"check_\w+\(globals\(\)\)", line)]
        assert not [o for o in c.outputs if o.output_type == "execute_result"], c.source
        printed = "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream")
        assert printed.count("[PASS] ") == len(calls) > 0, (c.source, printed)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_student_version_is_generated_and_has_no_output(name):
    path = paths.assignments_dir() / name / f"{name}.ipynb"
    assert path.is_file(), f"run `coursekit release {name} --force` to write the student version"
    text = path.read_text(encoding="utf-8")
    assert text == _generated(name), f"assignments/{name}/{name}.ipynb is out of date with solutions/{name}"
    nb = nbformat.reads(text, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_student_version_speaks_to_a_student_with_the_release(name):
    """It says how it is graded, points to nothing the release lacks, carries no state of the reference run,
    and keeps a student's laptop fast (one torch thread on a CPU, as small networks run faster that way)."""
    nb = read_notebook(paths.assignments_dir() / name / f"{name}.ipynb")
    intro = nb.cells[0].source
    assert "**How your notebook is graded.**" in intro
    assert ("cells tagged `train`, `demo` or `check` are skipped, and top-level experiment code you add (training runs, plots) "
            "is skipped too, so it cannot cost you points") in intro
    assert f"coursekit submit {name}.ipynb" in intro
    text = "\n".join(c.source for c in nb.cells)
    assert "benchmarks/" not in text and "saved with this notebook" not in text
    assert "widgets" not in nb.metadata and not any("execution" in c.metadata for c in nb.cells)
    assert "torch.set_num_threads(1)" in nb.cells[2].source
