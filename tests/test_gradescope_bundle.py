"""The Gradescope autograder bundle (``coursekit export gradescope``) and its ``results.json``, without Gradescope.

The toy kit's bundle is laid out in a temporary folder like Gradescope's ``/autograder`` (the zip in ``source/``,
``run_autograder`` beside it) and ``run_autograder`` runs there with this machine's Python (``COURSEKIT_PYTHON``;
nothing is installed): the honest notebook gets full marks, a mistake its partial marks, the untouched notebook and
an empty submission 0 with a message; where bubblewrap cannot start (forced here), the limits-only worker grades
and the results say so; and once with the folder bound at the real ``/autograder`` by bubblewrap. The slow test
grades a real assignment's reference solution and one typical mistake the same way (about 2 minutes here).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import coursekit
from coursekit import cli
from coursekit.export.gradescope import CONFIG_NAME, BundleConfig, build_bundle, find_notebook, lay_out_like_gradescope
from coursekit.grading.reports import HIDDEN_PLACEHOLDER, GradescopeSettings, gradescope_results

HEAD = "import torch\nimport torch.nn.functional as F\n"
HONEST = "def one_hot_pixels(x, k):\n    return F.one_hot(x, k).float()\n"
WRONG_INDEX = "def one_hot_pixels(x, k):\n    return F.one_hot((x + 1) % k, k).float()\n"  # rows of one 1, in the wrong place
UNTOUCHED = "def one_hot_pixels(x, k):\n    raise NotImplementedError()\n"


def _nb(path: Path, code: str, assignment: str = "toy") -> Path:
    nb = new_notebook(metadata={"coursekit": {"assignment": assignment}})
    nb.cells = [new_code_cell('STUDENT_NAME = "Ada Lovelace"\nSTUDENT_ID = "s1815"\n'), new_code_cell(HEAD), new_code_cell(code)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _report(**kw) -> dict:
    tests = [
        {"id": "t::a", "name": "Shapes", "points": 1.0, "max_points": 1.0, "passed": True, "details": True, "message": ""},
        {"id": "t::b", "name": "Values", "points": 0.5, "max_points": 2.0, "passed": False, "details": True,
         "message": "wrong ```value``` <b>x</b>", "leaderboard": [{"name": "held-out bits per pixel", "value": 3.25, "order": "asc"}]},
        {"id": "t::c", "name": "Secret", "points": 0.0, "max_points": 1.0, "passed": False, "details": False,
         "message": "expected 0.1234 from the hidden test"},
    ]
    return {"assignment": "toy", "profile": "smoke", "device": "cpu", "isolation": "bubblewrap", "points": 1.5, "max_points": 4.0,
            "problem": "", "notes": [], "total_seconds": 12.2, "versions": {"coursekit": coursekit.__version__}, "tests": tests, **kw}


# --- results.json ------------------------------------------------------------------------------------------------
def test_results_json_follows_gradescopes_specification():
    gs = gradescope_results(_report(), GradescopeSettings("after_due_date", "md", leaderboard=True))
    assert gs["score"] == 1.5 and gs["execution_time"] == 13 and gs["output_format"] == gs["test_output_format"] == "md"
    assert gs["stdout_visibility"] == "hidden" and gs["visibility"] == "visible" and gs["test_name_format"] == "text"
    a, b, c = gs["tests"]
    assert [t["number"] for t in gs["tests"]] == ["1", "2", "3"]
    assert [t["status"] for t in gs["tests"]] == ["passed", "failed", "failed"]  # partial credit is "failed"
    assert (b["score"], b["max_score"]) == (0.5, 2.0) and all(t["output_format"] == "md" and t["name_format"] == "text" for t in gs["tests"])
    assert [t["visibility"] for t in gs["tests"]] == ["visible", "visible", "after_due_date"]
    assert c["output"] == "```\nexpected 0.1234 from the hidden test\n```"  # Gradescope shows it only after the due date
    assert b["output"] == "````\nwrong ```value``` <b>x</b>\n````"  # a fence longer than any in the student's text
    assert gs["leaderboard"] == [{"name": "held-out bits per pixel", "value": 3.25, "order": "asc"}]
    assert "smoke profile" in gs["output"] and gs["extra_data"]["max_score"] == 4.0

    hidden = gradescope_results(_report(), GradescopeSettings("hidden", "html"))
    assert "leaderboard" not in hidden and hidden["tests"][2]["visibility"] == "hidden"
    assert hidden["tests"][1]["output"] == "<pre>wrong ```value``` &lt;b&gt;x&lt;/b&gt;</pre>"
    # shown at once (coursekit grade's feedback tree, handed to students as files): the hidden test's message is not
    shown = gradescope_results(_report())
    assert shown["tests"][2]["visibility"] == "visible" and shown["tests"][2]["output"] == HIDDEN_PLACEHOLDER
    assert shown["output_format"] == "text" and "0.1234" not in json.dumps(shown)
    # a student's problem text never becomes markup; the sandbox's absence is said
    gs = gradescope_results(_report(problem="<script>x</script>", isolation="rlimits"), GradescopeSettings(output_format="html"))
    assert "<script>" not in gs["output"] and "&lt;script&gt;" in gs["output"] and "graded without the sandbox" in gs["output"]
    with pytest.raises(ValueError, match="hidden_visibility must be one of"):
        GradescopeSettings("later")
    with pytest.raises(ValueError, match="output_format must be one of"):
        GradescopeSettings(output_format="pdf")


def test_leaderboard_takes_only_finite_numbers():
    rep = _report()
    rep["tests"][0]["leaderboard"] = [{"name": "FID", "value": float("nan")}, {"name": "x", "value": True}, "junk"]
    gs = gradescope_results(rep, GradescopeSettings(leaderboard=True))
    assert [e["name"] for e in gs["leaderboard"]] == ["held-out bits per pixel"]


# --- the bundle ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundle(toykit, tmp_path_factory):
    return build_bundle(BundleConfig("toy", leaderboard=True), tmp_path_factory.mktemp("bundle") / "autograder.zip")


def test_the_bundle_holds_the_scripts_and_the_kit_with_the_graders(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as z:
        names = z.namelist()
        infos = {i.filename: i for i in z.infolist()}
        cfg = json.loads(z.read(CONFIG_NAME))
        setup = z.read("setup.sh").decode()
        runner = z.read("run_autograder").decode()
    assert 'export COURSEKIT_LOW_MEMORY="${COURSEKIT_LOW_MEMORY:-1}"' in runner  # graders in small steps within 768 MB
    for script in ("setup.sh", "run_autograder"):
        assert (infos[script].external_attr >> 16) & 0o111, f"{script} is not executable"
        assert stat.S_ISREG(infos[script].external_attr >> 16)
    assert {"kit/autograder/toy/rubric.json", "kit/autograder/toy/test_toy.py", "kit/autograder/conftest.py", "kit/pyproject.toml",
            "kit/coursekit/__init__.py", "kit/coursekit/grading/engine.py", "kit/README.md"} <= set(names)
    assert not [n for n in names if n.startswith(("kit/solutions", "kit/tests", "kit/assignments")) or "__pycache__" in n]
    package = Path(coursekit.__file__).parent
    for n in names:  # the kit's package as it is here, file for file
        if n.startswith("kit/coursekit/"):
            assert zipfile.ZipFile(bundle).read(n) == (package / n[len("kit/coursekit/"):]).read_bytes(), n
    assert cfg["assignment"] == "toy" and cfg["profile"] == "smoke" and cfg["leaderboard"] is True
    assert cfg["hidden_visibility"] == "after_due_date" and cfg["torch_spec"].startswith("torch==")
    assert "--index-url https://download.pytorch.org/whl/cpu" in setup and cfg["torch_spec"] in setup
    assert 'pip install -q -e "$HERE/kit"' in setup and "bubblewrap" in setup
    assert "coursekit.export.gradescope run" in runner and "/autograder" in runner and "MALLOC_ARENA_MAX" in runner


def test_exporting_refuses_what_it_cannot_do(toykit, bundle, tmp_path, capsys):
    with pytest.raises(FileExistsError, match="already exists; pass --force"):
        build_bundle(BundleConfig("toy"), bundle)
    with pytest.raises(ValueError, match="no graders for assignment 'nope'"):
        build_bundle(BundleConfig("nope"), tmp_path / "a.zip")
    with pytest.raises(ValueError, match="must be a .zip"):
        build_bundle(BundleConfig("toy"), tmp_path / "a.tar")
    with pytest.raises(ValueError, match="profile must be smoke or full"):
        BundleConfig("toy", profile="gpu")
    assert cli.main(["export", "gradescope", "-a", "toy", "-o", str(tmp_path / "cli.zip"), "--hidden-tests", "hidden",
                     "--output-format", "html", "--torch", "torch==2.3.1"]) == 0
    assert "Gradescope's autograder of toy" in capsys.readouterr().out
    cfg = json.loads(zipfile.ZipFile(tmp_path / "cli.zip").read(CONFIG_NAME))
    assert (cfg["hidden_visibility"], cfg["output_format"], cfg["torch_spec"]) == ("hidden", "html", "torch==2.3.1")
    assert cli.main(["export", "gradescope", "-a", "toy", "-o", str(tmp_path / "cli.zip")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_setup_sh_checks_the_bundle_when_installs_are_skipped(bundle, tmp_path):
    root = lay_out_like_gradescope(bundle, tmp_path / "autograder", link_package=True)
    env = {**os.environ, "COURSEKIT_SETUP_SKIP_INSTALL": "1", "COURSEKIT_PYTHON": _python()}
    env.pop("COURSEKIT_ROOT", None)
    done = subprocess.run([str(root / "source" / "setup.sh")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "toy: 3 graded tests, 4 points, profile smoke" in done.stdout and not (root / "source" / "venv").exists()
    (root / "source" / "kit" / "autograder" / "toy" / "rubric.json").unlink()  # a broken bundle fails Gradescope's build
    assert subprocess.run([str(root / "source" / "setup.sh")], env=env, capture_output=True, timeout=300).returncode != 0


def _python() -> str:
    import sys

    return sys.executable


def _run(root: Path, **env) -> dict:
    full = {**os.environ, "COURSEKIT_AUTOGRADER_ROOT": str(root), "COURSEKIT_PYTHON": _python(), **env}
    full.pop("COURSEKIT_ROOT", None)  # run_autograder sets it to the bundle's kit
    (root / "results" / "results.json").unlink(missing_ok=True)
    done = subprocess.run([str(root / "run_autograder")], cwd=root, env=full, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((root / "results" / "results.json").read_text())


@pytest.fixture
def autograder(bundle, tmp_path):
    return lay_out_like_gradescope(bundle, tmp_path / "autograder", link_package=True)


def test_run_autograder_grades_a_mistake_to_its_partial_marks(autograder):
    """(The honest notebook's full marks: the tests with the zip and at the real /autograder.)"""
    _nb(autograder / "submission" / "homework (2).ipynb", WRONG_INDEX)  # a lone notebook, whatever its name
    gs = _run(autograder)
    by = {t["name"]: t for t in gs["tests"]}
    assert gs["score"] == 2 and by["Output shape"]["status"] == "passed"
    assert (by["One-hot values"]["score"], by["One-hot values"]["status"]) == (1, "failed")
    assert "the 1 must sit at the pixel's colour index" in by["One-hot values"]["output"]
    assert by["A check whose details are hidden"]["visibility"] == "after_due_date"


def test_the_notebook_is_found_or_the_student_told_why_not(tmp_path):
    sub = tmp_path / "submission"
    sub.mkdir()
    assert find_notebook(sub, "toy", tmp_path / "z") == (None, "no notebook (.ipynb) was found in your submission: hand in "
                                                               "your toy.ipynb (or the zip `coursekit submit` writes)")
    _nb(sub / "a.ipynb", HONEST)
    _nb(sub / "b.ipynb", HONEST)
    nb, why = find_notebook(sub, "toy", tmp_path / "z")
    assert nb is None and why.startswith("found several notebooks (a.ipynb, b.ipynb)") and "named toy.ipynb" in why
    _nb(sub / "toy.ipynb", HONEST)  # of several, the one named after the assignment
    assert find_notebook(sub, "toy", tmp_path / "z")[0] == sub / "toy.ipynb"
    (sub / "bomb.zip").write_bytes(b"PK not a zip")
    assert find_notebook(sub, "toy", tmp_path / "z")[0] == sub / "toy.ipynb"  # a broken zip beside it costs nothing


def test_run_autograder_gives_zero_with_a_message_to_what_it_cannot_grade(autograder):
    gs = _run(autograder)  # nothing handed in: 0, every test listed, the reason said
    assert gs["score"] == 0 and "no notebook (.ipynb) was found in your submission" in gs["output"] and len(gs["tests"]) == 3
    _nb(autograder / "submission" / "toy.ipynb", UNTOUCHED)
    gs = _run(autograder)
    assert gs["score"] == 0 and all(t["status"] == "failed" for t in gs["tests"]) and len(gs["tests"]) == 3


def test_a_zip_from_coursekit_submit_is_graded_and_without_bubblewrap_the_results_say_so(autograder, tmp_path):
    nb = _nb(tmp_path / "work" / "toy.ipynb", HONEST)
    with zipfile.ZipFile(autograder / "submission" / "s1815_Ada_Lovelace.zip", "w") as z:
        z.write(nb, "toy/toy.ipynb")
    gs = _run(autograder, COURSEKIT_ISOLATION="rlimits")  # as in a container without user namespaces
    assert gs["score"] == 4 and gs["extra_data"]["isolation"] == "rlimits" and [t["status"] for t in gs["tests"]] == ["passed"] * 3
    assert "cannot run in this Gradescope container" in gs["output"] and "limits-only worker" in gs["output"]


def test_a_failure_of_the_kit_still_writes_results(autograder):
    (autograder / "source" / CONFIG_NAME).write_text("{not json")
    gs = _run(autograder)
    assert gs["score"] == 0 and gs["tests"] == [] and "error of its own, not of your notebook" in gs["output"]


@pytest.mark.skipif(shutil.which("bwrap") is None or os.path.exists("/autograder"), reason="needs bubblewrap and no real /autograder")
def test_run_autograder_at_the_real_autograder_path(autograder):
    """The folder bound at /autograder by bubblewrap (as root, in a mount namespace: the machine's own / is untouched);
    run_autograder runs with its defaults, as Gradescope runs it. Inside, the sandbox may or may not nest: either way
    the notebook is graded and results.json says how."""
    _nb(autograder / "submission" / "toy.ipynb", HONEST)
    binds = []
    for entry in sorted(Path("/").iterdir()):
        if entry.name in ("proc", "dev", "autograder"):
            continue
        binds += ["--symlink", os.readlink(entry), str(entry)] if entry.is_symlink() else ["--bind", str(entry), str(entry)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSEKIT_")}
    cmd = ["bwrap", *binds, "--dev", "/dev", "--proc", "/proc", "--bind", str(autograder), "/autograder", "--chdir", "/autograder",
           "--setenv", "COURSEKIT_PYTHON", _python(), "/autograder/run_autograder"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and "No permissions to create new namespace" in done.stderr + done.stdout:
        pytest.skip("bubblewrap cannot make a mount namespace here")
    assert done.returncode == 0, done.stdout + done.stderr
    gs = json.loads((autograder / "results" / "results.json").read_text())
    assert gs["score"] == 4 and [t["status"] for t in gs["tests"]] == ["passed"] * 3
    assert [t["visibility"] for t in gs["tests"]] == ["visible", "visible", "after_due_date"]
    assert gs["extra_data"]["isolation"] in ("bubblewrap", "unshare", "rlimits")
    assert ("cannot run in this Gradescope container" in gs["output"]) is (gs["extra_data"]["isolation"] != "bubblewrap")
    assert not Path("/autograder").exists()


# --- a real assignment ----------------------------------------------------------------------------------------------
REAL = "vae"  # the cheapest real assignment to grade (benchmarks/gradescope_bundle.py)


@pytest.fixture(scope="module")
def real_graded(tmp_path_factory):
    """The reference solution and the first typical mistake of REAL, each graded by run_autograder in a folder laid out
    like /autograder (the bundle built from the checkout's kit), once for the module."""
    from coursekit.grading.examples import load_mistakes, make_examples

    mp = pytest.MonkeyPatch()
    mp.delenv("COURSEKIT_ROOT", raising=False)  # the checkout's kit, not the toy kit of the module's other tests
    tmp = tmp_path_factory.mktemp("gradescope-real")
    mistake = next(iter(load_mistakes(REAL)))
    made = make_examples(REAL, tmp / "examples", max_mistakes=1)
    zip_path = build_bundle(BundleConfig(REAL), tmp / "autograder.zip")
    graded = {}
    for name in ("reference", mistake):
        root = lay_out_like_gradescope(zip_path, tmp / name, link_package=True)
        shutil.copy(made[name], root / "submission" / f"{REAL}.ipynb")
        graded[name] = _run(root)
    yield graded, mistake
    mp.undo()


@pytest.mark.slow
def test_the_bundle_grades_the_reference_to_full_marks_and_a_mistake_to_partial(real_graded):
    from coursekit.grading.examples import load_mistakes
    from coursekit.grading.rubric import load_rubric

    graded, mistake = real_graded
    rubric = load_rubric(REAL)
    ref = graded["reference"]
    assert ref["score"] == rubric.total and all(t["status"] == "passed" for t in ref["tests"]), [
        (t["name"], t["output"]) for t in ref["tests"] if t["status"] != "passed"]
    bad = graded[mistake]
    failed = {t["name"] for t in bad["tests"] if t["status"] == "failed"}
    listed = {rubric.items[tid].name for tid in load_mistakes(REAL)[mistake]["fails"]}
    assert 0 < bad["score"] < rubric.total and listed <= failed, (failed, listed)
