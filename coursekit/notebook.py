"""Reading notebooks and taking the code out of them.

Conventions every notebook of the kit follows (the graders and public checks rely on them):

- Answer cells carry nbgrader's metadata (``"nbgrader": {"solution": true, ...}``) and, in
  the source notebook, their solution between nbgrader's BEGIN SOLUTION and END SOLUTION
  comment lines (``coursekit.release.SOLUTION_MARKERS``).
- Cells that train, plot or call the public checks carry a cell tag from ``SKIP_TAGS``:
  the graders import the student's definitions without running them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat

SKIP_TAGS = ("train", "demo", "check")  # cells the graders never run
_MAGIC = re.compile(r"^\s*(%|!|\?)")
_HELP = re.compile(r"^\s*[\w.]+\?\??\s*$")


class NotebookError(ValueError):
    """A notebook that cannot be read or does not follow the kit's conventions."""


def read_notebook(path: str | os.PathLike) -> nbformat.NotebookNode:
    """Read a notebook (format 4), with a clear error naming the file when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise NotebookError(f"{path}: no such notebook")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise NotebookError(f"{path}: not a text file, so not a notebook") from None
    except json.JSONDecodeError as e:
        raise NotebookError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    if not isinstance(raw, dict) or "cells" not in raw:
        raise NotebookError(f"{path}: valid JSON but not a notebook (no 'cells')")
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
    except Exception as e:  # nbformat raises a zoo of errors for malformed notebooks
        raise NotebookError(f"{path}: not a readable notebook ({e})") from None
    return nb


def cell_tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def grade_id(cell) -> str | None:
    """nbgrader's id of an answer or test cell, or None for an ordinary cell."""
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_answer_cell(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def strip_magics(source: str) -> str:
    """Remove IPython-only syntax: cell magics drop the cell, line magics/shell escapes/help drop the line."""
    if source.lstrip().startswith("%%"):
        return ""
    keep = []
    for line in source.splitlines():
        if _MAGIC.match(line) or _HELP.match(line):
            keep.append("# (removed IPython-only line) " + line.strip())
        else:
            keep.append(line)
    return "\n".join(keep)


def extract_code(nb, skip_tags: tuple[str, ...] = SKIP_TAGS) -> str:
    """The notebook's code as one module: code cells in order, skipped tags and magics removed."""
    parts = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell_tags(cell) & set(skip_tags):
            continue
        src = strip_magics(cell.source)
        if src.strip():
            label = grade_id(cell) or f"cell {i}"
            parts.append(f"# --- {label} ---\n{src}\n")
    return "\n".join(parts)


def module_from_file(path: str | os.PathLike, name: str):
    """Import a Python file that is not on ``sys.path`` (a grader folder's ``probes.py``, ``make_expected.py``,
    ``mistakes.py``) as a fresh module named ``name``. Trusted files only: it runs in this process."""
    import importlib.util

    import sys

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as an import does: dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load_notebook_module(path: str | os.PathLike, name: str | None = None):
    """Run a notebook's code (``extract_code``: no training, plotting or check cells) into a fresh module and return it.

    For trusted notebooks only (the reference solutions, in benchmarks and ``make_expected.py``): it runs in this
    process. A student's notebook goes through the grading sandbox instead.
    """
    import types

    path = Path(path)
    module = types.ModuleType(name or f"{path.stem}_notebook")
    module.__file__ = str(path)
    exec(compile(extract_code(read_notebook(path)), str(path), "exec"), module.__dict__)
    return module


def solution_module(assignment: str):
    """The reference solution of ``assignment`` (``solutions/<a>/<a>.ipynb``) as a module (see ``load_notebook_module``)."""
    from . import paths

    return load_notebook_module(paths.solutions_dir() / assignment / f"{assignment}.ipynb", f"{assignment}_solution")


def notebook_to_module(path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the code of notebook ``path`` as a Python file ``out`` (see ``extract_code``)."""
    out = Path(out)
    out.write_text(extract_code(read_notebook(path)), encoding="utf-8")
    return out
