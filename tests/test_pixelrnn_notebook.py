"""Assignment 1's notebook: public checks on the solution and the student version, and the release."""

from __future__ import annotations

import re

import nbformat
import pytest

from coursekit import paths
from coursekit.checks import pixelrnn as checks
from coursekit.checks.runner import check_notebook
from coursekit.notebook import SKIP_TAGS, cell_tags, is_answer_cell, read_notebook
from coursekit.release import SOLUTION_MARKERS, student_notebook

SOLUTION = paths.solutions_dir() / "pixelrnn" / "pixelrnn.ipynb"
STUDENT = paths.assignments_dir() / "pixelrnn" / "pixelrnn.ipynb"


def test_public_checks_pass_on_the_solution():
    results = check_notebook(SOLUTION)
    assert [r.name for r in results] == [fn.__name__.removeprefix("check_").replace("_", " ") for fn in checks.CHECKS]
    assert all(r.passed for r in results), [r.line() for r in results if not r.passed]


def test_public_checks_say_not_implemented_on_the_student_version(tmp_path):
    student = tmp_path / "pixelrnn.ipynb"
    nbformat.write(student_notebook(read_notebook(SOLUTION)), student)
    results = check_notebook(student)
    assert len(results) == len(checks.CHECKS)
    for r in results:
        assert not r.passed and "not implemented yet" in r.message, r.line()


def test_notebook_follows_the_conventions():
    nb = read_notebook(SOLUTION)
    assert nb.metadata["coursekit"]["assignment"] == "pixelrnn"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), "grade ids must be unique"
    answers = [c for c in nb.cells if is_answer_cell(c)]
    assert len(answers) >= 6
    for c in answers:
        assert "### BEGIN SOLUTION" in c.source and '"""' in c.source, "answer cells hold a docstring and a solution region"
    for c in nb.cells:
        calls_plot = re.search(r"\bshow_(grid|rows)\(", c.source)
        calls_check = re.search(r"\b(check_\w+|run_all)\(", c.source) and "def " not in c.source
        calls_train = re.search(r"^\S.*\btrain\(", c.source, re.M) and "def train" not in c.source
        if c.cell_type == "code" and (calls_plot or calls_check or calls_train):
            assert cell_tags(c) & set(SKIP_TAGS), f"cell should be tagged train/demo/check: {c.source[:80]!r}"


def test_solution_notebook_has_its_pictures_and_figures():
    nb = read_notebook(SOLUTION)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 6, "the solution notebook should be saved with its outputs (loss curve, samples, completions)"
    text = "".join(o.get("text", "") for o in outputs)
    assert "held-out bits per pixel: PixelLSTM" in text


def test_student_version_is_generated_and_holds_no_solution():
    from coursekit.release import _generated

    assert STUDENT.is_file(), "run `coursekit release` (or coursekit.release.update_assignments) to write the student version"
    text = STUDENT.read_text(encoding="utf-8")
    assert text == _generated("pixelrnn"), "assignments/pixelrnn/pixelrnn.ipynb is out of date with solutions/pixelrnn"
    for marker in SOLUTION_MARKERS:
        assert marker not in text
    nb = nbformat.reads(text, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
