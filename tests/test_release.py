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
    # the evaluators ship (weights, no thresholds), so a student's notebook scores samples as the graders do; inside the
    # package, so that a plain `pip install` of the release finds them (tests/test_release_install.py)
    bundled = out / release.BUNDLED_DATA
    from coursekit.data import course_dataset, course_dataset_spec
    from coursekit.data.registry import EMBEDDED_NPZ

    name = course_dataset().name  # the sprites, or the data set the course switched to
    assert (bundled / "evaluators" / f"evaluator_{name}.pt").is_file()
    named = json.loads((bundled / "course.json").read_text())["dataset"]
    if course_dataset_spec() in (*EMBEDDED_NPZ, "digits"):
        assert named == course_dataset_spec()  # a data set every copy of the kit has: named, not copied
    else:
        assert named == f"{name}.npz" and (bundled / named).is_file()  # the students' copy of it, in the package
    assert not (out / "data").exists()


def test_release_finds_its_evaluators_without_the_autograder(tmp_path, monkeypatch):
    from coursekit.metrics import course_evaluator, reference_evaluator_path

    out = release.build_release(tmp_path / "release", log=lambda m: None)
    monkeypatch.setenv("COURSEKIT_ROOT", str(out))
    assert reference_evaluator_path("sprites") == out / release.BUNDLED_DATA / "evaluators" / "evaluator_sprites.pt"
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
    assert json.loads((out / release.BUNDLED_DATA / "course.json").read_text()) == {"dataset": "course_files.npz"}
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
    shipped = load_npz(out / release.BUNDLED_DATA / f"{ds.name}.npz")
    assert len(shipped) == len(ds.split_indices("train")) and shipped.heldout_of
    assert not list(out.rglob("build_sprites.py"))
    assert release.heldout_images_in(out) == []
    np.savez(out / release.BUNDLED_DATA / "extra.npz", images=ds.indices[ds.split_indices("test")][:5])
    problems = [str(p) for p in release.heldout_images_in(out)]
    assert len(problems) == 1 and "extra.npz: holds 5 of the graders' held-out images" in problems[0]


# --- what the release owns: only the files it wrote ---------------------------------------
def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_release_into_a_folder_of_the_users_replaces_only_its_own_files(toykit, tmp_path):
    out = tmp_path / "class-repo"
    (out / ".git").mkdir(parents=True)
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (out / "LICENSE").write_text("the instructor's licence\n")
    with pytest.raises(FileExistsError, match="pass --force"):
        release.build_release(out, log=lambda m: None)
    assert set(_tree(out)) == {".git/HEAD", "LICENSE"}  # refused: nothing written
    release.build_release(out, force=True, log=lambda m: None)
    assert (out / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n" and (out / "LICENSE").is_file()
    owned = release.read_manifest(out)
    assert "assignments/toy/toy.ipynb" in owned and ".git/HEAD" not in owned and "LICENSE" not in owned
    # a file an earlier release wrote and this one does not is removed, with the folder it leaves empty
    (out / "old" / "gone.txt").parent.mkdir()
    (out / "old" / "gone.txt").write_text("from an earlier release\n")
    owned["old/gone.txt"] = release._sha256(out / "old" / "gone.txt")
    (out / release.MANIFEST).write_text(json.dumps({"files": owned}))
    with pytest.raises(FileExistsError, match="holds an earlier release; pass --force"):
        release.build_release(out, log=lambda m: None)
    assert main(["release", "--out", str(out), "--force"]) == 0
    assert not (out / "old").exists() and (out / "LICENSE").is_file() and (out / ".git" / "HEAD").is_file()
    assert set(release.read_manifest(out)) == set(owned) - {"old/gone.txt"}


def test_release_refuses_to_overwrite_a_changed_or_foreign_file(toykit, tmp_path, capsys):
    out = release.build_release(tmp_path / "out", log=lambda m: None)
    nb = out / "assignments" / "toy" / "toy.ipynb"
    nb.write_text(nb.read_text() + " ")  # the instructor edited the released notebook by hand
    before = _tree(out)
    assert main(["release", "--out", str(out), "--force"]) == 2
    err = capsys.readouterr().err
    assert "changed since it was written: assignments/toy/toy.ipynb" in err and "Move them away" in err
    assert _tree(out) == before  # nothing touched
    # a folder written by hand, never by a release: a file of the user's where the release writes one
    other = tmp_path / "hand"
    (other / "assignments" / "toy").mkdir(parents=True)
    (other / "assignments" / "toy" / "toy.ipynb").write_text("my own notes\n")
    with pytest.raises(FileExistsError, match="that no release of this kit wrote stand where the release writes: assignments/toy/toy.ipynb"):
        release.build_release(other, force=True, log=lambda m: None)
    assert (other / "assignments" / "toy" / "toy.ipynb").read_text() == "my own notes\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".coursekit-release-")] == []  # no staging left behind


def test_release_is_the_students_kit(tmp_path, monkeypatch, capsys):
    """Students get their own README, no Makefile or instructor tools, and a CLI without the staff commands."""
    from coursekit.cli import build_parser

    out = release.build_release(tmp_path / "release", log=lambda m: None)
    top = {p.name for p in out.iterdir()}
    assert top == {"README.md", "assignments", "coursekit", "pyproject.toml", "environment.yml", release.MANIFEST}
    readme = (out / "README.md").read_text()
    for needle in ("pip install .", "Colab", "coursekit check", "coursekit submit", "How your notebook is graded"):
        assert needle in readme, needle
    assert "make demo" not in readme and "coursekit grade" not in readme
    monkeypatch.setenv("COURSEKIT_ROOT", str(out))
    listing = build_parser().format_help()
    assert "submit" in listing and "check" in listing
    assert not any(f" {cmd} " in listing for cmd in ("grade", "reference", "release", "demo"))
    for words in (["grade", "x", "-o", str(tmp_path / "g")], ["reference", "--check"], ["release", "--check"], ["demo"]):
        assert main(words) == 2
        err = capsys.readouterr().err
        assert "course-staff command" in err and "coursekit submit" in err and "Traceback" not in err


def test_missing_data_advice_fits_who_meets_it(tmp_path, monkeypatch):
    """A student's broken install is told to reinstall the release, not to run the staff's build script."""
    from coursekit.data import load_dataset
    from coursekit.data.errors import DataError

    student = tmp_path / "site-packages"
    (student / "coursekit" / "data" / "bundled").mkdir(parents=True)
    monkeypatch.setenv("COURSEKIT_ROOT", str(student))
    with pytest.raises(DataError) as e:
        load_dataset("sprites")
    assert "reinstall it from the course's release" in str(e.value) and "build_sprites" not in str(e.value)
    bare = tmp_path / "bare"
    bare.mkdir()
    monkeypatch.setenv("COURSEKIT_ROOT", str(bare))
    with pytest.raises(DataError, match="installed without its data"):
        load_dataset("sprites")
