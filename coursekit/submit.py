"""``coursekit submit NOTEBOOK``: check a student's notebook and pack what the grader reads into a zip.

Before packing, the notebook is validated: it must be a readable notebook, be the assignment it
says it is, carry the student's name and ID (the ``student_name`` cell at its top), and its code
must run through the public checks (``coursekit check``); checks that fail are reported but do
not stop a submission, since a half-done assignment still earns points.

The zip holds exactly one file, ``<assignment>/<assignment>.ipynb``, the layout the instructor's
grader reads from a student's zip (``coursekit.grading.submissions``), and is named for the
student, ``<ID>_<Name>.zip``: the grader takes a zip's name as the student's.
"""

from __future__ import annotations

import ast
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .notebook import NotebookError, read_notebook

NAME_CELL_ID = "student_name"  # nbgrader grade id of the (ungraded) name/ID cell every notebook opens with
NAME_FIELDS = ("STUDENT_NAME", "STUDENT_ID")


class SubmissionError(ValueError):
    """A notebook that cannot be submitted as it is, with what to do in words."""


@dataclass
class Submitted:
    zip_path: Path
    assignment: str
    student_name: str
    student_id: str
    checks: list = field(default_factory=list)  # coursekit.checks.CheckResult of the public checks
    notes: list = field(default_factory=list)  # what grading leaves out of the notebook, in sentences (coursekit check's notes)

    @property
    def failed_checks(self) -> list:
        return [r for r in self.checks if not r.passed]


def student_fields(nb) -> dict[str, str]:
    """``STUDENT_NAME`` and ``STUDENT_ID`` as written in the notebook's name cell ({} when there is no such cell)."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == NAME_CELL_ID]
    # an editor that drops cell metadata (some do): the cell that assigns STUDENT_NAME at its top level
    by_content = [c for c in code if re.search(r"^STUDENT_NAME\s*=", c.source, re.M)]
    if not (tagged or by_content):
        return {}
    cell = (tagged or by_content)[0]
    found = {k: "" for k in NAME_FIELDS}
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as e:
        raise SubmissionError(f"the name cell at the top of the notebook is not valid Python (line {e.lineno}: {e.msg}); "
                              f'write it as STUDENT_NAME = "Your Name" and STUDENT_ID = "your ID"') from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            key = node.targets[0].id
            if key in found and isinstance(node.value, ast.Constant) and isinstance(node.value.value, (str, int)):
                found[key] = str(node.value.value).strip()
    return found


def zip_name(student_id: str, student_name: str) -> str:
    """``<ID>_<Name>.zip`` in plain ASCII letters, digits, ``-`` and ``_`` (accents dropped, other characters ``_``)."""
    text = unicodedata.normalize("NFKD", f"{student_id}_{student_name}").encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9-]+", "_", text).strip("_-")[:80]
    return f"{stem or 'submission'}.zip"


def validate(path: str | os.PathLike, assignment: str | None = None):
    """(notebook, assignment, fields) for a notebook that may be submitted; ``SubmissionError`` saying why not."""
    from .checks.runner import assignment_of

    path = Path(path)
    try:
        nb = read_notebook(path)
    except NotebookError as e:
        raise SubmissionError(f"{e}. Open it in Jupyter, save it, and submit again") from None
    declared = nb.metadata.get("coursekit", {}).get("assignment")
    if assignment and declared and declared != assignment:
        raise SubmissionError(f"{path} is the {declared!r} notebook, not {assignment!r}: submit the {assignment} notebook "
                              f"(assignments/{assignment}/{assignment}.ipynb)")
    assignment = assignment or assignment_of(nb, path)
    fields = student_fields(nb)
    if not declared and not (fields and _has_checks(assignment)):
        raise SubmissionError(f"{path} is not one of the course's notebooks (its metadata names no assignment): submit the "
                              "notebook you were given, assignments/<name>/<name>.ipynb, with your work in it")
    if not declared:  # metadata lost on the way (an editor that drops it); the grader also goes by the file's name
        nb.metadata.setdefault("coursekit", {})["assignment"] = assignment
    if not fields:
        raise SubmissionError(f"{path} has no name cell (STUDENT_NAME, STUDENT_ID) at its top: it is not the notebook you "
                              "were given, or the cell was deleted; copy your work into the course's notebook")
    missing = [k for k in NAME_FIELDS if not fields.get(k)]
    if missing:
        raise SubmissionError(f"{path}: fill in {' and '.join(missing)} in the cell at the top of the notebook "
                              f'(for example STUDENT_NAME = "Ada Lovelace", STUDENT_ID = "s1234567"), save it, and submit again')
    return nb, assignment, fields


def _has_checks(assignment: str) -> bool:
    import importlib

    try:
        importlib.import_module(f"coursekit.checks.{assignment}")
    except ModuleNotFoundError:
        return False
    return True


def submit(path: str | os.PathLike, out_dir: str | os.PathLike | None = None, assignment: str | None = None,
           run_checks: bool = True, timeout: float = 300.0, allow_broken: bool = False, force: bool = False) -> Submitted:
    """Validate notebook ``path`` and write ``<out_dir>/<ID>_<Name>.zip`` (default: beside the notebook).

    The public checks run on the notebook's code (``run_checks``); code that does not run at all stops the
    submission unless ``allow_broken``. An existing zip is replaced only with ``force``."""
    from .checks.runner import check_notebook

    path = Path(path)
    nb, assignment, fields = validate(path, assignment)
    results, notes = [], []
    if run_checks:
        results = check_notebook(path, assignment, timeout=timeout, notes=notes)
        broken = [r for r in results if r.name == "notebook code" and not r.passed]
        if broken and not allow_broken:
            raise SubmissionError(f"{path}: the notebook's code does not run ({broken[0].message}). Fix it so that "
                                  "`coursekit check` runs, or submit it as it is with --allow-broken")
    out_dir = Path(out_dir) if out_dir is not None else path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / zip_name(fields["STUDENT_ID"], fields["STUDENT_NAME"])
    if dest.exists() and not force:
        raise FileExistsError(f"{dest} already exists; pass --force to replace it")
    tmp = dest.with_name(f".{dest.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        if nb.metadata.get("coursekit", {}).get("assignment") == read_notebook(path).metadata.get("coursekit", {}).get("assignment"):
            z.write(path, f"{assignment}/{assignment}.ipynb")  # the file as the student saved it
        else:  # its metadata restored: the assignment it is
            import nbformat

            z.writestr(f"{assignment}/{assignment}.ipynb", nbformat.writes(nb))
    os.replace(tmp, dest)
    return Submitted(dest, assignment, fields["STUDENT_NAME"], fields["STUDENT_ID"], results, notes)
