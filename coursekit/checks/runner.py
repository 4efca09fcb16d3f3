"""``coursekit check NOTEBOOK``: run an assignment's public checks on a notebook's definitions.

The notebook's code, as the graders take it (``coursekit.notebook.extract_module``: training, plotting
and check cells and top-level work left out), is written to a temporary module and run in a child
process with a time limit, so a student's endless loop or crash cannot hang or kill the command.
Line numbers in its messages are told as the notebook's cells and lines, and the notes say which
cells' statements grading leaves out.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..notebook import extract_module, read_notebook
from . import CheckResult


def assignment_of(nb, path: Path) -> str:
    """The assignment a notebook belongs to: its ``coursekit.assignment`` metadata, else its file name."""
    return nb.metadata.get("coursekit", {}).get("assignment") or path.stem


def check_notebook(path: str | os.PathLike, assignment: str | None = None, timeout: float = 300.0,
                   notes: list | None = None) -> list[CheckResult]:
    """Run the public checks of ``assignment`` on notebook ``path`` in a child process. ``notes``, when given, receives
    one sentence per group of the notebook's statements that grading does not run (see ``coursekit.notebook``)."""
    path = Path(path)
    nb = read_notebook(path)
    assignment = assignment or assignment_of(nb, path)
    try:
        importlib.import_module(f"coursekit.checks.{assignment}")
    except ModuleNotFoundError:
        raise ValueError(f"{path}: no public checks for assignment {assignment!r}") from None
    extracted = extract_module(nb)
    if notes is not None:
        notes.extend(extracted.notes())
    with tempfile.TemporaryDirectory(prefix="coursekit-check-") as tmp:
        module = Path(tmp) / "submission.py"
        module.write_text(extracted.code, encoding="utf-8")
        out = Path(tmp) / "results.json"
        cmd = [sys.executable, "-m", "coursekit.checks.runner", assignment, str(module), str(out)]
        try:
            proc = subprocess.run(cmd, cwd=tmp, timeout=timeout, capture_output=True, text=True)
        except subprocess.TimeoutExpired:
            return [CheckResult("notebook code", False, f"did not finish within {timeout:.0f} s (an endless loop in a function, "
                                "or a slow definition?)")]
        if not out.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            return [CheckResult("notebook code", False, extracted.translate("the notebook's code failed to run: " + " | ".join(tail)))]
        data = json.loads(out.read_text())
        if notes is not None:
            notes.extend(extracted.translate(str(m)) for m in data.get("load", []))
        return [CheckResult(r["name"], r["passed"], extracted.translate(r.get("message", ""))) for r in data["results"]]


def _child(assignment: str, module_path: str, out_path: str) -> None:
    """In the child process: run the module's code, then the checks, and write results as JSON."""
    mod = importlib.import_module(f"coursekit.checks.{assignment}")
    from ..grading import worker  # the graders' way of loading: statement by statement, timed, past failures

    try:
        ns = vars(worker._load(module_path, "submission", tolerant=True))
    except Exception as e:  # noqa: BLE001 - not valid Python as a whole (a .py file)
        results = [CheckResult("notebook code", False, f"running the notebook's definitions raised {worker._describe(e, module_path)}")]
    else:
        from . import run_checks

        results = run_checks(mod.CHECKS, ns, verbose=False)
    # statements that did not run, as the graders would meet them
    load = [f"submission.py, line {first} was not run: {what}" for first, _, _, what in worker._LOAD_PROBLEMS]
    Path(out_path).write_text(json.dumps({"results": [r.__dict__ for r in results], "load": load}))


if __name__ == "__main__":
    _child(*sys.argv[1:4])
