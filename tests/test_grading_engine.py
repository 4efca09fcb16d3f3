"""The grading engine on a toy assignment: each cheat and fault costs only its author.

One batch holds an honest submission and every kind of bad one; the honest one gets full
marks, each bad one the points it deserves and a message saying why.
"""

import csv
import json
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from coursekit.grading.engine import GradeOptions, grade_batch, strong_isolation_available
from coursekit.grading.sandbox import _which_isolation

TOYKIT = Path(__file__).parent / "fixtures" / "toykit"

HEAD = "import torch\nimport torch.nn.functional as F\n"
CODES = {
    "honest": "def one_hot_pixels(x, k):\n    return F.one_hot(x, k).float()\n",
    "wrong_index": "def one_hot_pixels(x, k):\n    return F.one_hot(k - 1 - x, k).float()\n",
    "untouched": "def one_hot_pixels(x, k):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n",
    "liar": "class Liar:\n    def __eq__(self, o):\n        return True\n    shape = (3, 3)\n\ndef one_hot_pixels(x, k):\n    return Liar()\n",
    "patcher": "torch.equal = lambda *a: True\ntorch.all = lambda *a: torch.tensor(True)\n\ndef one_hot_pixels(x, k):\n    return torch.zeros(len(x), k)\n",
    "exits": "import sys\n\ndef one_hot_pixels(x, k):\n    sys.exit(0)\n",  # top-level work is not run: exit in a function
    "loops": "def one_hot_pixels(x, k):\n    while True:\n        pass\n",
    "hog": "def one_hot_pixels(x, k):\n    big = torch.ones(200 * 1024**3, dtype=torch.uint8)\n    return big\n",
    "segfault": "import ctypes\n\ndef one_hot_pixels(x, k):\n    ctypes.string_at(0)\n",
    "renamed": "def one_hot(x, k):\n    return F.one_hot(x, k).float()\n",
    "peeker": (
        "import json, os\n\ndef one_hot_pixels(x, k):\n"
        "    p = os.environ.get('COURSEKIT_ROOT', '') + '/autograder/toy/expected.json'\n"
        "    e = json.load(open(p))\n    return torch.tensor(e['one_hot'], dtype=torch.float32) if k == 3 else F.one_hot(x, k).float()\n"
    ),
}


def _notebook(path: Path, code: str, assignment: str = "toy") -> Path:
    nb = new_notebook(metadata={"coursekit": {"assignment": assignment}})
    nb.cells = [new_code_cell(HEAD), new_code_cell(code), new_code_cell("one_hot_pixels(torch.arange(3), 3)  # a demo", metadata={"tags": ["demo"]})]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    root = tmp_path_factory.mktemp("kit")
    shutil.copytree(TOYKIT, root, dirs_exist_ok=True)
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSEKIT_ROOT", str(root))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def batch(kit, tmp_path_factory):
    subs = tmp_path_factory.mktemp("submitted")
    for name, code in CODES.items():
        _notebook(subs / name / "toy" / "toy.ipynb", code)  # nbgrader's layout
    (subs / "badjson" / "toy").mkdir(parents=True)
    (subs / "badjson" / "toy" / "toy.ipynb").write_text('{"cells": [}')
    _notebook(subs / "other_assignment" / "toy.ipynb", CODES["honest"], assignment="vae")
    (subs / "missing").mkdir()
    (subs / "missing" / "notes.txt").write_text("I forgot")
    (subs / "missing" / "pixelrnn.ipynb").write_text("{}")
    zdir = tmp_path_factory.mktemp("zips")
    _notebook(zdir / "zipped" / "toy.ipynb", CODES["honest"])
    with zipfile.ZipFile(subs / "zipped.zip", "w") as z:
        z.write(zdir / "zipped" / "toy.ipynb", "zipped/toy.ipynb")
    out = tmp_path_factory.mktemp("out")
    reports = grade_batch([subs], out, jobs=2, options=GradeOptions(call_timeout=4, insecure=not strong_isolation_available()), progress=False)
    return out, {r["student"]: r for r in reports}


def _msgs(report):
    return " | ".join(t["message"] for t in report["tests"])


def test_honest_gets_full_marks_in_the_same_batch(batch):
    _, r = batch
    for who in ("honest", "zipped"):
        assert r[who]["points"] == r[who]["max_points"] == 4, _msgs(r[who])
        assert r[who]["isolation"] in ("bubblewrap", "unshare", "rlimits")


def test_partial_credit_for_a_typical_mistake(batch):
    _, r = batch
    rep = r["wrong_index"]
    by = {t["name"]: t for t in rep["tests"]}
    assert by["Output shape"]["points"] == 1
    assert by["One-hot values"]["points"] == 1 and "the 1 must sit at the pixel's colour index" in by["One-hot values"]["message"]
    assert rep["points"] == 2


@pytest.mark.parametrize(
    "who, message",
    [
        ("untouched", "not implemented yet"),
        ("liar", "is a Liar, not a tensor"),
        ("exits", "called sys.exit(0)"),
        ("loops", "took longer than 4 s"),
        ("segfault", "segmentation fault"),
        ("renamed", "`one_hot_pixels` is not defined in your notebook"),
        ("badjson", "invalid JSON"),
        ("other_assignment", "is the notebook of assignment 'vae', not 'toy'"),
        ("missing", "expected a notebook toy.ipynb or toy/toy.ipynb in missing/"),
    ],
)
def test_faults_score_zero_with_a_clear_message(batch, who, message):
    _, r = batch
    assert r[who]["points"] == 0, _msgs(r[who])
    assert message in _msgs(r[who])


def test_patching_torch_in_the_submission_does_not_touch_the_grader(batch):
    _, r = batch
    by = {t["name"]: t for t in r["patcher"]["tests"]}
    assert by["Output shape"]["passed"] and not by["One-hot values"]["passed"] and r["patcher"]["points"] == 1


def test_memory_hog_fails_its_tests(batch):
    _, r = batch
    assert r["hog"]["points"] == 0 and ("memory" in _msgs(r["hog"]).lower() or "killed" in _msgs(r["hog"]))


@pytest.mark.skipif(_which_isolation() != "bubblewrap", reason="hiding autograder/ needs bubblewrap")
def test_reading_the_expected_values_is_impossible(batch):
    _, r = batch
    assert r["peeker"]["points"] == 0
    assert "FileNotFoundError" in _msgs(r["peeker"])


def test_gradebook_reports_and_gradescope(batch):
    out, r = batch
    rows = list(csv.DictReader(open(out / "gradebook.csv")))
    assert {row["student"] for row in rows} == set(r)
    honest = next(row for row in rows if row["student"] == "honest")
    assert float(honest["total"]) == 4 and float(honest["toy: Output shape"]) == 1
    gs = json.loads((out / "feedback" / "honest" / "toy" / "results.json").read_text())
    assert gs["score"] == 4 and {t["max_score"] for t in gs["tests"]} == {1, 2}
    assert all(t["visibility"] == "visible" for t in gs["tests"])


def test_feedback_page_has_pictures_and_no_hidden_material(batch, kit):
    out, r = batch
    page = (out / "feedback" / "wrong_index" / "toy" / "feedback.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page and 'src="data:image/png;base64,' in page
    assert "2 / 4 points" in page
    assert "(details are hidden for this test)" in page  # test_secret's message is not shown
    for line in (kit / "autograder" / "toy" / "test_toy.py").read_text().splitlines():
        if len(line.strip()) > 25:
            assert line.strip() not in page, line
    assert "secret_argmax" not in page and '"one_hot"' not in page


def test_a_finished_batch_is_skipped_and_regrading_is_deterministic(batch, kit):
    out, r = batch
    subs_root = Path(r["honest"]["notebook"]).parents[2]
    shutil.rmtree(out / "staff" / "wrong_index")
    again = {x["student"]: x for x in grade_batch([subs_root], out, jobs=2, options=GradeOptions(call_timeout=4, insecure=not strong_isolation_available()), progress=False)}
    assert again["honest"].get("skipped") and again["loops"].get("skipped")
    assert not again["wrong_index"].get("skipped")
    assert again["wrong_index"]["points"] == r["wrong_index"]["points"]
    for who in r:
        assert again[who]["points"] == r[who]["points"], who
