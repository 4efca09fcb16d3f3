"""Reading notebooks and taking the code out of them.

Conventions every notebook of the kit follows (the graders and public checks rely on them):

- Answer cells carry nbgrader's metadata (``"nbgrader": {"solution": true, ...}``) and, in
  the source notebook, their solution between nbgrader's BEGIN SOLUTION and END SOLUTION
  comment lines (``coursekit.release.SOLUTION_MARKERS``).
- Cells that train, plot or call the public checks carry a cell tag from ``SKIP_TAGS``:
  the graders import the student's definitions without running them.
- In the other cells, too, the graders run the definitions and not the top-level work
  (``extract_module``): a student's untagged experiment cell costs no points.
"""

from __future__ import annotations

import ast
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where a notebook is read: the sandboxed worker imports this module for parse_extracted
    import nbformat  # alone, and nbformat (with jsonschema) is 20 MB of its memory (Gradescope: 768 MB for all)

SKIP_TAGS = ("train", "demo", "check")  # cells the graders never run
_MAGIC = re.compile(r"^\s*(%|!|\?)")
_HELP = re.compile(r"^\s*[\w.]+\?\??\s*$")
# The line that opens each cell in the extracted module (see ``extract_module``). It says how many of the cell's lines
# follow, so a line of the student's own that looks like a header is never read as one.
_HEADER = re.compile(r"^# --- cell (\d+)(?: \[([A-Za-z0-9_.-]{1,100})\])?: (\d+) lines?(?:; not run: ([0-9a-z ,:-]{1,4000}))?"
                     r"(?:; timed: ([0-9 ,-]{1,4000}))? ---$")
SKIPPED_PREFIX = "# (not run in grading) "
_REASONS = {"w": "top-level work", "d": "uses a name made by top-level work", "s": "a syntax error"}


class NotebookError(ValueError):
    """A notebook that cannot be read or does not follow the kit's conventions."""


def read_notebook(path: str | os.PathLike) -> "nbformat.NotebookNode":
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
    import nbformat

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
    for line in source_lines(source):
        if _MAGIC.match(line) or _HELP.match(line):
            keep.append("# (removed IPython-only line) " + line.strip())
        else:
            keep.append(line)
    return "\n".join(keep)


# --- what the graders run of a notebook --------------------------------------------------------
# A notebook is graded on its definitions, not on what its cells do at the top level. Each top-level
# statement of the cells not tagged train/demo/check is one of
#
# - a definition (import, def, class, or an if/try made only of them): run;
# - an assignment (or an if/try made of assignments and definitions): run, since definitions may need
#   what it makes (``data = course_dataset()``, ``DEVICE = torch.device(...)``, ``K = data.num_colors``);
#   one that calls anything is *timed*: the worker gives it ``TIMED_BUDGET`` seconds of CPU and goes on
#   without it when it takes longer (``losses = train(model, ...)`` in an experiment cell);
# - top-level work (calls, loops, with blocks, prints, plots, ``train(model)``): not run.
#
# A statement that reads a name only skipped work makes is not run either, and a cell that is not valid
# Python (a half-typed experiment) is left out whole. The worker runs the kept statements one by one and
# goes on past one that fails (``coursekit.grading.worker``), so a broken experiment costs only what
# depends on it. The skipped lines stay in the module as comments, so its line numbers follow the
# notebook's; ``Extracted.translate`` turns "line N" of the module into the notebook's cell and line.
TIMED_BUDGET = 10.0  # CPU seconds for each timed statement ...
TIMED_TOTAL = 40.0  # ... and for all of them together, per worker
_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_ASSIGNMENTS = (ast.Assign, ast.AnnAssign, ast.AugAssign)
_COMPOUND = (ast.If, ast.Try) + ((ast.TryStar,) if hasattr(ast, "TryStar") else ())
_DEFERRED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


@dataclass
class Skipped:
    """Top-level statements of one cell that the graders do not run."""

    cell: int  # the cell's number in the notebook, from 1, text cells included
    grade_id: str | None
    first: int  # its lines in the cell, from 1
    last: int
    reason: str  # "work", "depends" (reads a name only skipped work makes) or "syntax" (the whole cell)
    text: str  # the statement's first line
    binds: tuple = ()  # the names it would have made
    detail: str = ""  # the syntax error, or the name it needed
    source: str = ""  # all of its lines

    def where(self) -> str:
        lines = f"line {self.first}" if self.first == self.last else f"lines {self.first}-{self.last}"
        return f"{cell_label(self.cell, self.grade_id)}, {lines}"

    def note(self) -> str:
        what = f"`{_short(self.text)}`"
        if self.reason == "syntax":
            return (f"{cell_label(self.cell, self.grade_id)} was not run in grading: it is not valid Python"
                    f"{' (' + self.detail + ')' if self.detail else ''}")
        if self.reason == "depends":
            need = f" `{self.detail}`," if self.detail else ""
            return f"{self.where()} ({what}) was not run in grading: it reads{need} a name made only by top-level work that grading skips"
        return f"{self.where()} ({what}) was not run in grading: top-level work (calls, loops, training, plots, prints) is skipped"


def source_lines(src: str) -> list[str]:
    """The lines of Python source as Python counts them (\\n, \\r\\n, \\r; not str.splitlines, which also splits at
    form feeds and Unicode line separators that may sit inside a string)."""
    lines = re.split(r"\r\n|\r|\n", src)
    return lines[:-1] if len(lines) > 1 and lines[-1] == "" else lines


def _short(text: str, n: int = 60) -> str:
    text = text.strip()
    return text if len(text) <= n else text[: n - 1] + "…"


def cell_label(cell: int, grade_id: str | None = None) -> str:
    return f"cell {cell}" + (f" (answer cell `{grade_id}`)" if grade_id else "")


@dataclass
class Extracted:
    """A notebook's code as one module, with where each of its lines comes from."""

    code: str
    where: list = field(default_factory=list)  # per line of ``code`` (from line 1): (cell, line in cell), or None
    grade_ids: dict = field(default_factory=dict)  # cell number -> nbgrader grade id (or None)
    skipped: list = field(default_factory=list)  # Skipped, in notebook order
    timed: set = field(default_factory=set)  # lines of the module where a timed statement starts

    def locate(self, line: int) -> tuple[int, int] | None:
        """(cell, line in the cell) of line ``line`` of the module, or None."""
        return self.where[line - 1] if 0 < line <= len(self.where) else None

    def describe(self, line: int) -> str | None:
        loc = self.locate(line)
        return None if loc is None else f"{cell_label(loc[0], self.grade_ids.get(loc[0]))}, line {loc[1]}"

    def notes(self) -> list[str]:
        """One sentence per run of top-level statements left out (neighbouring lines of a cell, for the same reason)."""
        groups: list[Skipped] = []
        for s in self.skipped:
            g = groups[-1] if groups else None
            if g is not None and (g.cell, g.reason) == (s.cell, s.reason) and s.first == g.last + 1 and s.reason != "syntax":
                groups[-1] = Skipped(g.cell, g.grade_id, g.first, s.last, g.reason, g.text, g.binds + s.binds, g.detail)
            else:
                groups.append(s)
        return [g.note() for g in groups]

    def made_by_skipped(self, name: str) -> Skipped | None:
        """The skipped statement that makes ``name``, or else one that names it (``globals()["name"] = ...`` in a loop)."""
        return (next((s for s in self.skipped if name in s.binds), None)
                or next((s for s in self.skipped if s.reason != "syntax" and re.search(rf"\b{re.escape(name)}\b", s.source)), None))

    def translate(self, message: str) -> str:
        """``message`` with the module's line numbers ("`train`, line 214", "submission.py, line 31", "line 12 of
        sample") told as the notebook's cell and line. Only those patterns are rewritten: the rest of the
        message is the worker's text and is kept as it is. A message saying a name is not defined also says
        when skipped top-level work would have made it."""
        def cell_line(m, n: int, keep: str) -> str:
            d = self.describe(n)
            return keep if d is None else d

        out = _TRANSLATE["named"].sub(lambda m: f"`{m.group(1)}`, " + cell_line(m, int(m.group(2)), f"line {m.group(2)}"), message)
        out = _TRANSLATE["file"].sub(lambda m: cell_line(m, int(m.group(1)), m.group(0)), out)
        out = _TRANSLATE["of"].sub(lambda m: (f"in `{m.group(2)}`, {self.describe(int(m.group(1)))}" if self.describe(int(m.group(1)))
                                                else m.group(0)), out)
        for pattern in (_TRANSLATE["undefined"], _TRANSLATE["nameerror"]):
            m = pattern.search(out)
            if m:
                s = self.made_by_skipped(m.group(1))
                if s is not None:
                    out += (f" (`{m.group(1)}` is made only by top-level work at {s.where()}: `{_short(s.text)}`, which grading "
                            "does not run: grading runs the notebook's imports, functions, classes and assignments, not its loops, "
                            f"calls and plots. Define `{m.group(1)}` with def or class, or make it inside the function that uses it)")
                elif "would have made it" not in out and any(s.reason == "syntax" for s in self.skipped):
                    bad = next(s for s in self.skipped if s.reason == "syntax")
                    out += f" ({bad.note()})"
                break
        return out


_TRANSLATE = {
    "named": re.compile(r"`([A-Za-z_][A-Za-z0-9_.<>]{0,100})`, line (\d{1,7})\b"),
    "file": re.compile(r"\bsubmission\.py\"?, line (\d{1,7})\b"),
    "of": re.compile(r"\bline (\d{1,7}) of ([A-Za-z_<][A-Za-z0-9_<>]{0,100})"),
    "undefined": re.compile(r"^`([A-Za-z_][A-Za-z0-9_]{0,100})` is not defined in your notebook"),
    "nameerror": re.compile(r"NameError: name '([A-Za-z_][A-Za-z0-9_]{0,100})' is not defined"),
}


def _costly(node: ast.AST) -> bool:
    """Whether running ``node`` calls anything (function bodies and lambdas do not run: they are not looked at)."""
    todo = [node]
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom)):
            return True
        for child in ast.iter_child_nodes(n):
            if isinstance(child, _DEFERRED):
                todo.extend(getattr(child, "decorator_list", []))  # decorators and defaults run at once
                args = getattr(child, "args", None)
                if isinstance(args, ast.arguments):
                    todo.extend([d for d in args.defaults + args.kw_defaults if d is not None])
                todo.extend(getattr(child, "bases", []))
            else:
                todo.append(child)
    return False


def _leaves(stmt: ast.stmt) -> list[ast.stmt]:
    if not isinstance(stmt, _COMPOUND):
        return [stmt]
    parts = list(stmt.body) + list(stmt.orelse) + list(getattr(stmt, "finalbody", []))
    for h in getattr(stmt, "handlers", []):
        parts += h.body
    return [leaf for p in parts for leaf in _leaves(p)]


def _kind(stmt: ast.stmt) -> str:
    """"definition", "assignment" or "work"."""
    if isinstance(stmt, _DEFINITIONS):
        return "definition"
    if isinstance(stmt, _ASSIGNMENTS):
        return "assignment"
    if isinstance(stmt, _COMPOUND):
        kinds = {_kind(s) for s in _leaves(stmt) if not isinstance(s, ast.Pass)}
        if kinds <= {"definition"}:
            return "definition"
        if kinds <= {"definition", "assignment"}:
            return "assignment"
    return "work"


def _scope_globals(table) -> set[str]:
    """Names a function or class (and what it nests) reads from the module."""
    out = {s.get_name() for s in table.get_symbols() if s.is_referenced() and s.is_global()}
    for child in table.get_children():
        out |= _scope_globals(child)
    return out


def _names(stmt: ast.stmt) -> tuple[set[str], set[str]]:
    """(names the statement makes at the module level, module names it reads now or when its functions run)."""
    import symtable

    try:
        table = symtable.symtable(ast.unparse(stmt), "<cell>", "exec")
    except (SyntaxError, ValueError, RecursionError):
        return set(), set()
    binds = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    loads = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    for child in table.get_children():
        loads |= _scope_globals(child)
    return binds, loads


@dataclass
class _Stmt:
    cell: int
    first: int
    last: int
    kind: str
    costly: bool
    binds: set
    loads: set
    text: str
    col: int = 0
    keep: bool = False
    timed: bool = False
    reason: str = "work"
    detail: str = ""


def _select(stmts: list[_Stmt]) -> None:
    """Decide which top-level statements run (see the comment above ``Skipped``)."""
    for s in stmts:
        s.keep = s.kind in ("definition", "assignment")
        s.timed = s.kind == "assignment" and s.costly
    made_by_skipped = {n for s in stmts if not s.keep for n in s.binds}
    available: set[str] = set()
    for s in stmts:  # in notebook order: a statement must not read what only skipped work makes
        if s.keep and s.kind != "definition":
            missing = sorted((s.loads & made_by_skipped) - available)
            if missing:
                s.keep, s.timed, s.reason, s.detail = False, False, "depends", missing[0]
                made_by_skipped |= s.binds
                continue
        if s.keep:
            available |= s.binds


def extract_module(nb, skip_tags: tuple[str, ...] = SKIP_TAGS) -> Extracted:
    """The code the graders run of notebook ``nb``: the code cells in order, less the cells tagged ``skip_tags``,
    IPython-only lines and top-level work (see above), with a map from each line to the notebook's cell and line.

    Each cell starts with a header line ``# --- cell N [grade id]: L lines; not run: a-b:w, ... ---`` that
    ``parse_extracted`` reads back from the module alone."""
    cells = []  # (cell number, grade id, source lines)
    stmts: list[_Stmt] = []
    syntax: dict[int, str] = {}
    for i, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code" or cell_tags(cell) & set(skip_tags):
            continue
        src = strip_magics(cell.source)
        if not src.strip():
            continue
        gid = grade_id(cell)
        gid = gid if gid and re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", gid) else None
        cells.append((i, gid, source_lines(src)))
        try:
            tree = ast.parse(src)
        except (SyntaxError, ValueError) as e:  # ValueError: a null byte
            syntax[i] = f"{type(e).__name__} at line {getattr(e, 'lineno', '?')}: {getattr(e, 'msg', str(e))}"[:200]
            continue
        lines = source_lines(src)
        for st in tree.body:
            first = min([st.lineno] + [d.lineno for d in getattr(st, "decorator_list", [])])
            binds, loads = _names(st)
            stmts.append(_Stmt(i, first, st.end_lineno or st.lineno, _kind(st), _costly(st), binds, loads,
                               lines[first - 1] if first - 1 < len(lines) else "", st.col_offset))
    _select(stmts)

    by_cell: dict[int, list[_Stmt]] = {}
    for s in stmts:
        by_cell.setdefault(s.cell, []).append(s)
    out_lines: list[str] = []
    where: list = []
    skipped: list[Skipped] = []
    grade_ids = {}
    timed: set[int] = set()
    for i, gid, lines in cells:
        grade_ids[i] = gid
        n = len(lines)
        if i in syntax:
            drop = [(1, n, "s")]
            skipped.append(Skipped(i, gid, 1, n, "syntax", lines[0] if lines else "", (), syntax[i]))
        else:
            drop = []
            for s in by_cell.get(i, []):
                if s.keep:
                    continue
                drop.append((s.first, s.last, "w" if s.reason == "work" else "d"))
                skipped.append(Skipped(i, gid, s.first, s.last, s.reason, s.text, tuple(sorted(s.binds)), s.detail,
                                       "\n".join(lines[s.first - 1 : s.last])))
        lines = _comment_out(lines, drop, by_cell.get(i, []))
        header = f"# --- cell {i}" + (f" [{gid}]" if gid else "") + f": {n} line{'s' if n != 1 else ''}"
        if drop:
            header += "; not run: " + ", ".join(f"{a}-{b}:{r}" if a != b else f"{a}:{r}" for a, b, r in drop)
        timed_here = sorted(s.first for s in by_cell.get(i, []) if s.timed and i not in syntax)
        if timed_here:
            header += "; timed: " + ", ".join(map(str, timed_here))
            timed |= {len(out_lines) + 1 + k for k in timed_here}
        out_lines.append(header + " ---")
        where.append(None)
        out_lines.extend(lines)
        where.extend((i, k) for k in range(1, n + 1))
        out_lines.append("")
        where.append(None)
    return Extracted("\n".join(out_lines) + ("\n" if out_lines else ""), where, grade_ids, skipped, timed)


def _comment_out(lines: list[str], drop: list[tuple[int, int, str]], stmts: list[_Stmt]) -> list[str]:
    """The cell's lines with lines ``drop`` (from 1) commented out, the line count unchanged. A skipped statement
    that shares a line with a kept one (``a = 1; train(m)``) is replaced by ``pass`` on that line instead."""
    lines = list(lines)
    kept_lines = {k for s in stmts if s.keep for k in range(s.first, s.last + 1)}
    for a, b, _ in drop:
        if kept_lines & set(range(a, b + 1)):
            continue  # shares a line: handled below
        for k in range(a, b + 1):
            lines[k - 1] = SKIPPED_PREFIX + lines[k - 1]
    shared = {(s.first, s.col) for s in stmts if not s.keep and kept_lines & set(range(s.first, s.last + 1))}
    if shared:
        lines = _replace_shared(lines, shared)
    return lines


def _replace_shared(lines: list[str], starts: set[tuple[int, int]]) -> list[str]:
    """Replace the statements starting at (line, column) ``starts`` that share a line with kept code by ``pass``
    (rare: ``a = 1; train(m)``), keeping every line where it was."""
    src = "\n".join(lines)
    tree = ast.parse(src)
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln) + 1)
    pieces, pos = [], 0
    for st in tree.body:
        first = min([st.lineno] + [d.lineno for d in getattr(st, "decorator_list", [])])
        if (first, st.col_offset) not in starts:
            continue
        col = min([st.col_offset] + [d.col_offset - 1 for d in getattr(st, "decorator_list", [])])
        a = offsets[first - 1] + col
        b = offsets[st.end_lineno - 1] + st.end_col_offset
        newlines = src.count("\n", a, b)
        pieces += [src[pos:a], "pass" + " \\\n" * newlines]
        pos = b
    pieces.append(src[pos:])
    return "".join(pieces).split("\n")


def parse_extracted(code: str) -> Extracted:
    """The line map and the skipped statements of a module ``extract_module`` wrote, read back from its header
    lines (a .py handed in as such has none: its lines are its own). The headers are walked from the top, each
    saying how many lines its cell has, so a line inside a cell is never taken for a header."""
    lines = source_lines(code)
    where: list = []
    grade_ids: dict = {}
    skipped: list[Skipped] = []
    timed: set[int] = set()
    k = 0
    while k < len(lines):
        m = _HEADER.match(lines[k])
        if not m:
            break
        cell, gid, n = int(m.group(1)), m.group(2), int(m.group(3))
        body = lines[k + 1 : k + 1 + n]
        grade_ids[cell] = gid
        where.append(None)
        where.extend((cell, j) for j in range(1, len(body) + 1))
        for item in (m.group(4) or "").split(","):
            mm = re.fullmatch(r"\s*(\d+)(?:-(\d+))?:([wds])\s*", item)
            if not mm:
                continue
            a, b = int(mm.group(1)), int(mm.group(2) or mm.group(1))
            text = [ln[len(SKIPPED_PREFIX):] if ln.startswith(SKIPPED_PREFIX) else ln for ln in body[a - 1 : b]]
            binds: tuple = ()
            if mm.group(3) != "s":
                try:
                    st = ast.parse("\n".join(text))
                    binds = tuple(sorted(set().union(*(_names(s)[0] for s in st.body)))) if st.body else ()
                except (SyntaxError, ValueError):
                    pass
            reason = {"w": "work", "d": "depends", "s": "syntax"}[mm.group(3)]
            skipped.append(Skipped(cell, gid, a, b, reason, text[0] if text else "", binds, "", "\n".join(text)))
        for item in (m.group(5) or "").split(","):
            if item.strip().isdigit() and 0 < int(item) <= n:
                timed.add(k + 1 + int(item))
        k += 1 + n
        if k < len(lines) and lines[k] == "":
            where.append(None)
            k += 1
    where.extend([None] * (len(lines) - len(where)))
    if not grade_ids:  # not made by extract_module: its lines are its own, nothing to translate
        where = [None] * len(lines)
    return Extracted(code, where, grade_ids, skipped, timed)


def extract_code(nb, skip_tags: tuple[str, ...] = SKIP_TAGS) -> str:
    """The notebook's code as one module (see ``extract_module``)."""
    return extract_module(nb, skip_tags).code

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
