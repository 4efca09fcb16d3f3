"""Example submissions made from the reference solution: the demo's batch and the graders' tests.

``autograder/<assignment>/mistakes.py`` (hidden) defines ``MISTAKES``: for each typical
mistake, text replacements in the solution notebook's code, the grader tests it must fail
and a piece of the message the student must read::

    MISTAKES = {
        "loss_in_bits": {
            "replace": [("return nats", "return nats / math.log(2)")],
            "fails": ["test_loss.py::test_loss_value"],
            "message": "nats",
        },
    }

``make_examples`` writes, for an assignment, the reference solution (full marks), the
untouched student version (no marks) and one notebook per mistake (partial marks).
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from .. import paths
from ..notebook import module_from_file, read_notebook


def load_mistakes(assignment: str) -> dict:
    path = paths.autograder_dir() / assignment / "mistakes.py"
    if not path.is_file():
        return {}
    return module_from_file(path, f"_mistakes_{assignment}").MISTAKES


def mistake_list_problems(assignment: str) -> list[str]:
    """What is wrong with ``mistakes.py``'s lists: ``fails`` and ``unsettled`` must name tests of the rubric, never the
    same one twice, and ``unsettled`` must say why (the measured values) for each test."""
    from .rubric import load_rubric

    graders = set(load_rubric(assignment).items)
    problems = []
    for name, m in load_mistakes(assignment).items():
        fails, unsettled = set(m["fails"]), m.get("unsettled", {})
        if (fails | set(unsettled)) - graders:
            problems.append(f"{name}: no such grader {sorted((fails | set(unsettled)) - graders)}")
        if fails & set(unsettled):
            problems.append(f"{name}: both failing and unsettled {sorted(fails & set(unsettled))}")
        if not all(isinstance(why, str) and why for why in unsettled.values()):
            problems.append(f"{name}: an unsettled grader without the reason")
    return problems


def apply_mistake(nb: nbformat.NotebookNode, replacements: list[tuple[str, str]], name: str = "") -> nbformat.NotebookNode:
    """A copy of ``nb`` with each ``old`` text, which must occur in exactly one code cell, replaced."""
    nb = nbformat.reads(nbformat.writes(nb), as_version=4)
    for old, new in replacements:
        cells = [c for c in nb.cells if c.cell_type == "code" and old in c.source]
        if len(cells) != 1:
            raise ValueError(f"mistake {name!r}: {old!r} occurs in {len(cells)} code cells of the solution, not exactly one; update mistakes.py")
        cells[0].source = cells[0].source.replace(old, new)
    return nb


def make_examples(assignment: str, dest: str | Path, max_mistakes: int | None = None) -> dict[str, Path]:
    """Write example submissions ``dest/<name>/<assignment>.ipynb`` (the first ``max_mistakes`` mistakes,
    default all); returns {name: notebook}."""
    from ..release import student_notebook

    dest = Path(dest)
    solution = read_notebook(paths.solutions_dir() / assignment / f"{assignment}.ipynb")
    for cell in solution.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    examples = {"reference": solution, "untouched": student_notebook(solution)}
    for name, m in list(load_mistakes(assignment).items())[:max_mistakes]:
        examples[name] = apply_mistake(solution, m["replace"], name)
    written = {}
    for name, nb in examples.items():
        path = dest / name / f"{assignment}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        written[name] = path
    return written


def grade_examples(assignment: str, dest: str | Path, jobs: int = 2, options=None, max_mistakes: int | None = None,
                   progress: bool = False) -> dict[str, dict]:
    """Make the examples of ``assignment`` in ``dest/submissions`` and grade them into ``dest/grades``;
    returns {example name: report}."""
    from .engine import GradeOptions, grade_batch, strong_isolation_available

    dest = Path(dest)
    made = make_examples(assignment, dest / "submissions", max_mistakes=max_mistakes)
    reports = grade_batch([dest / "submissions"], dest / "grades", [assignment], jobs=jobs,
                          options=options or GradeOptions(profile="smoke", insecure=not strong_isolation_available()),
                          progress=progress)  # the kit's own examples may be trusted without bubblewrap
    return {r["student"]: r for r in reports if r["student"] in made}
