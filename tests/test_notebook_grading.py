"""What the graders run of a notebook: its definitions, not its top-level work; and messages that name the
notebook's cells and lines instead of the generated module's (coursekit.notebook.extract_module)."""

import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit import paths
from coursekit.notebook import extract_module, parse_extracted, read_notebook

EXPERIMENTS = [  # a student's own experiments, left untagged
    "model = Net(8)\nfor step in range(10**9):\n    last = step",
    "while True:\n    pass",
    "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\nprint('hello')",
    "m = Net(4); train(m)",
    "x = train(Net(2))",
    "final = last",
    "def broken(:\n    pass",
]


def _nb(*cells):
    nb = new_notebook()
    nb.cells = [new_markdown_cell("# title")] + [c if not isinstance(c, str) else new_code_cell(c) for c in cells]
    return nb


def test_definitions_run_and_top_level_work_does_not():
    answer = new_code_cell("def train(model):\n    return model.n * SCALE", metadata={"nbgrader": {"grade_id": "train", "solution": True}})
    nb = _nb("import math\nSCALE = 2\nDEVICE = str('cpu')\nclass Net:\n    def __init__(self, n):\n        self.n = n", answer,
             *EXPERIMENTS)
    e = extract_module(nb)
    ns = {}
    exec(compile(e.code, "submission.py", "exec"), ns)  # quick: no loop, no training, no plot
    assert ns["train"](ns["Net"](3)) == 6 and ns["DEVICE"] == "cpu" and ns["m"].n == 4 and ns["x"] == 4
    assert "last" not in ns and "final" not in ns and "broken" not in ns
    notes = "\n".join(e.notes())
    assert "cell 4, lines 2-3 (`for step in range(10**9):`) was not run in grading: top-level work" in notes
    assert "cell 5, lines 1-2 (`while True:`)" in notes and "cell 6, lines 2-4 (`plt.plot([1, 2, 3])`)" in notes
    assert "cell 7, line 1 (`m = Net(4); train(m)`)" in notes
    assert "cell 9, line 1 (`final = last`) was not run in grading: it reads `last`" in notes
    assert "cell 10 was not run in grading: it is not valid Python (SyntaxError at line 1" in notes
    assert "cell 2" not in notes and "cell 3" not in notes  # definitions and assignments all ran
    # the statements that call something are timed in the worker; a plain assignment is not
    code = e.code.splitlines()
    assert {code[n - 1] for n in e.timed} == {"DEVICE = str('cpu')", "model = Net(8)", "m = Net(4); pass", "x = train(Net(2))"}


def test_line_map_survives_the_module_and_forged_headers():
    nb = _nb("# --- cell 99 [fake]: 1 line ---\nimport math\nprint(1)\nA = 1", "def f():\n    return A\n")
    e = extract_module(nb)
    back = parse_extracted(e.code)
    assert back.where == e.where and back.timed == e.timed
    assert [(s.cell, s.first, s.reason) for s in back.skipped] == [(s.cell, s.first, s.reason) for s in e.skipped] == [(2, 3, "work")]
    line_of_return = e.code.splitlines().index("    return A") + 1
    assert e.describe(line_of_return) == "cell 3, line 2"
    assert parse_extracted("x = 1\n").describe(1) is None  # a .py handed in: its lines are its own


def test_messages_name_the_notebooks_cells():
    answer = new_code_cell("import torch\n\ndef sample(n):\n    return torch.zeros(n) / undefined_name",
                           metadata={"nbgrader": {"grade_id": "generate", "solution": True}})
    nb = _nb("x = 1", answer, "for name in ['complete']:\n    globals()[name] = sample\nhelper = 2")
    e = extract_module(nb)
    line = e.code.splitlines().index("    return torch.zeros(n) / undefined_name") + 1
    assert e.translate(f"NameError: boom (in `sample`, line {line}: return ...)") == \
        "NameError: boom (in `sample`, cell 3 (answer cell `generate`), line 4: return ...)"
    assert e.translate(f"SyntaxError: invalid syntax (submission.py, line {line})") == \
        "SyntaxError: invalid syntax (cell 3 (answer cell `generate`), line 4)"
    assert e.translate(f"raised ValueError: x (line {line} of sample)") == "raised ValueError: x (in `sample`, cell 3 (answer cell `generate`), line 4)"
    assert e.translate("line 9999 of sample, `f`, line 9999") == "line 9999 of sample, `f`, line 9999"  # not the module's: kept
    msg = e.translate("`complete` is not defined in your notebook: keep the names the notebook gives (was it renamed?)")
    assert "`complete` is made only by top-level work at cell 4, lines 1-2: `for name in ['complete']:`" in msg


def test_reference_solutions_lose_only_prints_and_thread_settings():
    for a in ("pixelrnn", "vae", "gan"):
        e = extract_module(read_notebook(paths.solutions_dir() / a / f"{a}.ipynb"))
        for s in e.skipped:
            assert s.reason == "work" and (s.text.startswith(("print(", "if DEVICE.type")) or s.text.strip().startswith("print(")), (a, s.note())


def test_worker_goes_on_past_a_failing_or_overrunning_statement(tmp_path, monkeypatch):
    import coursekit.notebook as notebook
    from coursekit.grading import worker

    monkeypatch.setattr(notebook, "TIMED_BUDGET", 0.5)
    monkeypatch.setattr(worker, "_LOAD_PROBLEMS", [])
    nb = _nb("import no_such_module_here\nK = 3", "def spin():\n    while True:\n        pass\n\nbest = spin()",
             "def f():\n    return best + K", "a = 1 / 0")
    e = extract_module(nb)
    path = tmp_path / "submission.py"
    path.write_text(e.code)
    mod = worker._load(str(path), "submission_under_test", tolerant=True)
    assert mod.K == 3 and not hasattr(mod, "best") and not hasattr(mod, "a")
    assert [p[2] for p in worker._LOAD_PROBLEMS] == [{"no_such_module_here"}, {"best"}, {"a"}]
    try:
        mod.f()
    except NameError as exc:
        msg = e.translate(worker._describe(exc, str(path)))
    assert msg.startswith("NameError: name 'best' is not defined (in `f`, cell 4, line 2: return best + K) (cell 3, line 5 would have made it, "
                          "but it took longer than the 0.5 s of CPU time"), msg


# --- through the engine, on the toy assignment ---------------------------------------------------
TOYKIT = Path(__file__).parent / "fixtures" / "toykit"
HONEST = "import torch\nimport torch.nn.functional as F\n\ndef one_hot_pixels(x, k):\n    return F.one_hot(x, k).float()\n"
TOY = {
    "experiments": [HONEST, "x = one_hot_pixels(torch.arange(3), 3)\nprint(x)",
                    "for i in range(10**10):\n    x = one_hot_pixels(torch.arange(3), 3)", "while True:\n    pass",
                    "import matplotlib.pyplot as plt\nplt.imshow(x)\nplt.show()", "def broken(:"],
    "made_by_work": ["import torch\nimport torch.nn.functional as F\n",
                     "for name in ['one_hot_pixels']:\n    globals()[name] = lambda x, k: F.one_hot(x, k).float()"],
    "bug_in_function": [HONEST.replace("F.one_hot(x, k)", "F.one_hot(x, k) + undefined_thing")],
}


@pytest.fixture(scope="module")
def toy_batch(tmp_path_factory):
    from coursekit.grading.engine import GradeOptions, grade_batch, strong_isolation_available

    root = tmp_path_factory.mktemp("kit")
    shutil.copytree(TOYKIT, root, dirs_exist_ok=True)
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSEKIT_ROOT", str(root))
    subs = tmp_path_factory.mktemp("submitted")
    for who, cells in TOY.items():
        nb = new_notebook(metadata={"coursekit": {"assignment": "toy"}})
        nb.cells = [new_code_cell(c) for c in cells]
        (subs / who / "toy").mkdir(parents=True)
        nbformat.write(nb, subs / who / "toy" / "toy.ipynb")
    out = tmp_path_factory.mktemp("out")
    try:
        reports = grade_batch([subs], out, jobs=2, options=GradeOptions(call_timeout=20, insecure=not strong_isolation_available()),
                              progress=False)
    finally:
        mp.undo()
    return {**{r["student"]: r for r in reports}, "_out": out}


def test_experiment_cells_cost_no_points(toy_batch):
    r = toy_batch["experiments"]
    assert r["points"] == r["max_points"] == 4, [t["message"] for t in r["tests"]]


def test_the_student_reads_what_was_not_run(toy_batch):
    """The report, the feedback page and Gradescope's output name the cells grading left out, escaped."""
    import html
    import json

    from coursekit.grading import layout

    r = toy_batch["experiments"]
    notes = " | ".join(r["notes"])
    assert "cell 4" in notes and "while True:" in notes and "cell 6" in notes, notes
    fb = layout.feedback_dir(toy_batch["_out"], r["folder"], r["assignment"])
    page = (fb / "feedback.html").read_text(encoding="utf-8")
    assert "Not run in grading" in page and html.escape(r["notes"][0]) in page
    assert "Not run in grading" in json.loads((fb / "results.json").read_text())["output"]
    assert not toy_batch["bug_in_function"]["notes"]


def test_a_definition_made_only_by_top_level_work_gets_a_clear_message(toy_batch):
    r = toy_batch["made_by_work"]
    assert r["points"] == 0
    msg = r["tests"][0]["message"]
    assert "`one_hot_pixels` is not defined in your notebook" in msg and "made only by top-level work at cell 2, lines 1-2" in msg, msg


def test_errors_point_into_the_notebook(toy_batch):
    msg = toy_batch["bug_in_function"]["tests"][0]["message"]
    assert "NameError: name 'undefined_thing' is not defined (in `one_hot_pixels`, cell 1, line 5:" in msg, msg
    assert "submission.py" not in msg


def test_coursekit_check_names_cells_and_skipped_work(tmp_path):
    """`coursekit check` on a solution with untagged experiments and a broken redefinition: the endless loop is left out
    (a note says so), and the failure points into the notebook's cell and line."""
    from coursekit.checks.runner import check_notebook

    nb = read_notebook(paths.solutions_dir() / "pixelrnn" / "pixelrnn.ipynb")
    nb.cells += [new_code_cell("while True:\n    pass"),
                 new_code_cell("# my experiment\ndef one_hot_pixels(x, K):\n    y = x + undefined_thing\n    return y")]
    path = tmp_path / "pixelrnn.ipynb"
    nbformat.write(nb, path)
    notes = []
    results = check_notebook(path, notes=notes, timeout=600)
    n = len(nb.cells)
    assert any(f"cell {n - 1}, lines 1-2 (`while True:`) was not run in grading" in x for x in notes), notes
    one_hot = next(r for r in results if r.name == "one hot")
    assert not one_hot.passed and f"(in `one_hot_pixels`, cell {n}, line 3)" in one_hot.message, one_hot.message


def test_lines_are_counted_as_python_counts_them():
    """A form feed or a Unicode line separator inside a string is no line break for Python: nor for the map."""
    nb = _nb('a = "x\u2028y\x0cz"\nprint(a)\ndef f():\n    return a', "b = 2\r\nprint(b)")
    e = extract_module(nb)
    ns = {}
    exec(compile(e.code, "submission.py", "exec"), ns)
    assert ns["f"]() == "x\u2028y\x0cz" and ns["b"] == 2
    assert parse_extracted(e.code).where == e.where and e.describe(e.code.split("\n").index("    return a") + 1) == "cell 2, line 4"
