"""`coursekit submit`: a notebook is checked, then packed as the instructor's grader reads it."""

import zipfile

import nbformat
import pytest

from coursekit import paths
from coursekit.cli import main
from coursekit.grading.submissions import find_submissions
from coursekit.notebook import read_notebook
from coursekit.release import student_notebook
from coursekit.submit import SubmissionError, submit, validate, zip_name


def _student(tmp_path, name="pixelrnn", who=("Ada Lovelace", "s1234567"), filename=None):
    nb = student_notebook(read_notebook(paths.solutions_dir() / name / f"{name}.ipynb"))
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "student_name")
    if who is not None:
        cell.source = f'# Your name and student ID\nSTUDENT_NAME = "{who[0]}"\nSTUDENT_ID = "{who[1]}"'
    path = tmp_path / (filename or f"{name}.ipynb")
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("name", ["pixelrnn", "vae", "gan"])
def test_every_notebook_opens_with_an_empty_name_cell(name):
    for nb in (read_notebook(paths.solutions_dir() / name / f"{name}.ipynb"), read_notebook(paths.assignments_dir() / name / f"{name}.ipynb")):
        cell = nb.cells[1]
        assert cell.metadata["nbgrader"]["grade_id"] == "student_name" and not cell.metadata["nbgrader"]["grade"]
        assert 'STUDENT_NAME = ""' in cell.source and 'STUDENT_ID = ""' in cell.source


def test_submit_packs_what_the_grader_reads(tmp_path):
    nb = _student(tmp_path)
    res = submit(nb, out_dir=tmp_path / "hand-in", run_checks=False)
    assert res.zip_path == tmp_path / "hand-in" / "s1234567_Ada_Lovelace.zip"
    assert zipfile.ZipFile(res.zip_path).namelist() == ["pixelrnn/pixelrnn.ipynb"]
    (found,) = find_submissions([res.zip_path], ["pixelrnn"], unzip_into=tmp_path / "unzipped")
    assert found.student == "s1234567_Ada_Lovelace" and found.notebook is not None and not found.problem
    assert read_notebook(found.notebook).metadata["coursekit"]["assignment"] == "pixelrnn"
    with pytest.raises(FileExistsError, match="pass --force"):
        submit(nb, out_dir=tmp_path / "hand-in", run_checks=False)
    assert submit(nb, out_dir=tmp_path / "hand-in", run_checks=False, force=True).zip_path == res.zip_path


def test_submit_runs_the_public_checks_and_does_not_stop_on_failed_ones(tmp_path, capsys):
    nb = _student(tmp_path)  # the untouched student version: every check says "not implemented yet"
    assert main(["submit", str(nb)]) == 0
    out = capsys.readouterr().out
    assert "not implemented yet" in out and "failed checks do not stop a submission" in out
    assert (tmp_path / "s1234567_Ada_Lovelace.zip").is_file()


def test_submit_refuses_what_it_cannot_hand_in(tmp_path, capsys):
    with pytest.raises(SubmissionError, match="fill in STUDENT_NAME and STUDENT_ID"):
        validate(_student(tmp_path, who=None))
    with pytest.raises(SubmissionError, match="is the 'vae' notebook, not 'pixelrnn'"):
        validate(_student(tmp_path, "vae"), assignment="pixelrnn")
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{ not json")
    with pytest.raises(SubmissionError, match="invalid JSON"):
        validate(broken)
    plain = tmp_path / "mine.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), plain)
    with pytest.raises(SubmissionError, match="not one of the course's notebooks"):
        validate(plain)
    assert main(["submit", str(_student(tmp_path, who=None)), "--no-checks"]) == 1
    err = capsys.readouterr().err
    assert "not submitted" in err and "STUDENT_NAME" in err and "Traceback" not in err
    assert not list(tmp_path.glob("*.zip")) and not (tmp_path / "x").exists()


def test_code_that_does_not_run_stops_a_submission_unless_allowed(tmp_path, monkeypatch):
    import coursekit.checks.runner as runner
    from coursekit.checks import CheckResult

    monkeypatch.setattr(runner, "check_notebook", lambda *a, **k: [CheckResult("notebook code", False, "did not finish within 5 s")])
    nb = _student(tmp_path)
    with pytest.raises(SubmissionError, match=r"code does not run \(did not finish within 5 s\).*--allow-broken"):
        submit(nb, out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()
    res = submit(nb, out_dir=tmp_path / "x", allow_broken=True)
    assert res.zip_path.is_file() and len(res.failed_checks) == 1


def test_zip_name_is_plain_ascii():
    assert zip_name("s 12/34", "Zoë Ñúñez-O'Brien") == "s_12_34_Zoe_Nunez-O_Brien.zip"
    assert zip_name("", "") == "submission.zip"


def test_an_editor_that_drops_metadata_does_not_stop_a_submission(tmp_path):
    """Some editors keep the cells but drop their metadata and the notebook's: the name cell is found by its
    content, the assignment by the file's name, and the zip's notebook names its assignment again."""
    path = _student(tmp_path)
    nb = read_notebook(path)
    nb.metadata.pop("coursekit")
    for c in nb.cells:
        c.metadata = {}
    nbformat.write(nb, path)
    res = submit(path, out_dir=tmp_path / "hand-in", run_checks=False)
    assert res.assignment == "pixelrnn" and res.student_id == "s1234567"
    with zipfile.ZipFile(res.zip_path) as z:
        packed = nbformat.reads(z.read("pixelrnn/pixelrnn.ipynb").decode(), as_version=4)
    assert packed.metadata["coursekit"]["assignment"] == "pixelrnn"
