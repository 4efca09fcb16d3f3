"""The rubric: points, a readable name and whether details may be shown, for every grader test.

One file per assignment, ``autograder/<assignment>/rubric.json``::

    {"assignment": "pixelrnn",
     "tests": {"test_shapes.py::test_output_shape": {"points": 2, "name": "Output shape", "details": true}, ...}}

The pytest plugin refuses to grade when a test has no rubric entry or an entry has no test,
so points never silently go missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .. import paths


@dataclass(frozen=True)
class RubricItem:
    test_id: str  # "file.py::test_name" relative to the assignment's grader folder
    points: float
    name: str  # what a student reads
    details: bool = True  # may the failure message be shown to the student?


@dataclass(frozen=True)
class Rubric:
    assignment: str
    items: dict[str, RubricItem]

    @property
    def total(self) -> float:
        return sum(i.points for i in self.items.values())


def rubric_path(assignment: str) -> Path:
    return paths.autograder_dir() / assignment / "rubric.json"


def load_rubric(assignment: str, path: Path | None = None) -> Rubric:
    path = path or rubric_path(assignment)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no rubric for assignment {assignment!r}")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
    items = {}
    for tid, entry in raw.get("tests", {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("points"), (int, float)) or entry["points"] < 0:
            raise ValueError(f"{path}: test {tid!r} needs a non-negative number of 'points'")
        items[tid] = RubricItem(tid, float(entry["points"]), str(entry.get("name", tid)), bool(entry.get("details", True)))
    if not items:
        raise ValueError(f"{path}: lists no tests")
    return Rubric(raw.get("assignment", assignment), items)
