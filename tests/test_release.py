"""The student release: generated from the solution notebook, and proven to hold no solution."""

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from coursekit import paths, release
from coursekit.cli import main
from coursekit.notebook import read_notebook

SECRET = "return torch.nn.functional.one_hot(x, k).float()  # the secret answer"
HIDDEN = "assert one_hot_pixels(torch.tensor([2]), 3).tolist() == [[0, 0, 1]]"


def _toy_solution():
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})
    md = {"nbgrader": {"solution": False, "grade": False, "locked": True, "grade_id": "intro", "schema_version": 3}}
    sol = {"nbgrader": {"solution": True, "grade": False, "locked": False, "grade_id": "one_hot", "schema_version": 3}}
    test = {"nbgrader": {"solution": False, "grade": True, "locked": True, "points": 1, "grade_id": "test_one_hot", "schema_version": 3}}
    out = new_output("stream", name="stdout", text="a solution's output\n")
    nb.cells = [
        new_markdown_cell("# Toy\nImplement `one_hot_pixels`.", metadata=md),
        new_code_cell("import torch", metadata={}),
        new_code_cell(f"def one_hot_pixels(x, k):\n    ### BEGIN SOLUTION\n    {SECRET}\n    ### END SOLUTION", metadata=sol, outputs=[out]),
        new_code_cell(f"assert one_hot_pixels(torch.tensor([0]), 2).shape == (1, 2)\n### BEGIN HIDDEN TESTS\n{HIDDEN}\n### END HIDDEN TESTS", metadata=test),
    ]
    return nb


@pytest.fixture
def toykit(tmp_path, monkeypatch):
    (tmp_path / "solutions" / "toy").mkdir(parents=True)
    nbformat.write(_toy_solution(), tmp_path / "solutions" / "toy" / "toy.ipynb")
    (tmp_path / "coursekit").mkdir()
    (tmp_path / "coursekit" / "public.py").write_text("x = 1\n")
    (tmp_path / "autograder" / "toy").mkdir(parents=True)
    (tmp_path / "autograder" / "toy" / "test_toy.py").write_text("# hidden grader\n")
    monkeypatch.setenv("COURSEKIT_ROOT", str(tmp_path))
    return tmp_path


def test_student_notebook_hides_solution_and_hidden_tests():
    student = release.student_notebook(_toy_solution())
    text = nbformat.writes(student)
    assert SECRET not in text and HIDDEN not in text
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "raise NotImplementedError()" in student.cells[2].source and "def one_hot_pixels(x, k):" in student.cells[2].source
    assert "shape == (1, 2)" in student.cells[3].source  # the public test stays
    assert student.cells[2].outputs == []  # the solution's outputs are cleared
    assert "checksum" in student.cells[2].metadata["nbgrader"]


def test_update_assignments_writes_then_refuses_to_clobber(toykit):
    assert release.list_assignments() == ["toy"]
    assert release.find_drift() == ["toy"]
    (written,) = release.update_assignments(log=lambda m: None)
    assert written == toykit / "assignments" / "toy" / "toy.ipynb"
    assert release.find_drift() == []
    assert release.update_assignments(log=lambda m: None) == []  # up to date: nothing written
    # the source changes: the committed student version has drifted
    nb = read_notebook(toykit / "solutions" / "toy" / "toy.ipynb")
    nb.cells[0].source += "\nNew instructions."
    nbformat.write(nb, toykit / "solutions" / "toy" / "toy.ipynb")
    assert release.find_drift() == ["toy"]
    assert main(["release", "--check"]) == 1
    # a hand edit of the student version is not overwritten without --force
    with pytest.raises(FileExistsError, match="pass --force"):
        release.update_assignments(log=lambda m: None)
    assert main(["release", "--force"]) == 0
    assert release.find_drift() == [] and main(["release", "--check"]) == 0


def test_build_release_is_audited(toykit, tmp_path):
    out = release.build_release(tmp_path / "out", log=lambda m: None)
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert "assignments/toy/toy.ipynb" in files and "coursekit/public.py" in files
    assert not any(f.startswith(("solutions", "autograder", "tests")) for f in files)
    assert release.audit_release(out) == []
    with pytest.raises(FileExistsError):
        release.build_release(out, log=lambda m: None)


def test_audit_catches_leaks(toykit, tmp_path):
    out = release.build_release(tmp_path / "out", log=lambda m: None)
    (out / "coursekit" / "leak.py").write_text(f"def f(x, k):\n    {SECRET}\n")
    (out / "assignments" / "toy" / "notes.txt").write_text("### BEGIN HIDDEN TESTS\n")
    (out / "autograder").mkdir()
    problems = [str(p) for p in release.audit_release(out)]
    assert any("leak.py: contains 1 solution line(s)" in p for p in problems)
    assert any("notes.txt: contains the marker '### BEGIN HIDDEN TESTS'" in p for p in problems)
    assert any("hidden folder in the release" in p for p in problems)


def test_unknown_assignment(toykit):
    with pytest.raises(ValueError, match=r"unknown assignment\(s\) \['nope'\]"):
        release.update_assignments(["nope"])


# --- the kit's own assignments -----------------------------------------------------------
def test_kit_has_assignments():
    assert "pixelrnn" in release.list_assignments(paths.solutions_dir())


def test_committed_student_versions_match_their_source():
    assert release.find_drift() == [], "run `coursekit release --force` after changing a notebook under solutions/"


def test_kit_release_holds_no_solution(tmp_path):
    out = release.build_release(tmp_path / "release", log=lambda m: None)
    assert release.audit_release(out) == []
    for name in release.list_assignments():
        nb = json.loads((out / "assignments" / name / f"{name}.ipynb").read_text())
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    # the evaluators ship (weights, no thresholds), so a student's notebook scores samples as the graders do
    assert (out / "data" / "evaluators" / "evaluator_sprites.pt").is_file()
    assert not (out / "data" / "course.json").read_text().count("npz")  # sprites is embedded: named, not copied


def test_release_finds_its_evaluators_without_the_autograder(tmp_path, monkeypatch):
    from coursekit.metrics import course_evaluator, reference_evaluator_path

    out = release.build_release(tmp_path / "release", log=lambda m: None)
    monkeypatch.setenv("COURSEKIT_ROOT", str(out))
    assert reference_evaluator_path("sprites") == out / "data" / "evaluators" / "evaluator_sprites.pt"
    assert course_evaluator().num_features > 0


def test_release_carries_a_course_data_set_that_is_not_embedded(tmp_path, monkeypatch):
    """A course data set outside the kit (downloaded Pokémon files, a folder): the release gets it as an .npz."""
    from coursekit.data import course_dataset, dataset_fingerprint, load_dataset
    from coursekit.data.files import write_course_files

    folder = tmp_path / "course_files"
    write_course_files(load_dataset("digits"), folder)
    monkeypatch.setenv("COURSEKIT_DATASET", str(folder))
    kit = course_dataset()
    kit_fp, kit_train = dataset_fingerprint(kit), kit.indices[kit.split_indices("train")]
    out = release.build_release(tmp_path / "release", log=lambda m: None)
    assert json.loads((out / "data" / "course.json").read_text()) == {"dataset": "course_files.npz"}
    monkeypatch.delenv("COURSEKIT_DATASET")
    monkeypatch.setenv("COURSEKIT_ROOT", str(out))
    students = course_dataset()  # the students' notebooks see the training images, and know where they came from
    assert students.heldout_of == kit_fp and (students.indices == kit_train).all()


def test_release_holds_no_heldout_image(tmp_path):
    """The graders' held-out images stay with the staff: the release's data holds the training images only,
    and the audit catches a data file that carries held-out images."""
    import numpy as np

    from coursekit.data import course_dataset
    from coursekit.data.files import load_npz

    out = release.build_release(tmp_path / "release", log=lambda m: None)
    ds = course_dataset()
    shipped = load_npz(out / "data" / f"{ds.name}.npz")
    assert len(shipped) == len(ds.split_indices("train")) and shipped.heldout_of
    assert not (out / "data" / "build_sprites.py").exists()
    assert release.heldout_images_in(out) == []
    np.savez(out / "data" / "extra.npz", images=ds.indices[ds.split_indices("test")][:5])
    problems = [str(p) for p in release.heldout_images_in(out)]
    assert len(problems) == 1 and "extra.npz: holds 5 of the graders' held-out images" in problems[0]
