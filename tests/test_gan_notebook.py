"""Assignment 3's notebook: public checks on the solution and the student version, conventions, release."""

from __future__ import annotations

import nbformat

from coursekit import paths
from coursekit.checks import gan as checks
from coursekit.checks.runner import check_notebook
from coursekit.notebook import SKIP_TAGS, cell_tags, is_answer_cell, read_notebook
from coursekit.release import SOLUTION_MARKERS, solution_lines, student_notebook

SOLUTION = paths.solutions_dir() / "gan" / "gan.ipynb"
STUDENT = paths.assignments_dir() / "gan" / "gan.ipynb"


def test_public_checks_pass_on_the_solution():
    results = check_notebook(SOLUTION)
    assert [r.name for r in results] == [fn.__name__.removeprefix("check_").replace("_", " ") for fn in checks.CHECKS]
    assert all(r.passed for r in results), [r.line() for r in results if not r.passed]


def test_public_checks_say_not_implemented_on_the_student_version(tmp_path):
    student = tmp_path / "gan.ipynb"
    nbformat.write(student_notebook(read_notebook(SOLUTION)), student)
    results = check_notebook(student)
    assert len(results) == len(checks.CHECKS)
    for r in results:
        assert not r.passed and "not implemented yet" in r.message, r.line()


def test_public_checks_hold_no_solution_line():
    text = (paths.kit_root() / "coursekit" / "checks" / "gan.py").read_text(encoding="utf-8")
    leaked = [line for line in solution_lines(read_notebook(SOLUTION)) if line in text]
    assert not leaked, leaked


def test_notebook_follows_the_conventions():
    nb = read_notebook(SOLUTION)
    assert nb.metadata["coursekit"]["assignment"] == "gan"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), "grade ids must be unique"
    answers = [c for c in nb.cells if is_answer_cell(c)]
    assert len(answers) >= 7
    for c in answers:
        assert "### BEGIN SOLUTION" in c.source and '"""' in c.source, "answer cells hold a docstring and a solution region"
    for c in nb.cells:
        if c.cell_type != "code" or is_answer_cell(c):
            continue
        if "= train_gan(" in c.source or "plt." in c.source or ("check_" in c.source and "def " not in c.source):
            assert cell_tags(c) & set(SKIP_TAGS), f"cell should be tagged train/demo/check: {c.source[:80]!r}"


def test_solution_notebook_has_its_outputs():
    nb = read_notebook(SOLUTION)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 8, "the solution notebook should be saved with its outputs (curves, sample grids, comparisons)"
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    for needle in ("|grad| minimax", "final metrics (500 samples)", "spectral norm D", "trained the conditional GAN"):
        assert needle in text, needle
    assert not any(o.get("output_type") == "error" for o in outputs)


def test_student_version_is_generated_and_holds_no_solution():
    from coursekit.release import _generated

    assert STUDENT.is_file(), "run `coursekit release gan --force` to write the student version"
    text = STUDENT.read_text(encoding="utf-8")
    assert text == _generated("gan"), "assignments/gan/gan.ipynb is out of date with solutions/gan"
    for marker in SOLUTION_MARKERS:
        assert marker not in text
    nb = nbformat.reads(text, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
