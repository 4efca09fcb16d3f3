"""A small class of toy-kit submissions and its gradebook from one --jobs 2 run: what sharded grading (in this
process, or through Slurm) must give again. Shared by tests/test_shards.py and tests/test_slurm.py (the fixture is
session-wide through tests/conftest.py, so the batch is graded once)."""

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

TOYKIT = Path(__file__).parent / "fixtures" / "toykit"
HEAD = "import torch\nimport torch.nn.functional as F\n"
CODES = {"alice": "def one_hot_pixels(x, k):\n    return F.one_hot(x, k).float()\n",  # 4 / 4
         "bob": "def one_hot_pixels(x, k):\n    return 2 * F.one_hot(x, k).float()\n",  # 2 / 4
         "carol": "x = 1\n"}  # 0 / 4
TIMING = {"graded_at"}  # gradebook columns that differ between two runs of the same batch


def toy_kit_with(root: Path, assignment: str, rubric: dict, files: dict[str, str], probes: str = "") -> Path:
    """A copy of the toy kit in ``root`` with one more assignment's graders: ``autograder/<assignment>/`` holding
    ``rubric.json``, the test files ``files`` ({file name: source}) and ``probes.py``. Returns that folder."""
    shutil.copytree(TOYKIT, root, dirs_exist_ok=True)
    folder = root / "autograder" / assignment
    folder.mkdir()
    (folder / "rubric.json").write_text(json.dumps(rubric))
    for name, source in files.items():
        (folder / name).write_text(source)
    (folder / "probes.py").write_text(probes)
    return folder


def toy_class(folder: Path, codes: dict[str, str] = CODES) -> Path:
    """Loose notebooks ``<student>.ipynb`` of the toy assignment."""
    for name, code in codes.items():
        nb = new_notebook(metadata={"coursekit": {"assignment": "toy"}})
        nb.cells = [new_code_cell(HEAD), new_code_cell(code)]
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / f"{name}.ipynb")
    return folder


def gradebook_rows(out: Path) -> list[dict]:
    """gradebook.csv's rows, less the columns that say when."""
    with open(out / "gradebook.csv", encoding="utf-8") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def options():
    from coursekit.grading.engine import GradeOptions, strong_isolation_available

    return GradeOptions(profile="smoke", call_timeout=20, insecure=not strong_isolation_available())


@pytest.fixture(scope="module")
def toykit():
    """The toy kit as the kit (``COURSEKIT_ROOT``) for a test module; test files may define their own ``toykit``."""
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSEKIT_ROOT", str(TOYKIT))
    yield TOYKIT
    mp.undo()


@pytest.fixture(scope="session")
def toy_whole_run(tmp_path_factory):
    """(class folder, OUT) of the toy class graded by the toy kit in one grade_batch run with jobs=2."""
    from coursekit.grading.engine import grade_batch

    mp = pytest.MonkeyPatch()
    mp.setenv("COURSEKIT_ROOT", str(TOYKIT))
    try:
        cls = toy_class(tmp_path_factory.mktemp("toy-class"))
        out = tmp_path_factory.mktemp("toy-whole")
        grade_batch([cls], out, jobs=2, options=options(), progress=False)
    finally:
        mp.undo()
    assert [r["toy"] for r in gradebook_rows(out)] == ["4.0", "2.0", "0.0"]
    return cls, out
