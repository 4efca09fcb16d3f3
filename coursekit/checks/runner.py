"""``coursekit check NOTEBOOK``: run an assignment's public checks on a notebook's definitions.

The notebook's code (training, plotting and check cells left out) is written to a temporary
module and run in a child process with a time limit, so a student's endless loop or crash
cannot hang or kill the command.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..notebook import read_notebook, extract_code
from . import CheckResult


def assignment_of(nb, path: Path) -> str:
    """The assignment a notebook belongs to: its ``coursekit.assignment`` metadata, else its file name."""
    return nb.metadata.get("coursekit", {}).get("assignment") or path.stem


def check_notebook(path: str | os.PathLike, assignment: str | None = None, timeout: float = 300.0) -> list[CheckResult]:
    """Run the public checks of ``assignment`` on notebook ``path`` in a child process."""
    path = Path(path)
    nb = read_notebook(path)
    assignment = assignment or assignment_of(nb, path)
    try:
        importlib.import_module(f"coursekit.checks.{assignment}")
    except ModuleNotFoundError:
        raise ValueError(f"{path}: no public checks for assignment {assignment!r}") from None
    with tempfile.TemporaryDirectory(prefix="coursekit-check-") as tmp:
        module = Path(tmp) / "submission.py"
        module.write_text(extract_code(nb), encoding="utf-8")
        out = Path(tmp) / "results.json"
        cmd = [sys.executable, "-m", "coursekit.checks.runner", assignment, str(module), str(out)]
        try:
            proc = subprocess.run(cmd, cwd=tmp, timeout=timeout, capture_output=True, text=True)
        except subprocess.TimeoutExpired:
            return [CheckResult("notebook code", False, f"did not finish within {timeout:.0f} s (an endless loop, or training outside a cell tagged 'train'?)")]
        if not out.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            return [CheckResult("notebook code", False, "the notebook's code failed to run: " + " | ".join(tail))]
        return [CheckResult(**r) for r in json.loads(out.read_text())]


def _child(assignment: str, module_path: str, out_path: str) -> None:
    """In the child process: run the module's code, then the checks, and write results as JSON."""
    import runpy

    mod = importlib.import_module(f"coursekit.checks.{assignment}")
    try:
        ns = runpy.run_path(module_path, run_name="submission")
    except Exception as e:
        results = [CheckResult("notebook code", False, f"running the notebook's definitions raised {type(e).__name__}: {e}")]
    else:
        from . import run_checks

        results = run_checks(mod.CHECKS, ns, verbose=False)
    Path(out_path).write_text(json.dumps([r.__dict__ for r in results]))


if __name__ == "__main__":
    _child(*sys.argv[1:4])
